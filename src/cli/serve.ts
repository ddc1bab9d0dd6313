import { relative } from "node:path";
import { createCertfleet } from "../composition.js";
import { systemClock } from "../core/clock.js";
import { createLogger } from "../core/logger.js";
import { loadResolvedConfig } from "./load-config.js";

/** `certfleet serve`: start the server and print how to reach it. */
export async function serveCommand(options: { config?: string }): Promise<void> {
  const config = await loadResolvedConfig(options.config);
  const logger = createLogger({ level: config.logLevel });
  const certfleet = await createCertfleet(config, {
    logger,
    clock: systemClock,
    fetch: globalThis.fetch,
    env: process.env,
  });
  const { url, http01Url } = await certfleet.start();

  const scheme = certfleet.tlsSource === "none" ? "http" : "https";
  const port = new URL(url).port;
  const host = ["0.0.0.0", "::", "127.0.0.1", "::1"].includes(config.server.bind)
    ? "localhost"
    : config.server.bind;
  const base = `${scheme}://${host}:${port}`;
  const ca = relative(process.cwd(), certfleet.caPath) || certfleet.caPath;
  const out: string[] = [
    `certfleet is listening on ${base}` + (http01Url ? ` (HTTP-01 on ${http01Url})` : ""),
  ];
  if (certfleet.tlsSource === "embedded")
    out.push(`Its certificate comes from the embedded CA; trust ${ca} to verify it.`);
  if (certfleet.bootstrapKey) {
    out.push(
      `API key${certfleet.bootstrapKey.created ? " (generated now" : " (generated at first start"}, stored in ${relative(process.cwd(), config.dataDir) || "."}/api-key):`,
      `  ${certfleet.bootstrapKey.key}`,
      "Get a certificate:",
      `  curl --cacert ${ca} -H "Authorization: APIKey ${certfleet.bootstrapKey.key}" -H "Content-Type: application/json" -d '{"domain":"app.example.internal"}' ${base}/api/certificate`,
    );
  }
  out.push(`Dashboard (sign in with an admin API key): ${base}/dashboard/`);
  if (config.acmeServer.enabled) out.push(`ACME directory: ${base}/acme/directory`);
  process.stdout.write(out.join("\n") + "\n");

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down");
    void certfleet.stop().then(() => process.exit(0));
  };
  process.once("SIGINT", () => stop("SIGINT"));
  process.once("SIGTERM", () => stop("SIGTERM"));
}
