// Child process for bench/cached-api.js: the floor, a bare node:https server that returns the same bytes
// as certfleet's cached answer with the same TLS certificate. Prints one JSON line {port} on stdout when
// ready; exits on SIGTERM.
//   server-under-test.js baseline <fixture.json>    {body, tls: {cert, key}}
import { readFile } from "node:fs/promises";
import { createServer } from "node:https";

const mode = process.argv[2];
if (mode !== "baseline") throw new Error("usage: server-under-test.js baseline <fixture.json>");
const options = JSON.parse(await readFile(process.argv[3], "utf8"));
const body = Buffer.from(options.body);
const server = createServer({ key: options.tls.key, cert: options.tls.cert }, (req, res) => {
  req.resume();
  req.on("end", () => {
    res.writeHead(200, {
      "content-type": "application/json; charset=utf-8",
      "content-length": body.length,
    });
    res.end(body);
  });
});
server.keepAliveTimeout = 65_000;
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + "\n");
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
