import { createAgent, type OnceReport } from "../agent/agent.js";
import { loadAgentConfig } from "../agent/config/load-agent-config.js";
import { EXIT_OK } from "../agent/exit-codes.js";
import {
  agentConfigPath,
  agentRuntime,
  defaultIo,
  reportError,
  type CommandIo,
} from "../agent/command-io.js";

/**
 * `certfleet agent [--config FILE] [--once] [--json]`.
 *
 * Without `--once` it runs as a daemon until SIGTERM/SIGINT (exit 0); SIGHUP makes it check every
 * certificate now. With `--once` it syncs every certificate, prints a summary (JSON with `--json`) and
 * exits with the code from src/agent/exit-codes.ts. The config defaults to $CERTFLEET_AGENT_CONFIG,
 * then /etc/certfleet/agent.yaml.
 */
export interface AgentCommandOptions {
  config?: string;
  once?: boolean;
  json?: boolean;
}

export async function agentCommand(
  options: AgentCommandOptions,
  io: CommandIo = defaultIo(),
): Promise<number> {
  const json = options.json === true;
  let agent: Awaited<ReturnType<typeof createAgent>> | undefined;
  try {
    const config = await loadAgentConfig(agentConfigPath(options.config, io.env), io.env);
    const runtime = agentRuntime(config, io);
    agent = await createAgent(config, runtime);

    if (options.once) {
      const report = await agent.runOnce(AbortSignal.timeout(24 * 3_600_000), { progress: !json });
      printReport(report, io, json);
      return report.exitCode;
    }

    const controller = new AbortController();
    const stop = (signal: string) => {
      runtime.logger.info({ signal }, "stopping");
      controller.abort();
    };
    const onTerm = () => stop("SIGTERM");
    const onInt = () => stop("SIGINT");
    const onHup = () => {
      runtime.logger.info("SIGHUP: checking every certificate now");
      agent?.wake();
    };
    process.on("SIGTERM", onTerm);
    process.on("SIGINT", onInt);
    process.on("SIGHUP", onHup);
    try {
      runtime.logger.info(
        { certificates: config.certificates.map((c) => c.name), method: config.auth.method },
        "agent started",
      );
      await agent.runDaemon(controller.signal);
    } finally {
      process.off("SIGTERM", onTerm);
      process.off("SIGINT", onInt);
      process.off("SIGHUP", onHup);
    }
    return EXIT_OK;
  } catch (e) {
    return reportError(e, io, json);
  } finally {
    await agent?.close();
  }
}

function printReport(report: OnceReport, io: CommandIo, json: boolean): void {
  if (json) {
    io.stdout.write(
      JSON.stringify({
        ok: report.exitCode === 0,
        exitCode: report.exitCode,
        certificates: report.results.map((r) =>
          r.ok
            ? {
                name: r.name,
                ok: true,
                changed: r.outcome.changed,
                reloaded: r.outcome.reloaded,
                serial: r.outcome.serial,
                notAfter: r.outcome.notAfter.toISOString(),
                renewAt: r.outcome.renewAt.toISOString(),
                directory: r.outcome.directory,
              }
            : {
                name: r.name,
                ok: false,
                exitCode: r.exitCode,
                error: { code: r.error.code, message: r.error.message },
              },
        ),
      }) + "\n",
    );
    return;
  }
  for (const r of report.results) {
    if (r.ok) {
      const what = r.outcome.changed ? "installed" : "unchanged";
      io.stdout.write(
        `${r.name}: ${what}, serial ${r.outcome.serial}, valid until ${r.outcome.notAfter.toISOString()}${r.outcome.reloaded ? ", reloaded" : ""}\n`,
      );
    } else {
      io.stdout.write(`${r.name}: FAILED ${r.error.code}: ${r.error.message}\n`);
    }
  }
}
