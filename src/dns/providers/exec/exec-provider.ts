import { spawn } from "node:child_process";
import { z } from "zod";
import { CertfleetError, UpstreamError, throwIfAborted } from "../../../core/errors.js";
import { defineDnsProvider } from "../../define-provider.js";
import type { DnsProvider, TxtRecord } from "../../dns-provider.js";

/**
 * lego's `exec` convention: run `<command> present <fqdn.> <value>` to add a TXT value and
 * `<command> cleanup <fqdn.> <value>` to remove it (note the trailing dot). Exit 0 means done.
 * The child gets only the environment variables named in `passEnv` plus `env`, so the server's own
 * secrets do not leak into a script by default.
 */
export const execConfigSchema = z.strictObject({
  /** Path of the program to run (lego: EXEC_PATH). */
  command: z.string().min(1),
  /** Arguments placed before the verb, e.g. a sub-command of a multi-purpose tool. */
  args: z.array(z.string()).default([]),
  /** Kill the program after this long. */
  timeoutMs: z.number().int().positive().max(600_000).default(60_000),
  /** Names of certfleet's environment variables to pass through to the program. */
  passEnv: z.array(z.string().min(1)).default(["PATH"]),
  /** Extra environment for the program (may hold credentials: treated as secret). */
  env: z.record(z.string(), z.string()).default({}),
});

export type ExecConfig = z.infer<typeof execConfigSchema>;

/** Most of stderr is useful; a runaway program's is not. */
const MAX_CAPTURED_OUTPUT = 4096;

export function createExecProvider(config: ExecConfig): DnsProvider {
  const env: Record<string, string> = {};
  for (const key of config.passEnv) {
    const value = process.env[key];
    if (value !== undefined) env[key] = value;
  }
  Object.assign(env, config.env);

  function run(verb: "present" | "cleanup", record: TxtRecord, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const fqdn = `${record.name}.`;
      const child = spawn(config.command, [...config.args, verb, fqdn, record.value], {
        env,
        stdio: ["ignore", "pipe", "pipe"],
        // Own process group, so a timeout also stops whatever the script started.
        detached: true,
      });
      let stderr = "";
      let stdout = "";
      let settled = false;
      child.stdout.on("data", (chunk: Buffer) => {
        if (stdout.length < MAX_CAPTURED_OUTPUT) stdout += chunk.toString("utf8");
      });
      child.stderr.on("data", (chunk: Buffer) => {
        if (stderr.length < MAX_CAPTURED_OUTPUT) stderr += chunk.toString("utf8");
      });

      const finish = (error?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        if (error) reject(error);
        else resolve();
      };
      const signalGroup = (sig: NodeJS.Signals) => {
        try {
          if (child.pid !== undefined) process.kill(-child.pid, sig);
        } catch {
          // already gone
        }
      };
      const kill = () => {
        signalGroup("SIGTERM");
        setTimeout(() => signalGroup("SIGKILL"), 2_000).unref();
      };
      const onAbort = () => {
        kill();
        finish(
          new CertfleetError("aborted", "operation was cancelled", { status: 499, cause: signal.reason }),
        );
      };
      const timer = setTimeout(() => {
        kill();
        finish(
          new UpstreamError(
            "dns_exec_failed",
            `dns exec provider: "${verb}" timed out after ${config.timeoutMs} ms`,
            {
              internal: stderr.slice(0, MAX_CAPTURED_OUTPUT),
              details: { provider: "exec", zone: record.zone, verb, timeoutMs: config.timeoutMs },
            },
          ),
        );
      }, config.timeoutMs);
      signal.addEventListener("abort", onAbort, { once: true });

      child.on("error", (e) =>
        finish(
          new UpstreamError("dns_exec_failed", `dns exec provider: cannot run the "${verb}" command`, {
            cause: e,
            internal: e.message,
            details: { provider: "exec", zone: record.zone, verb },
            retryable: false,
          }),
        ),
      );
      child.on("close", (code, sig) => {
        if (code === 0) return finish();
        const output = stderr.trim() || stdout.trim();
        finish(
          new UpstreamError(
            "dns_exec_failed",
            `dns exec provider: "${verb}" for zone ${record.zone} exited with ${code ?? sig}`,
            {
              // The program's output may echo credentials: logs and audit only, never a caller.
              internal: output,
              details: { provider: "exec", zone: record.zone, verb, exitCode: code },
            },
          ),
        );
      });
    });
  }

  return {
    id: "exec",
    async appendTxt(record, signal) {
      throwIfAborted(signal);
      await run("present", record, signal);
    },
    // Cleanup takes no signal; the timeout still bounds it.
    async deleteTxt(record) {
      await run("cleanup", record, new AbortController().signal);
    },
  };
}

export const execProviderDefinition = defineDnsProvider<ExecConfig>({
  id: "exec",
  aliases: [],
  legoCode: "exec",
  legoEnv: { EXEC_PATH: "command" },
  description: "Runs a local program: `<command> present|cleanup <fqdn.> <value>` (lego's exec convention).",
  schema: execConfigSchema,
  secretFields: ["env"],
  create: (config) => createExecProvider(config),
});
