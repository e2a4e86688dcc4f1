// Serve a folder with @hono/node-server's serveStatic, with /admin/* behind hono's bearerAuth
// middleware, as the hono documentation shows both. Usage: node hono_static.cjs ROOT PORT TOKEN
// (NODE_PATH points at the release under test's node_modules).
const { serve } = require("@hono/node-server");
const { serveStatic } = require("@hono/node-server/serve-static");
const { Hono } = require("hono");
const { bearerAuth } = require("hono/bearer-auth");

const [root, port, token] = process.argv.slice(2);
const app = new Hono();
app.use("/admin/*", bearerAuth({ token }));
app.use("/*", serveStatic({ root }));
serve({ fetch: app.fetch, port: Number(port), hostname: "127.0.0.1" });
