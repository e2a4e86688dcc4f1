// Serve a folder with sirv in dev mode on a plain http server, as its README shows
// (`http.createServer(sirv(dir, { dev: true }))`; `sirv --dev` and the Svelte template's
// `npm run dev` do the same). Usage: node sirv_dev.cjs ROOT PORT (NODE_PATH: the release).
const http = require("http");
const sirv = require("sirv");

const [root, port] = process.argv.slice(2);
const serve = sirv(root, { dev: true });
http.createServer((req, res) => {
  serve(req, res, () => { res.statusCode = 404; res.end("not found\n"); });
}).listen(Number(port), "127.0.0.1");
