import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, fetch } from "undici";
import { stringify } from "yaml";

/**
 * Runs `certfleet serve` as a real process (the built bin), on 127.0.0.1 with a free port, and gives
 * the test what a user would see: the printed URL and API key, and the CA to trust.
 */
export interface CertfleetProcess {
  url: string;
  apiKey: string | undefined;
  caPem: string;
  dataDir: string;
  stdout: () => string;
  stderr: () => string;
  post(
    path: string,
    body: unknown,
    options?: { apiKey?: string; headers?: Record<string, string>; signal?: AbortSignal },
  ): Promise<{ status: number; body: any; headers: Headers }>;
  get(path: string): Promise<{ status: number; body: any }>;
  stop(): Promise<void>;
  child: ChildProcess;
}

const BIN = new URL("../../bin/certfleet.js", import.meta.url).pathname;

export async function startCertfleet(
  options: {
    config?: Record<string, unknown>;
    env?: Record<string, string>;
    dataDir?: string;
    timeoutMs?: number;
    /** CA to trust for the server's certificate (default: the embedded CA the server writes). */
    caPem?: string;
  } = {},
): Promise<CertfleetProcess> {
  const dir = options.dataDir ?? (await mkdtemp(join(tmpdir(), "certfleet-e2e-")));
  const config = {
    dataDir: join(dir, "data"),
    logging: { level: "info" },
    ...options.config,
    // one process unless a test asks for workers (test/ops/serve-workers.test.ts does)
    server: { bind: "127.0.0.1", port: 0, workers: 1, ...(options.config?.server as object | undefined) },
  };
  const configPath = join(dir, "certfleet.yaml");
  await writeFile(configPath, stringify(config));
  const child = spawn(process.execPath, [BIN, "serve", "--config", configPath], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? "", HOME: dir, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  while (!/listening on (\S+)/.test(out)) {
    if (child.exitCode !== null) throw new Error(`certfleet exited with ${child.exitCode}:\n${err}\n${out}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`certfleet did not start:\n${err}\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  // let the rest of the banner arrive
  await new Promise((r) => setTimeout(r, 100));
  const url = /listening on (\S+)/.exec(out)![1]!.replace("localhost", "127.0.0.1");
  // printed once, when generated; on a later start it is only in the data dir
  const apiKey =
    /^\s+(cf_[A-Za-z0-9_-]+)\s*$/m.exec(out)?.[1] ??
    (await readFile(join(config.dataDir as string, "api-key"), "utf8").catch(() => undefined))?.trim();
  const caPem = options.caPem ?? (await readFile(join(config.dataDir as string, "ca.pem"), "utf8"));
  const dispatcher = new Agent({ connect: { ca: caPem, servername: "localhost" } });

  async function call(
    method: string,
    path: string,
    body?: unknown,
    o: { apiKey?: string; headers?: Record<string, string>; signal?: AbortSignal } = {},
  ) {
    const key = o.apiKey ?? apiKey;
    const res = await fetch(url + path, {
      method,
      dispatcher,
      signal: o.signal,
      headers: {
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
        ...(key ? { authorization: `APIKey ${key}` } : {}),
        ...o.headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    return { status: res.status, body: parsed as any, headers: res.headers as unknown as Headers };
  }

  return {
    url,
    apiKey,
    caPem,
    dataDir: config.dataDir as string,
    stdout: () => out,
    stderr: () => err,
    child,
    post: (path, body, o) => call("POST", path, body, o),
    get: (path) => call("GET", path),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const exited = new Promise((r) => child.once("exit", r));
        const t = setTimeout(() => child.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(t);
      }
      await dispatcher.close();
      if (!options.dataDir) await rm(dir, { recursive: true, force: true });
    },
  };
}
