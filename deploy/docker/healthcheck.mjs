// The container's HEALTHCHECK: exit 0 when GET /healthz on this container answers 200, else 1.
//
// It asks 127.0.0.1 on the API port (CERTFLEET_SERVER__PORT, default 8443), over HTTPS unless
// CERTFLEET_SERVER__INSECURE_HTTP=true; HEALTHCHECK_URL overrides the whole URL (a port set only in
// the config file). The server's certificate is not verified: the probe never leaves the container's
// loopback and sends no credential, and the certificate may name only the public host.
import http from "node:http";
import https from "node:https";

const env = process.env;
const scheme = env.CERTFLEET_SERVER__INSECURE_HTTP === "true" ? "http" : "https";
const url = new URL(
  env.HEALTHCHECK_URL || `${scheme}://127.0.0.1:${env.CERTFLEET_SERVER__PORT || "8443"}/healthz`,
);
if (!["127.0.0.1", "[::1]", "localhost"].includes(url.hostname)) {
  process.stderr.write(`healthcheck: ${url.hostname} is not loopback\n`);
  process.exit(1);
}
const client = url.protocol === "https:" ? https : http;
const req = client.get(url, { rejectUnauthorized: false, timeout: 4000 }, (res) => {
  res.resume();
  process.exit(res.statusCode === 200 ? 0 : 1);
});
req.on("timeout", () => req.destroy(new Error("timed out")));
req.on("error", (e) => {
  process.stderr.write(`healthcheck: ${e.message}\n`);
  process.exit(1);
});
