import { spawn, execFile, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import { Resolver } from "node:dns/promises";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

/**
 * A real BIND (`named`) for tests: primary for one or more zones, accepting TSIG-signed dynamic updates,
 * listening only on 127.0.0.1 at a free port, with everything (config, zone files, journals) in a temp
 * directory that `stop()` removes.
 */
export interface BindTsig {
  name: string;
  algorithm: "hmac-sha1" | "hmac-sha224" | "hmac-sha256" | "hmac-sha384" | "hmac-sha512";
  /** Base64. */
  secret: string;
}

export interface StartBindOptions {
  /** The primary zone, e.g. "example.test". */
  zone: string;
  /** More zones served by the same server (e.g. a delegation target for CNAME tests). */
  extraZones?: string[];
  /** Extra zone-file lines per zone, owner names absolute with the trailing dot. */
  records?: Record<string, string[]>;
  /** Defaults to hmac-sha256 with a fresh random secret. */
  tsig?: Partial<BindTsig>;
}

export interface BindServer {
  port: number;
  /** "127.0.0.1:<port>" */
  address: string;
  zones: string[];
  tsig: BindTsig;
  /** Answer data from BIND for `name`/`type` (TXT values are unquoted and joined). */
  dig(name: string, type: string): Promise<string[]>;
  stop(): Promise<void>;
}

/** A port free for both TCP and UDP on 127.0.0.1 right now. */
async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => {
        const address = server.address();
        server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
      });
    });
    const udpFree = await new Promise<boolean>((resolve) => {
      const socket = createSocket("udp4");
      socket.once("error", () => resolve(false));
      socket.bind(port, "127.0.0.1", () => socket.close(() => resolve(true)));
    });
    if (udpFree) return port;
  }
  throw new Error("no free port for BIND");
}

function zoneFile(zone: string, extra: readonly string[]): string {
  return [
    "$TTL 60",
    `${zone}. IN SOA ns1.${zone}. hostmaster.${zone}. 1 3600 600 86400 1`,
    `${zone}. IN NS ns1.${zone}.`,
    `ns1.${zone}. IN A 127.0.0.1`,
    ...extra,
    "",
  ].join("\n");
}

function parseDigLine(type: string, line: string): string {
  if (type.toUpperCase() !== "TXT") return line;
  return [...line.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!.replace(/\\(.)/g, "$1")).join("");
}

export async function startBind(options: StartBindOptions): Promise<BindServer> {
  const tsig: BindTsig = {
    name: options.tsig?.name ?? "certfleet-test-key",
    algorithm: options.tsig?.algorithm ?? "hmac-sha256",
    secret: options.tsig?.secret ?? randomBytes(32).toString("base64"),
  };
  const zones = [options.zone, ...(options.extraZones ?? [])];
  const dir = await mkdtemp(join(tmpdir(), "certfleet-bind-"));

  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const conf = [
      "options {",
      `  directory "${dir}";`,
      `  pid-file "${join(dir, "named.pid")}";`,
      `  session-keyfile "${join(dir, "session.key")}";`,
      `  managed-keys-directory "${dir}";`,
      `  listen-on port ${port} { 127.0.0.1; };`,
      "  listen-on-v6 { none; };",
      "  recursion no;",
      "  notify no;",
      "  dnssec-validation no;",
      "  allow-query { any; };",
      "};",
      "controls { };",
      `key "${tsig.name}" { algorithm ${tsig.algorithm}; secret "${tsig.secret}"; };`,
      ...zones.map(
        (z) =>
          `zone "${z}" { type primary; file "${join(dir, `${z}.zone`)}"; journal "${join(dir, `${z}.jnl`)}"; ` +
          `allow-update { key "${tsig.name}"; }; };`,
      ),
      "",
    ].join("\n");
    for (const z of zones) await writeFile(join(dir, `${z}.zone`), zoneFile(z, options.records?.[z] ?? []));
    const confPath = join(dir, "named.conf");
    await writeFile(confPath, conf);

    const args = ["-c", confPath, "-g", "-n", "1"];
    if (process.getuid?.() === 0) args.push("-u", "root");
    const child = spawn("named", args, { stdio: ["ignore", "ignore", "pipe"] });
    let log = "";
    child.stderr!.on("data", (chunk: Buffer) => {
      log += chunk.toString("utf8");
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));

    try {
      await waitForSoa(port, options.zone, exited, () => log);
      return handle(child, exited, dir, port, zones, tsig);
    } catch (e) {
      lastError = e;
      child.kill("SIGKILL");
      await exited;
    }
  }
  await rm(dir, { recursive: true, force: true });
  throw lastError;
}

async function waitForSoa(port: number, zone: string, exited: Promise<number | null>, log: () => string) {
  const resolver = new Resolver({ timeout: 300, tries: 1 });
  resolver.setServers([`127.0.0.1:${port}`]);
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (gone) throw new Error(`named exited during start-up:\n${log()}`);
    try {
      await resolver.resolveSoa(zone);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`named did not answer SOA ${zone} within 15 s:\n${log()}`);
}

function handle(
  child: ChildProcess,
  exited: Promise<number | null>,
  dir: string,
  port: number,
  zones: string[],
  tsig: BindTsig,
): BindServer {
  let stopped = false;
  return {
    port,
    address: `127.0.0.1:${port}`,
    zones,
    tsig,
    async dig(name, type) {
      const { stdout } = await execFileAsync("dig", [
        "@127.0.0.1",
        "-p",
        String(port),
        "+short",
        "+norecurse",
        "+tries=1",
        "+time=2",
        name,
        type,
      ]);
      return stdout
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => l !== "" && !l.startsWith(";"))
        .map((l) => parseDigLine(type, l));
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 3_000);
      await exited;
      clearTimeout(timer);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
