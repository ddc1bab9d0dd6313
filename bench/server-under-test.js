// Child process for bench/run.js: starts either certfleet (embedded default, one certificate issued) or a
// bare node:https server that returns the same bytes with the same TLS certificate. Prints one JSON line
// {port, apiKey, ca, body} on stdout when ready; exits on SIGTERM.
import { mkdtemp } from "node:fs/promises";
import { createServer } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readFile } from "node:fs/promises";

const mode = process.argv[2];
const fixture = process.argv[3] ? JSON.parse(await readFile(process.argv[3], "utf8")) : undefined;

if (mode === "certfleet") {
  const { createCertfleet } = await import("../dist/composition.js");
  const { parseConfig } = await import("../dist/config/load.js");
  const { resolveConfig } = await import("../dist/config/resolve.js");
  const { silentLogger } = await import("../dist/core/logger.js");
  const { systemClock } = await import("../dist/core/clock.js");
  const dir = await mkdtemp(join(tmpdir(), "certfleet-bench-"));
  const config = resolveConfig(
    parseConfig({ server: { bind: "127.0.0.1", port: 0 }, dataDir: dir, logging: { level: "silent" } }),
  );
  const cf = await createCertfleet(config, { logger: silentLogger(), clock: systemClock, fetch, env: {} });
  const { url } = await cf.start();
  const tls = JSON.parse(await cf.storage.kv.getValue("server-tls", "embedded"));
  process.stdout.write(
    JSON.stringify({
      port: Number(new URL(url).port),
      apiKey: cf.bootstrapKey.key,
      ca: cf.embeddedCa.rootPem,
      tls,
    }) + "\n",
  );
  process.on("SIGTERM", () => cf.stop().then(() => process.exit(0)));
} else if (mode === "baseline") {
  const body = Buffer.from(fixture.body);
  const server = createServer({ key: fixture.tls.key, cert: fixture.tls.cert }, (req, res) => {
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
} else {
  throw new Error("usage: server-under-test.js certfleet|baseline [fixture.json]");
}
