import { InstallError } from "../agent-errors.js";
import { describeResult, runCommand } from "../shell-command.js";

/**
 * Run a certificate's reload command (through the shell) after its files changed. A non-zero exit, a
 * timeout or a failure to start is an InstallError `reload_failed` carrying the command's output tail;
 * the installed files stay as they are (they are complete and valid either way).
 */
export async function runReload(
  command: string,
  options: {
    timeoutMs: number;
    env: NodeJS.ProcessEnv;
    platform: NodeJS.Platform;
    vars: Record<string, string>;
  },
): Promise<void> {
  const result = await runCommand(command, {
    timeoutMs: options.timeoutMs,
    env: { ...options.env, ...options.vars },
    platform: options.platform,
  });
  if (result.exitCode === 0) return;
  throw new InstallError("reload_failed", `the reload command ${describeResult(result)}`, {
    internal: result.output.slice(-2000),
    details: { exitCode: result.exitCode, timedOut: result.timedOut },
  });
}
