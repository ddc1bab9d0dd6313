import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Agent, request } from "undici";
import { stringify } from "yaml";
import { createCertfleet, type Certfleet } from "../../src/composition.js";
import { parseConfig } from "../../src/config/load.js";
import { resolveConfig, type ResolvedConfig } from "../../src/config/resolve.js";
import { systemClock } from "../../src/core/clock.js";
import { silentLogger } from "../../src/core/logger.js";

/**
 * certfleet started from a documentation page's own configuration block: the block as written, with
 * only what a test must own rewritten — dataDir in a temp directory, the listener on 127.0.0.1 port 0,
 * no HTTP-01 listener, and any API keys the test needs added. The same file is what the real CLI
 * (`certfleet acme eab create --config …`) reads, so both see one database.
 */
export interface DocConfig {
  dir: string;
  /** The rewritten configuration, written as YAML for the CLI. */
  configPath: string;
  config: ResolvedConfig;
  env: NodeJS.ProcessEnv;
}

export interface ApiKeyInput {
  name: string;
  key: string;
  admin?: boolean;
  grants?: string[];
}

export async function prepareDocConfig(
  raw: Record<string, unknown>,
  options: { env?: NodeJS.ProcessEnv; apiKeys?: ApiKeyInput[] } = {},
): Promise<DocConfig> {
  const dir = await mkdtemp(join(tmpdir(), "cf-docs-"));
  const server = (raw["server"] ?? {}) as Record<string, unknown>;
  const auth = (raw["auth"] ?? {}) as Record<string, unknown>;
  const rewritten = {
    ...raw,
    dataDir: dir,
    server: { ...server, bind: "127.0.0.1", port: 0, http01: { enabled: false } },
    ...(options.apiKeys
      ? { auth: { ...auth, apiKeys: [...((auth["apiKeys"] as unknown[]) ?? []), ...options.apiKeys] } }
      : {}),
  };
  const configPath = join(dir, "certfleet.yaml");
  await writeFile(configPath, stringify(rewritten), { mode: 0o600 });
  const env = options.env ?? {};
  return { dir, configPath, config: resolveConfig(parseConfig(rewritten, env), dir), env };
}

export interface DocServer {
  cf: Certfleet;
  /** https://127.0.0.1:<port> */
  url: string;
  get(path: string, headers?: Record<string, string>): Promise<HttpResult>;
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<HttpResult>;
  stop(): Promise<void>;
}

export interface HttpResult {
  status: number;
  text: string;
  json<T = Record<string, unknown>>(): T;
}

/** Nothing in these tests may reach another host: an upstream fetch fails loudly instead. */
const noNetwork: typeof fetch = (input) =>
  Promise.reject(new Error(`docs tests make no outside requests (${String(input)})`));

export async function startDocServer(prepared: DocConfig): Promise<DocServer> {
  const cf = await createCertfleet(prepared.config, {
    logger: silentLogger(),
    clock: systemClock,
    fetch: noNetwork,
    env: prepared.env,
  });
  let agent: Agent | undefined;
  try {
    const url = new URL((await cf.start()).url).origin;
    // trust exactly the CA file the docs tell clients to trust
    agent = new Agent({ connect: { ca: await readFile(cf.caPath, "utf8") } });
    const dispatcher = agent;
    const call = async (
      method: "GET" | "POST",
      path: string,
      headers: Record<string, string>,
      body?: unknown,
    ) => {
      const res = await request(url + path, {
        method,
        dispatcher,
        headers: { ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      });
      const text = await res.body.text();
      return { status: res.statusCode, text, json: <T>() => JSON.parse(text) as T };
    };
    return {
      cf,
      url,
      get: (path, headers = {}) => call("GET", path, headers),
      post: (path, body, headers = {}) => call("POST", path, headers, body),
      async stop() {
        await cf.stop();
        await dispatcher.close();
        await rm(prepared.dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await cf.stop();
    await agent?.close();
    await rm(prepared.dir, { recursive: true, force: true });
    throw e;
  }
}

const exec = promisify(execFile);
const TS_REGISTER = fileURLToPath(new URL("../agent/support/ts-register.mjs", import.meta.url));
const CLI_MAIN = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));

/** The real `certfleet` CLI from the sources (no build needed): `args` as a user would type them. */
export async function runCertfleetCli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ stdout: string; stderr: string }> {
  return exec(process.execPath, ["--import", TS_REGISTER, CLI_MAIN, ...args], {
    env: { PATH: process.env["PATH"], HOME: process.env["HOME"], ...env },
    timeout: 20_000,
  });
}
