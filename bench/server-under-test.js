// Child process for bench/cached-api.js: starts either certfleet (embedded CA, one certificate issued by
// the caller) or a bare node:https server that returns the same bytes with the same TLS certificate.
// Prints one JSON line {port, apiKey, ca, tls} on stdout when ready; exits on SIGTERM.
//   server-under-test.js certfleet <options.json>   {databaseUrl?, jwtBundleFile?, trustDomain?, apiKey?}
//   server-under-test.js baseline <fixture.json>    {body, tls}
import { mkdtemp } from "node:fs/promises";
import { createServer } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readFile } from "node:fs/promises";

const mode = process.argv[2];
const options = process.argv[3] ? JSON.parse(await readFile(process.argv[3], "utf8")) : {};

if (mode === "certfleet") {
  const { createCertfleet } = await import("../dist/composition.js");
  const { parseConfig } = await import("../dist/config/load.js");
  const { resolveConfig } = await import("../dist/config/resolve.js");
  const { silentLogger } = await import("../dist/core/logger.js");
  const { systemClock } = await import("../dist/core/clock.js");
  const dir = await mkdtemp(join(tmpdir(), "certfleet-bench-"));
  const config = resolveConfig(
    parseConfig({
      server: { bind: "127.0.0.1", port: 0 },
      dataDir: dir,
      logging: { level: "silent" },
      ...(options.databaseUrl ? { database: { url: options.databaseUrl } } : {}),
      ...(options.jwtBundleFile
        ? {
            auth: {
              apiKeys: [{ name: "bench", key: options.apiKey, grants: ["bench.example.com"] }],
              issuers: [
                {
                  kind: "spiffe",
                  trustDomain: options.trustDomain,
                  bundleFile: options.jwtBundleFile,
                  audience: "certfleet",
                  algorithms: ["ES256"],
                  grantAllNames: true,
                },
              ],
            },
          }
        : {}),
    }),
  );
  const cf = await createCertfleet(config, { logger: silentLogger(), clock: systemClock, fetch, env: {} });
  const { url } = await cf.start();
  const tls = JSON.parse(await cf.storage.kv.getValue("server-tls", "embedded"));
  process.stdout.write(
    JSON.stringify({
      port: Number(new URL(url).port),
      apiKey: options.apiKey ?? cf.bootstrapKey.key,
      ca: cf.embeddedCa.rootPem,
      tls,
    }) + "\n",
  );
  process.on("SIGTERM", () => cf.stop().then(() => process.exit(0)));
} else if (mode === "baseline") {
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
} else {
  throw new Error("usage: server-under-test.js certfleet|baseline [options.json]");
}
