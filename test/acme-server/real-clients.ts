import { spawn } from "node:child_process";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * The real ACME clients (Debian's lego, certbot, caddy) as child processes with a bounded lifetime:
 * each run has a deadline after which it is killed by PID, and its output is kept for the failure
 * message.
 */
export interface RunResult {
  code: number | null;
  output: string;
}

export function run(
  command: string,
  args: string[],
  options: { env?: Record<string, string>; timeoutMs?: number; cwd?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    const append = (chunk: Buffer) => {
      output += chunk.toString();
    };
    child.stdout.on("data", append);
    child.stderr.on("data", append);
    const timer = setTimeout(() => {
      output += `\n[killed after ${options.timeoutMs ?? 30_000} ms]`;
      child.kill("SIGKILL");
    }, options.timeoutMs ?? 30_000);
    child.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

export interface LegoOptions {
  directoryUrl: string;
  caFile: string;
  domains: string[];
  eab?: { kid: string; hmacKey: string };
  /** Solver flags, e.g. ["--http", "--http.port", "127.0.0.1:5002"]. */
  solver: string[];
  env?: Record<string, string>;
  keyType?: string;
  path?: string;
  timeoutMs?: number;
}

export async function runLego(
  o: LegoOptions,
): Promise<RunResult & { path: string; certPem: () => Promise<string>; issuerPem: () => Promise<string> }> {
  const path = o.path ?? (await mkdtemp(join(tmpdir(), "certfleet-lego-")));
  const args = [
    "--server",
    o.directoryUrl,
    "--email",
    "ops@example.com",
    "--accept-tos",
    "--path",
    path,
    "--key-type",
    o.keyType ?? "ec256",
    ...(o.eab ? ["--eab", `--kid=${o.eab.kid}`, `--hmac=${o.eab.hmacKey}`] : []),
    ...o.domains.flatMap((d) => ["--domains", d]),
    ...o.solver,
    "run",
  ];
  const result = await run("lego", args, {
    env: { LEGO_CA_CERTIFICATES: o.caFile, ...o.env },
    timeoutMs: o.timeoutMs ?? 30_000,
  });
  const file = (ext: string) =>
    readFile(join(path, "certificates", `${o.domains[0]!.replace("*", "_")}.${ext}`), "utf8");
  return { ...result, path, certPem: () => file("crt"), issuerPem: () => file("issuer.crt") };
}

export interface CertbotOptions {
  directoryUrl: string;
  caFile: string;
  domains: string[];
  eab: { kid: string; hmacKey: string };
  httpPort: number;
  keyType?: "ecdsa" | "rsa";
  timeoutMs?: number;
}

export async function runCertbot(
  o: CertbotOptions,
): Promise<
  RunResult & { dir: string; livePem: (file: string) => Promise<string>; log: () => Promise<string> }
> {
  const dir = await mkdtemp(join(tmpdir(), "certfleet-certbot-"));
  const args = [
    "certonly",
    "--non-interactive",
    "--agree-tos",
    "-m",
    "ops@example.com",
    "--server",
    o.directoryUrl,
    `--eab-kid=${o.eab.kid}`,
    // the `=` form, as the docs say: a value starting with "-" must not be read as an option
    `--eab-hmac-key=${o.eab.hmacKey}`,
    "--standalone",
    "--http-01-port",
    String(o.httpPort),
    "--http-01-address",
    "127.0.0.1",
    "--key-type",
    o.keyType ?? "ecdsa",
    "--config-dir",
    join(dir, "config"),
    "--work-dir",
    join(dir, "work"),
    "--logs-dir",
    join(dir, "logs"),
    ...o.domains.flatMap((d) => ["-d", d]),
  ];
  const result = await run("certbot", args, {
    env: { REQUESTS_CA_BUNDLE: o.caFile, HOME: dir },
    timeoutMs: o.timeoutMs ?? 60_000,
  });
  return {
    ...result,
    dir,
    livePem: (file) => readFile(join(dir, "config", "live", o.domains[0]!, file), "utf8"),
    log: () => readFile(join(dir, "logs", "letsencrypt.log"), "utf8").catch(() => ""),
  };
}

export interface CaddyOptions {
  directoryUrl: string;
  caFile: string;
  domain: string;
  /** More site blocks with the same issuer (and EAB key), obtained at the same time as `domain`. */
  moreDomains?: string[];
  eab: { kid: string; hmacKey: string };
  httpPort: number;
  httpsPort: number;
  timeoutMs?: number;
}

/**
 * Caddy never exits on its own, and on failure it retries after 60 s: run it until its log says the
 * certificate was obtained (or an error-level tls.obtain line appears, or the deadline passes), then
 * kill it by PID.
 */
export async function runCaddy(
  o: CaddyOptions,
): Promise<RunResult & { obtained: boolean; dir: string; certPem: () => Promise<string> }> {
  const dir = await mkdtemp(join(tmpdir(), "certfleet-caddy-"));
  const caddyfile = [
    "{",
    "  admin off",
    `  http_port ${o.httpPort}`,
    `  https_port ${o.httpsPort}`,
    "  log {",
    "    format json",
    "    level INFO",
    "  }",
    "}",
    "",
    ...[o.domain, ...(o.moreDomains ?? [])].flatMap((domain) => [
      `${domain} {`,
      "  bind 127.0.0.1",
      "  tls {",
      "    issuer acme {",
      `      dir ${o.directoryUrl}`,
      `      trusted_roots ${o.caFile}`,
      `      eab ${o.eab.kid} ${o.eab.hmacKey}`,
      "      email ops@example.com",
      "    }",
      "  }",
      '  respond "ok"',
      "}",
      "",
    ]),
  ].join("\n");
  const wanted = 1 + (o.moreDomains?.length ?? 0);
  const file = join(dir, "Caddyfile");
  await writeFile(file, caddyfile);
  const env = { HOME: dir, XDG_DATA_HOME: join(dir, "data"), XDG_CONFIG_HOME: join(dir, "config") };
  const child = spawn("caddy", ["run", "--config", file, "--adapter", "caddyfile"], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const outcome = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), o.timeoutMs ?? 30_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.split('"msg":"certificate obtained successfully"').length - 1 >= wanted) {
        clearTimeout(timer);
        resolve(true);
      } else if (/"level":"error","ts":[^\n]*"logger":"tls.obtain"/.test(output)) {
        clearTimeout(timer);
        resolve(false);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
  const exited = new Promise<number | null>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once("exit", (code) => resolve(code));
  });
  child.kill("SIGKILL");
  const code = await exited;
  const certDir = join(env.XDG_DATA_HOME, "caddy", "certificates");
  return {
    code,
    output,
    obtained: outcome,
    dir,
    certPem: async () => {
      const { readdir } = await import("node:fs/promises");
      const [issuerDir] = await readdir(certDir);
      return readFile(join(certDir, issuerDir!, o.domain, `${o.domain}.crt`), "utf8");
    },
  };
}
