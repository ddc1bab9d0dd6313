import { systemClock } from "../core/clock.js";
import { ConfigError, toCertfleetError } from "../core/errors.js";
import { createLogger, type Logger } from "../core/logger.js";
import type { AgentRuntime } from "./agent.js";
import type { ResolvedAgentConfig } from "./config/load-agent-config.js";
import { EXIT_CONFIG, exitCodeFor } from "./exit-codes.js";

/**
 * What the agent's commands (`agent`, `get`) share: where output goes, the environment, the default
 * config path, and turning a resolved config into the agent's runtime.
 */
export interface CommandIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown; isTTY?: boolean };
  env: NodeJS.ProcessEnv;
}

export const defaultIo = (): CommandIo => ({
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
});

export const DEFAULT_AGENT_CONFIG = "/etc/certfleet/agent.yaml";

export function agentConfigPath(option: string | undefined, env: NodeJS.ProcessEnv): string {
  return option ?? env.CERTFLEET_AGENT_CONFIG ?? DEFAULT_AGENT_CONFIG;
}

export function agentRuntime(config: ResolvedAgentConfig, io: CommandIo): AgentRuntime & { logger: Logger } {
  return {
    logger: createLogger({ level: config.logLevel, destination: io.stderr as NodeJS.WritableStream }),
    clock: systemClock,
    env: io.env,
    platform: process.platform,
    fetch: globalThis.fetch,
    stderr: io.stderr,
    userAgent: "certfleet-agent/0.1.0",
  };
}

/** Print an error the way every agent command does and return its exit code. */
export function reportError(e: unknown, io: CommandIo, json: boolean): number {
  const code = e instanceof ConfigError ? EXIT_CONFIG : exitCodeFor(e);
  const error = toCertfleetError(e);
  if (json) {
    io.stdout.write(
      JSON.stringify({
        ok: false,
        exitCode: code,
        error: {
          code: error.code,
          message: error.message,
          ...(e instanceof ConfigError ? { issues: e.issues } : {}),
        },
      }) + "\n",
    );
  } else {
    io.stderr.write(
      `certfleet: ${error.message}${error.internal && error.code !== "internal_error" ? ` (${error.internal})` : ""}\n`,
    );
  }
  return code;
}
