// A static site on @fastify/static with /admin/* behind a bearer-token guard, as the Fastify
// documentation shows route-level hooks and reply.sendFile. Usage: node fastify_static.cjs
// ROOT PORT TOKEN (NODE_PATH: the release under test's node_modules).
const path = require("path");
const fastify = require("fastify")();
const fastifyStatic = require("@fastify/static");

const [root, port, token] = process.argv.slice(2);
const site = path.resolve(root);
fastify.register(fastifyStatic, { root: site });
fastify.get("/admin/*", {
  onRequest: async (req, reply) => {
    if (req.headers.authorization !== `Bearer ${token}`) {
      return reply.code(401).send({ error: "unauthorized" });
    }
  },
}, (req, reply) => reply.sendFile(req.params["*"], path.join(site, "admin")));
fastify.listen({ port: Number(port), host: "127.0.0.1" });
