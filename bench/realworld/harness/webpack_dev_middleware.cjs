// Serve a one-file webpack build with webpack-dev-middleware on a plain http server, as its
// README shows, with the real file system as its output file system (the documented
// outputFileSystem option: fs plus the join/mkdirp helpers it asks for), so the build is served
// from disk. Usage: node webpack_dev_middleware.cjs PROJECT PORT (PROJECT/src/index.js is built
// into PROJECT/dist; NODE_PATH: the release under test).
const http = require("http");
const fs = require("fs");
const path = require("path");
const webpack = require("webpack");
const middleware = require("webpack-dev-middleware");

const [project, port] = process.argv.slice(2);
const root = path.resolve(project);
const compiler = webpack({
  mode: "development",
  context: root,
  entry: "./src/index.js",
  output: { path: path.join(root, "dist"), filename: "main.js", publicPath: "/" },
  infrastructureLogging: { level: "error" },
});
const serve = middleware(compiler, { outputFileSystem: { ...fs, join: path.join,
  mkdirp: (dir, cb) => fs.mkdir(dir, { recursive: true }, (err) => cb(err)) } });
http.createServer((req, res) => {
  serve(req, res, () => { res.statusCode = 404; res.end("not found\n"); });
}).listen(Number(port), "127.0.0.1");
