import { spawn } from "node:child_process";
import type { Readable, Writable } from "node:stream";
import { parseDuration } from "../../config/schema.js";
import { AgentAuthError } from "../agent-errors.js";
import type { AuthConfigOf } from "../config/auth-config.js";
import { commandArgv, groupOptions, killTree, type CommandSpec } from "../shell-command.js";
import { bearer, type CredentialDeps, type CredentialSource } from "./credential-source.js";
import { createSharedToken } from "./shared-token.js";

/**
 * External auth plugins, exactly the epithet protocol:
 *
 * - stdin: the state from the previous successful run (empty on the first);
 * - stdout: the token (opaque bytes; surrounding whitespace dropped);
 * - fd 3: the new state for the next run, at most 10 MiB (more kills the plugin);
 * - stderr: human-readable messages, passed on line by line;
 * - exit code: 0 success, anything else failure (the state is then left as it was).
 *
 * State lives in this process's memory only, never on disk. The token is one for the whole agent
 * (shared-token.ts): reused by every certificate until shortly before its `exp` when it is a JWT, else
 * until the server answers 401 saying a fresh credential may help; then the plugin runs again (with its
 * state, so it can refresh) — once for all the certificates that were refused with that token — and each
 * request is retried once. Runs are serialised: concurrent callers share one run.
 *
 * Error codes: plugin_failed, plugin_timeout, plugin_no_token, plugin_state_too_large,
 * plugin_token_too_large, plugin_not_started.
 */

export const MAX_PLUGIN_STATE_BYTES = 10 * 1024 * 1024;
const MAX_TOKEN_BYTES = 1024 * 1024;
const MAX_STDERR_BYTES = 64 * 1024;

export interface PluginResult {
  token: string;
  state: Buffer;
}

export interface PluginRunOptions {
  timeoutMs: number;
  signal: AbortSignal;
  env: NodeJS.ProcessEnv;
  platform: NodeJS.Platform;
  /** Each stderr line, as it arrives. */
  onMessage: (line: string) => void;
}

const fail = (code: string, message: string, internal?: string, details?: Record<string, unknown>) =>
  new AgentAuthError("exec", code, message, { internal, details });

/** One plugin run. Resolves with the token and new state, or rejects with AgentAuthError. */
export function runAuthPlugin(
  command: CommandSpec,
  state: Buffer,
  options: PluginRunOptions,
): Promise<PluginResult> {
  const [file, args] = commandArgv(command, options.platform);
  return new Promise<PluginResult>((resolve, reject) => {
    const child = spawn(file, args, {
      stdio: ["pipe", "pipe", "pipe", "pipe"],
      env: options.env,
      windowsHide: true,
      ...groupOptions(options.platform),
    });
    const stdin = child.stdio[0] as Writable;
    const stdout = child.stdio[1] as Readable;
    const stderr = child.stdio[2] as Readable;
    const fd3 = child.stdio[3] as Readable;
    const out: Buffer[] = [];
    const stateChunks: Buffer[] = [];
    let outBytes = 0;
    let stateBytes = 0;
    let stderrBytes = 0;
    let stderrPending = "";
    let stderrTail = "";
    let failure: AgentAuthError | undefined;

    const abort = (error: AgentAuthError) => {
      failure ??= error;
      killTree(child, options.platform);
    };
    const timer = setTimeout(
      () => abort(fail("plugin_timeout", `the auth plugin did not finish within ${options.timeoutMs} ms`)),
      options.timeoutMs,
    );
    const onAbort = () => abort(fail("plugin_aborted", "cancelled"));
    options.signal.addEventListener("abort", onAbort, { once: true });

    stdout.on("data", (d: Buffer) => {
      outBytes += d.length;
      if (outBytes > MAX_TOKEN_BYTES)
        return abort(fail("plugin_token_too_large", "the auth plugin's token exceeds 1 MiB"));
      out.push(d);
    });
    fd3.on("data", (d: Buffer) => {
      stateBytes += d.length;
      if (stateBytes > MAX_PLUGIN_STATE_BYTES) {
        return abort(
          fail("plugin_state_too_large", "the auth plugin's state exceeds 10 MiB", undefined, {
            limit: MAX_PLUGIN_STATE_BYTES,
          }),
        );
      }
      stateChunks.push(d);
    });
    // A plugin that closes fd 3 (or never opens it) is fine; so is one that ignores stdin.
    fd3.on("error", () => undefined);
    stdin.on("error", () => undefined);
    stderr.on("data", (d: Buffer) => {
      stderrBytes += d.length;
      if (stderrBytes > MAX_STDERR_BYTES) return;
      const text = stderrPending + d.toString("utf8");
      const lines = text.split("\n");
      stderrPending = lines.pop() ?? "";
      for (const line of lines) emit(line);
    });
    const emit = (line: string) => {
      const trimmed = line.replace(/\r$/, "");
      if (trimmed === "") return;
      stderrTail = (stderrTail + trimmed + "\n").slice(-2048);
      options.onMessage(trimmed);
    };

    child.once("error", (e) => {
      clearTimeout(timer);
      options.signal.removeEventListener("abort", onAbort);
      reject(fail("plugin_not_started", "the auth plugin could not be started", e.message));
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      options.signal.removeEventListener("abort", onAbort);
      if (stderrPending) emit(stderrPending);
      if (failure) return reject(failure);
      if (code !== 0) {
        return reject(
          fail(
            "plugin_failed",
            `the auth plugin failed (${signal ? `killed by ${signal}` : `exit code ${code}`})`,
            stderrTail.trim(),
            {
              exitCode: code,
            },
          ),
        );
      }
      const token = Buffer.concat(out).toString("utf8").trim();
      if (token === "")
        return reject(
          fail("plugin_no_token", "the auth plugin printed no token on stdout", stderrTail.trim()),
        );
      if (/[\r\n]/.test(token))
        return reject(fail("plugin_no_token", "the auth plugin's token spans several lines"));
      resolve({ token, state: Buffer.concat(stateChunks) });
    });

    stdin.end(state);
  });
}

export function createExecSource(
  config: AuthConfigOf<"exec">,
  uuid: string | undefined,
  deps: CredentialDeps,
): CredentialSource {
  let state: Buffer = Buffer.alloc(0);
  const timeoutMs = parseDuration(config.timeout);
  const token = createSharedToken({
    clock: deps.clock,
    fetch: async (signal) => {
      const result = await runAuthPlugin(config.command, state, {
        timeoutMs,
        signal,
        env: deps.env,
        platform: deps.platform,
        onMessage: (line) => deps.tell(`auth plugin: ${line}`),
      });
      state = result.state;
      return result.token;
    },
  });

  return {
    method: "exec",
    get: async (signal) => bearer(await token.get(signal), uuid),
    refused(rejected) {
      if (rejected.token !== undefined) token.drop(rejected.token);
      return true;
    },
  };
}
