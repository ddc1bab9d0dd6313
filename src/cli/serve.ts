import { relative } from "node:path";
import { createCertfleet, type Certfleet } from "../composition.js";
import type { ResolvedConfig } from "../config/resolve.js";
import { systemClock } from "../core/clock.js";
import { CertfleetError, ConfigError } from "../core/errors.js";
import { createLogger, type Logger } from "../core/logger.js";
import { StartupError } from "../core/startup-error.js";
import { loadResolvedConfig } from "./load-config.js";
import { reportWorkerReady, superviseWorkers, workerSlot } from "./serve-cluster.js";

/**
 * `certfleet serve`: start the server and print how to reach it.
 *
 * - A start-up failure is one line on stderr naming the cause and the setting to change (exit 1); the
 *   stack trace only with `--debug`.
 * - SIGHUP re-reads the config file and applies what can change without a restart; a warning names
 *   what cannot. A config that does not load changes nothing.
 * - `server.workers` > 1: this process supervises that many workers, each running all of the above
 *   (serve-cluster.ts); the first one prints the banner.
 * - SIGTERM / SIGINT: stop accepting, wait up to `server.shutdownTimeout` for requests and running
 *   issuances, say how many issuances are still running, exit 0.
 */
export async function serveCommand(options: { config?: string; debug?: boolean }): Promise<void> {
  const config = await loadResolvedConfig(options.config);
  const logger = createLogger({ level: options.debug ? "debug" : config.logLevel, format: config.logFormat });
  const slot = workerSlot();
  if (slot === undefined && config.server.workers > 1) {
    await superviseWorkers(config.server.workers, logger.child({ component: "cluster" }));
    return;
  }
  let certfleet: Certfleet | undefined;
  let started: Awaited<ReturnType<Certfleet["start"]>>;
  try {
    certfleet = await createCertfleet(config, {
      logger,
      clock: systemClock,
      fetch: globalThis.fetch,
      env: process.env,
      ...(slot === undefined ? {} : { workerSlot: slot }),
    });
    started = await certfleet.start();
  } catch (e) {
    await certfleet?.stop().catch(() => undefined);
    failStartup(e, options.debug === true);
  }
  if (slot === undefined || slot === 1) printBanner(certfleet, started, config);
  else logger.info({ worker: slot }, "worker listening");
  reportWorkerReady();
  handleSignals(certfleet, config, logger, options);
}

function failStartup(e: unknown, debug: boolean): never {
  if (e instanceof ConfigError) throw e; // main prints the key paths, exit 2
  let line: string;
  if (e instanceof StartupError) line = e.message;
  else if (e instanceof CertfleetError)
    line = `start-up failed: ${e.message}${e.internal ? ` (${e.internal})` : ""} [${e.code}]`;
  else line = `start-up failed: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}`;
  process.stderr.write(`certfleet: ${line}\n`);
  if (debug && e instanceof Error) process.stderr.write(`${e.stack ?? ""}\n`);
  else if (!(e instanceof StartupError)) process.stderr.write("certfleet: run with --debug for details\n");
  process.exit(1);
}

function printBanner(
  certfleet: Certfleet,
  started: { url: string; http01Url?: string },
  config: ResolvedConfig,
): void {
  const { url, http01Url } = started;
  const scheme = certfleet.tlsSource === "none" ? "http" : "https";
  const port = new URL(url).port;
  const host = ["0.0.0.0", "::", "127.0.0.1", "::1"].includes(config.server.bind)
    ? "localhost"
    : config.server.bind;
  const base = `${scheme}://${host}:${port}`;
  const ca = relative(process.cwd(), certfleet.caPath) || certfleet.caPath;
  const keyFile = `${relative(process.cwd(), config.dataDir) || "."}/api-key`;
  const out: string[] = [
    `certfleet is listening on ${base}` + (http01Url ? ` (HTTP-01 on ${http01Url})` : ""),
  ];
  if (certfleet.tlsSource === "embedded")
    out.push(`Its certificate comes from the embedded CA; trust ${ca} to verify it.`);
  const bootstrap = certfleet.bootstrapKey;
  // the generated key is shown once, when it is made; afterwards only where it is kept
  const shownKey = bootstrap?.created ? bootstrap.key : "$(cat " + keyFile + ")";
  if (bootstrap?.created) out.push(`API key (generated now, stored in ${keyFile}):`, `  ${bootstrap.key}`);
  else if (bootstrap) out.push(`API key: the one generated at first start, in ${keyFile}`);
  if (bootstrap) {
    out.push(
      "Get a certificate:",
      `  curl --cacert ${ca} -H "Authorization: APIKey ${shownKey}" -H "Content-Type: application/json" -d '{"domain":"app.example.internal"}' ${base}/api/certificate`,
    );
  }
  out.push(`Dashboard (sign in with an admin API key): ${base}/dashboard/`);
  if (config.acmeServer.enabled) out.push(`ACME directory: ${base}/acme/directory`);
  process.stdout.write(out.join("\n") + "\n");
}

function handleSignals(
  certfleet: Certfleet,
  config: ResolvedConfig,
  logger: Logger,
  options: { config?: string; debug?: boolean },
): void {
  let reloading: Promise<void> = Promise.resolve();
  const reload = async () => {
    logger.info(
      { config: options.config ?? process.env.CERTFLEET_CONFIG ?? null },
      "SIGHUP: reloading the configuration",
    );
    try {
      const next = await loadResolvedConfig(options.config);
      if (options.debug) next.logLevel = "debug";
      const { restartNeeded } = await certfleet.reload(next);
      if (restartNeeded.length > 0)
        logger.warn(
          { settings: restartNeeded },
          `changed settings need a restart to apply: ${restartNeeded.join(", ")}`,
        );
      logger.info("configuration reloaded");
    } catch (e) {
      const detail =
        e instanceof ConfigError
          ? e.issues.map((i) => `${i.path}: ${i.message}`).join("; ")
          : e instanceof Error
            ? e.message
            : String(e);
      logger.error({ err: detail }, "reload failed; the previous configuration stays in force");
    }
  };
  process.on("SIGHUP", () => {
    reloading = reloading.then(reload); // one reload at a time, in signal order
  });

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    const timeoutMs = config.server.shutdownTimeoutMs;
    const running = certfleet.running();
    logger.info({ signal, timeoutMs, issuancesRunning: running }, "shutting down: no new requests");
    const deadline = setTimeout(() => {
      logger.warn(
        { issuancesRunning: certfleet.running(), timeoutMs },
        `shutdown timeout: exiting with ${certfleet.running()} issuance(s) still running (resumed on the next request or renewal pass)`,
      );
      process.exit(0);
    }, timeoutMs);
    deadline.unref();
    void certfleet.stop().then(() => {
      clearTimeout(deadline);
      logger.info("stopped");
      process.exit(0);
    });
  };
  process.once("SIGINT", () => stop("SIGINT"));
  process.once("SIGTERM", () => stop("SIGTERM"));
}
