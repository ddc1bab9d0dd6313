import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";

/**
 * Runs the agent as a real process (TypeScript sources through ts-hooks.mjs, so no build is needed):
 * `runAgentOnce` for `agent --once` / `get`, `spawnAgent` for a daemon the test stops itself.
 */
const REGISTER = fileURLToPath(new URL("./ts-register.mjs", import.meta.url));
const ENTRY = fileURLToPath(new URL("./agent-cli.ts", import.meta.url));

export interface AgentRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface SpawnedAgent {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<AgentRun>;
}

export function spawnAgent(
  args: string[],
  options: { env?: Record<string, string>; cwd?: string } = {},
): SpawnedAgent {
  const child = spawn(process.execPath, ["--import", REGISTER, ENTRY, ...args], {
    cwd: options.cwd,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<AgentRun>((resolve) =>
    child.once("close", (code, signal) => resolve({ code, signal, stdout: out, stderr: err })),
  );
  return { child, stdout: () => out, stderr: () => err, exited };
}

export async function runAgent(
  args: string[],
  options: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {},
): Promise<AgentRun> {
  const agent = spawnAgent(args, options);
  const timer = setTimeout(() => agent.child.kill("SIGKILL"), options.timeoutMs ?? 30_000);
  try {
    return await agent.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** A temp directory holding `agent.yaml` with `config`; returns both paths. */
export async function writeAgentConfig(
  config: Record<string, unknown>,
  dir?: string,
): Promise<{ dir: string; path: string }> {
  const d = dir ?? (await mkdtemp(join(tmpdir(), "cf-agent-")));
  const path = join(d, "agent.yaml");
  await writeFile(path, stringify(config));
  return { dir: d, path };
}
