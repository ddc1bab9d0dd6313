import { spawn, type SpawnOptions } from "node:child_process";

/** The built CLI; `npm run build` refreshes it. */
export const BIN = new URL("../../bin/certfleet.js", import.meta.url).pathname;

/**
 * Run `certfleet serve` (or any command) to its exit, bounded in time; for start-up failures, which
 * must end the process on their own.
 */
export function runToExit(
  args: string[],
  options: { cwd: string; env?: Record<string, string>; uid?: number; gid?: number; timeoutMs?: number },
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const spawnOptions: SpawnOptions = {
    cwd: options.cwd,
    env: { PATH: process.env.PATH ?? "", HOME: options.cwd, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
    ...(options.uid !== undefined ? { uid: options.uid, gid: options.gid ?? options.uid } : {}),
  };
  const child = spawn(process.execPath, [BIN, ...args], spawnOptions);
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`certfleet ${args.join(" ")} did not exit:\n${stderr}\n${stdout}`));
    }, options.timeoutMs ?? 30_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      // let the pipes drain
      setImmediate(() => resolve({ code, stdout, stderr }));
    });
  });
}

/** stderr lines that are not JSON log lines: what a person reads. */
export function messageLines(stderr: string): string[] {
  return stderr.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("{"));
}
