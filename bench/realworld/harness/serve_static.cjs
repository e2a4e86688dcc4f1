// Serve a folder with serve-static (express.static's engine) on a plain http server, as its
// README shows. Usage: node serve_static.cjs ROOT PORT (NODE_PATH: the release under test).
const http = require("http");
const serveStatic = require("serve-static");

const [root, port] = process.argv.slice(2);
const serve = serveStatic(root);
http.createServer((req, res) => {
  serve(req, res, () => { res.statusCode = 404; res.end("not found\n"); });
}).listen(Number(port), "127.0.0.1");
