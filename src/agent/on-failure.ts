import type { Logger } from "../core/logger.js";
import { describeResult, runCommand } from "./shell-command.js";

/**
 * `auth.on_failure`: a shell command run (sh -c on Unix, cmd /C on Windows) when authentication fails,
 * before the agent exits (`--once`, `get`) — in the daemon, once each time authentication goes from
 * working to failing, not on every retry. The hook sees CERTFLEET_AUTH_METHOD, CERTFLEET_ERROR_CODE and
 * CERTFLEET_ERROR in its environment. Its exit code never changes the agent's: non-zero, a timeout or a
 * failure to start is logged as a warning and that is all. `failed` never throws.
 */
export interface AuthFailureHook {
  failed(error: { code: string; message: string }): Promise<void>;
  /** Authentication worked again: the next failure runs the hook again. */
  succeeded(): void;
}

export const ON_FAILURE_TIMEOUT_MS = 60_000;

export function createAuthFailureHook(options: {
  command: string | undefined;
  method: string;
  env: NodeJS.ProcessEnv;
  platform: NodeJS.Platform;
  logger: Logger;
  timeoutMs?: number;
}): AuthFailureHook {
  let armed = true;
  return {
    async failed(error) {
      if (!options.command || !armed) return;
      armed = false;
      const result = await runCommand(options.command, {
        timeoutMs: options.timeoutMs ?? ON_FAILURE_TIMEOUT_MS,
        platform: options.platform,
        env: {
          ...options.env,
          CERTFLEET_AUTH_METHOD: options.method,
          CERTFLEET_ERROR_CODE: error.code,
          CERTFLEET_ERROR: error.message,
        },
      });
      if (result.exitCode === 0) {
        options.logger.info("on_failure hook ran");
      } else {
        options.logger.warn(
          { result: describeResult(result), output: result.output.slice(-500) },
          "on_failure hook failed",
        );
      }
    },
    succeeded() {
      armed = true;
    },
  };
}
