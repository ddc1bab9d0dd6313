import { spawn, type ChildProcess } from "node:child_process";

/**
 * Run an operator-supplied command: a string goes through the platform shell (`sh -c` on Unix,
 * `cmd /C` on Windows), an argv list runs directly. Output is capped, a timeout kills the process, and
 * the result is reported, never thrown — callers decide what a failure means.
 */
export type CommandSpec = string | readonly string[];

export function commandArgv(
  command: CommandSpec,
  platform: NodeJS.Platform = process.platform,
): [string, string[]] {
  if (typeof command !== "string") return [command[0]!, command.slice(1)];
  return platform === "win32" ? ["cmd", ["/C", command]] : ["sh", ["-c", command]];
}

/**
 * Spawn options that put the command in its own process group (Unix), so `killTree` can stop it and
 * everything it started — a shell killed alone leaves its children holding the output pipes open.
 */
export function groupOptions(platform: NodeJS.Platform = process.platform): { detached: boolean } {
  return { detached: platform !== "win32" };
}

export function killTree(child: ChildProcess, platform: NodeJS.Platform = process.platform): void {
  if (platform !== "win32" && child.pid !== undefined) {
    try {
      process.kill(-child.pid, "SIGKILL");
      return;
    } catch {
      // already gone, or not a group leader: fall back to the process itself
    }
  }
  child.kill("SIGKILL");
}

export interface CommandResult {
  /** Exit code, or null when killed by a signal or not started. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** Set when the process could not be started at all. */
  spawnError?: string;
  /** Last 8 KiB of stdout and stderr, interleaved. */
  output: string;
}

const OUTPUT_TAIL = 8 * 1024;

export function runCommand(
  command: CommandSpec,
  options: {
    timeoutMs: number;
    env?: NodeJS.ProcessEnv;
    cwd?: string;
    platform?: NodeJS.Platform;
    signal?: AbortSignal;
  },
): Promise<CommandResult> {
  const [file, args] = commandArgv(command, options.platform);
  return new Promise((resolve) => {
    let output = "";
    let timedOut = false;
    const child = spawn(file, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: ["ignore", "pipe", "pipe"],
      windowsHide: true,
      ...groupOptions(options.platform),
    });
    const append = (d: Buffer) => {
      output = (output + d.toString("utf8")).slice(-OUTPUT_TAIL);
    };
    child.stdout.on("data", append);
    child.stderr.on("data", append);
    const timer = setTimeout(() => {
      timedOut = true;
      killTree(child, options.platform);
    }, options.timeoutMs);
    const onAbort = () => killTree(child, options.platform);
    options.signal?.addEventListener("abort", onAbort, { once: true });
    const finish = (result: Omit<CommandResult, "output" | "timedOut">) => {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      resolve({ ...result, timedOut, output });
    };
    child.once("error", (e) => finish({ exitCode: null, signal: null, spawnError: e.message }));
    child.once("close", (exitCode, signal) => finish({ exitCode, signal }));
  });
}

/** A one-line description of a result, for logs and error details. */
export function describeResult(r: CommandResult): string {
  if (r.spawnError) return `could not start: ${r.spawnError}`;
  if (r.timedOut) return "timed out and was killed";
  if (r.signal) return `killed by ${r.signal}`;
  return `exited with ${r.exitCode}`;
}
