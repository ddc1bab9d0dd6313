// `certfleet serve` as a real process for the benchmarks (SQLite in a temp directory, embedded CA,
// warn-level logs), and CPU accounting of its whole process tree (primary + workers) from /proc.
import { spawn } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { stringify } from "yaml";
import { waitFor } from "./pebble.js";

const BIN = new URL("../../bin/certfleet.js", import.meta.url).pathname;
const TICK_MS = 1000 / 100; // USER_HZ on Linux

function procTable() {
  const stats = new Map();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      stats.set(Number(entry), { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) });
    } catch {
      /* exited meanwhile */
    }
  }
  return stats;
}

export function childCount(pid) {
  return [...procTable().values()].filter((s) => s.ppid === pid).length;
}

/** CPU ms used so far by `pid` and every live descendant (utime + stime). */
export function treeCpuMs(pid) {
  const stats = procTable();
  let total = 0;
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop();
    total += stats.get(p)?.ticks ?? 0;
    for (const [child, s] of stats) if (s.ppid === p) stack.push(child);
  }
  return total * TICK_MS;
}

/**
 * Start `certfleet serve` with `workers` workers and `extra` config merged in; resolves once every
 * worker listens. `profileDir`: every process writes a V8 CPU profile there on exit.
 * @returns {Promise<{child, url, caPem, apiKey, stop(): Promise<void>}>}
 */
export async function startServe({ dir, workers, extra = {}, profileDir }) {
  const config = {
    server: { bind: "127.0.0.1", port: 0, workers },
    dataDir: join(dir, "certfleet"),
    logging: { level: "warn" },
    ...extra,
  };
  const configPath = join(dir, "certfleet.yaml");
  await writeFile(configPath, stringify(config));
  const profile = profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [];
  const child = spawn(process.execPath, [...profile, BIN, "serve", "--config", configPath], {
    cwd: dir,
    stdio: ["ignore", "pipe", "pipe"],
    env: { PATH: process.env.PATH, HOME: dir },
  });
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));
  };
  try {
    await waitFor(
      // workers after the first log only at info level: count the processes instead, then let the
      // last one finish starting
      async () => /listening on \S+/.test(out) && (workers === 1 || childCount(child.pid) === workers),
      child,
      "certfleet serve",
      120_000,
    );
  } catch (e) {
    await stop();
    throw new Error(`${e.message}\n${err}`);
  }
  if (workers > 1) await new Promise((r) => setTimeout(r, 3000));
  const url = /listening on (\S+)/.exec(out)[1].replace("localhost", "127.0.0.1");
  // absent when the config brings its own TLS certificate / API keys
  const caPem = await readFile(join(config.dataDir, "ca.pem"), "utf8").catch(() => undefined);
  const apiKey =
    (await readFile(join(config.dataDir, "api-key"), "utf8").catch(() => ""))?.trim() || undefined;
  return { child, url, caPem, apiKey, stop };
}
