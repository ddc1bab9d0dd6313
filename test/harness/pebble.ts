import { spawn, type ChildProcess } from "node:child_process";
import { webcrypto } from "node:crypto";
import { createSocket } from "node:dgram";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";
import { Agent, request } from "undici";

/**
 * A real Pebble (Let's Encrypt's test CA) for tests, and pebble-challtestsrv as its DNS server.
 * Everything listens on 127.0.0.1 at free ports; the TLS certificate for Pebble's own listener comes
 * from a throwaway CA made at start-up (the Debian package ships none). `stop()` kills the process and
 * removes the temp directory.
 */
export interface StartPebbleOptions {
  /** "127.0.0.1:<port>" of the DNS server Pebble's validator resolves through (challtestsrv or BIND). */
  dnsServer?: string;
  /** Port Pebble's validator connects to for HTTP-01 (default: a free port nobody listens on). */
  httpPort?: number;
  /** Port for TLS-ALPN-01 (default: a free port nobody listens on). */
  tlsPort?: number;
  /** EAB MAC keys (kid → base64url HMAC key); when given, EAB is required. */
  eab?: Record<string, string>;
  /**
   * Environment overrides. Defaults: PEBBLE_VA_NOSLEEP=1, PEBBLE_WFE_NONCEREJECT=0,
   * PEBBLE_AUTHZREUSE=0 (so every order presents its challenges).
   */
  env?: Record<string, string>;
  /** Extra keys merged into the "pebble" config object. */
  config?: Record<string, unknown>;
}

export interface PebbleServer {
  directoryUrl: string;
  /** PEM of the throwaway CA that signed Pebble's own TLS certificate (trust this to talk to Pebble). */
  caBundlePem: string;
  /** Certificate + key for 127.0.0.1/localhost signed by that CA (for a proxy in front of Pebble). */
  serverCertPem: string;
  serverKeyPem: string;
  managementUrl: string;
  httpPort: number;
  tlsPort: number;
  /** The root that signs issued certificates (changes on every start). */
  rootPem(): Promise<string>;
  intermediatePem(): Promise<string>;
  /** Pebble's log so far (for failure messages). */
  log(): string;
  stop(): Promise<void>;
}

export interface ChallTestSrv {
  /** "127.0.0.1:<port>" — pass to startPebble({ dnsServer }). */
  dnsAddress: string;
  managementUrl: string;
  /** Set a TXT record (host without trailing dot is fine; it is added). */
  setTxt(host: string, value: string): Promise<void>;
  clearTxt(host: string): Promise<void>;
  /** Answer A queries for `host` with these addresses instead of the default 127.0.0.1. */
  addA(host: string, addresses: string[]): Promise<void>;
  stop(): Promise<void>;
}

/** A port free for TCP (and, with `udp`, UDP) on 127.0.0.1 right now. */
export async function freePort(udp = false): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => {
        const address = server.address();
        server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
      });
    });
    if (!udp) return port;
    const udpFree = await new Promise<boolean>((resolve) => {
      const socket = createSocket("udp4");
      socket.once("error", () => resolve(false));
      socket.bind(port, "127.0.0.1", () => socket.close(() => resolve(true)));
    });
    if (udpFree) return port;
  }
  throw new Error("no free port");
}

const crypto = webcrypto;
const EC = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

function toPem(der: ArrayBuffer, label: string): string {
  const b64 = Buffer.from(der).toString("base64");
  return `-----BEGIN ${label}-----\n${b64.match(/.{1,64}/g)!.join("\n")}\n-----END ${label}-----\n`;
}

/** A throwaway CA and a 127.0.0.1/localhost server certificate it signed. */
export async function createTestTlsMaterial(): Promise<{ caPem: string; certPem: string; keyPem: string }> {
  const caKeys = await crypto.subtle.generateKey(EC, true, ["sign", "verify"]);
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(Date.now() + 24 * 3600_000);
  const ca = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: "01",
      name: "CN=certfleet test TLS CA",
      notBefore,
      notAfter,
      keys: caKeys,
      signingAlgorithm: EC,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  const leafKeys = await crypto.subtle.generateKey(EC, true, ["sign", "verify"]);
  const leaf = await x509.X509CertificateGenerator.create(
    {
      serialNumber: "02",
      subject: "CN=localhost",
      issuer: ca.subject,
      notBefore,
      notAfter,
      publicKey: leafKeys.publicKey,
      signingKey: caKeys.privateKey,
      signingAlgorithm: EC,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension([
          { type: "dns", value: "localhost" },
          { type: "ip", value: "127.0.0.1" },
        ]),
        await x509.AuthorityKeyIdentifierExtension.create(ca, false, crypto),
      ],
    },
    crypto,
  );
  const keyDer = await crypto.subtle.exportKey("pkcs8", leafKeys.privateKey);
  return {
    caPem: ca.toString("pem") + "\n",
    certPem: leaf.toString("pem") + "\n",
    keyPem: toPem(keyDer, "PRIVATE KEY"),
  };
}

function collectOutput(child: ChildProcess): () => string {
  let out = "";
  const append = (chunk: Buffer) => {
    out += chunk.toString();
    if (out.length > 200_000) out = out.slice(-100_000);
  };
  child.stdout?.on("data", append);
  child.stderr?.on("data", append);
  return () => out;
}

function killChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
    setTimeout(() => child.kill("SIGKILL"), 3000).unref();
  });
}

async function waitUntil(
  check: () => Promise<boolean>,
  child: ChildProcess,
  what: string,
  log: () => string,
) {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited (${child.exitCode}):\n${log()}`);
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not start in time:\n${log()}`);
}

export async function startPebble(options: StartPebbleOptions = {}): Promise<PebbleServer> {
  const tlsMaterial = await createTestTlsMaterial();
  const dir = await mkdtemp(join(tmpdir(), "certfleet-pebble-"));
  await writeFile(join(dir, "ca.pem"), tlsMaterial.caPem);
  await writeFile(join(dir, "cert.pem"), tlsMaterial.certPem);
  await writeFile(join(dir, "key.pem"), tlsMaterial.keyPem, { mode: 0o600 });
  const agent = new Agent({ connect: { ca: tlsMaterial.caPem } });
  const httpPort = options.httpPort ?? (await freePort());
  const tlsPort = options.tlsPort ?? (await freePort());

  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const managementPort = await freePort();
    const config = {
      pebble: {
        listenAddress: `127.0.0.1:${port}`,
        managementListenAddress: `127.0.0.1:${managementPort}`,
        certificate: join(dir, "cert.pem"),
        privateKey: join(dir, "key.pem"),
        httpPort,
        tlsPort,
        ocspResponderURL: "",
        externalAccountBindingRequired: options.eab !== undefined,
        ...(options.eab ? { externalAccountMACKeys: options.eab } : {}),
        ...options.config,
      },
    };
    const configPath = join(dir, "pebble-config.json");
    await writeFile(configPath, JSON.stringify(config, null, 2));
    const args = ["-config", configPath, ...(options.dnsServer ? ["-dnsserver", options.dnsServer] : [])];
    const child = spawn("pebble", args, {
      cwd: dir,
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        PEBBLE_VA_NOSLEEP: "1",
        PEBBLE_WFE_NONCEREJECT: "0",
        PEBBLE_AUTHZREUSE: "0",
        ...options.env,
      },
    });
    const log = collectOutput(child);
    const directoryUrl = `https://127.0.0.1:${port}/dir`;
    const managementUrl = `https://127.0.0.1:${managementPort}`;
    try {
      await waitUntil(
        async () => {
          const res = await request(directoryUrl, { dispatcher: agent });
          await res.body.text();
          return res.statusCode === 200;
        },
        child,
        "pebble",
        log,
      );
    } catch (e) {
      lastError = e;
      await killChild(child);
      continue;
    }
    const fetchPem = async (path: string) => {
      const res = await request(`${managementUrl}${path}`, { dispatcher: agent });
      const text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`pebble management ${path}: ${res.statusCode} ${text}`);
      return text;
    };
    return {
      directoryUrl,
      caBundlePem: tlsMaterial.caPem,
      serverCertPem: tlsMaterial.certPem,
      serverKeyPem: tlsMaterial.keyPem,
      managementUrl,
      httpPort,
      tlsPort,
      rootPem: () => fetchPem("/roots/0"),
      intermediatePem: () => fetchPem("/intermediates/0"),
      log,
      stop: async () => {
        await killChild(child);
        await agent.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  }
  await agent.close();
  await rm(dir, { recursive: true, force: true });
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}

/**
 * pebble-challtestsrv as a mock DNS server: A queries answer 127.0.0.1, AAAA nothing, TXT whatever was
 * set through the management API. Its HTTP-01 / TLS-ALPN-01 / HTTPS listeners are turned off.
 */
export async function startChallTestSrv(): Promise<ChallTestSrv> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const dnsPort = await freePort(true);
    const managementPort = await freePort();
    const child = spawn(
      "pebble-challtestsrv",
      [
        "-dns01",
        `127.0.0.1:${dnsPort}`,
        "-management",
        `127.0.0.1:${managementPort}`,
        "-http01",
        "",
        "-https01",
        "",
        "-tlsalpn01",
        "",
        "-defaultIPv4",
        "127.0.0.1",
        "-defaultIPv6",
        "",
      ],
      { stdio: ["ignore", "pipe", "pipe"], env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } },
    );
    const log = collectOutput(child);
    const managementUrl = `http://127.0.0.1:${managementPort}`;
    const post = async (path: string, body: unknown) => {
      const res = await request(`${managementUrl}${path}`, { method: "POST", body: JSON.stringify(body) });
      const text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`challtestsrv ${path}: ${res.statusCode} ${text}`);
    };
    const fqdn = (host: string) => (host.endsWith(".") ? host : `${host}.`);
    try {
      // An unknown host's clear-txt is a harmless 200 once the management listener is up.
      await waitUntil(
        () => post("/clear-txt", { host: "probe.invalid." }).then(() => true),
        child,
        "pebble-challtestsrv",
        log,
      );
    } catch (e) {
      lastError = e;
      await killChild(child);
      continue;
    }
    return {
      dnsAddress: `127.0.0.1:${dnsPort}`,
      managementUrl,
      setTxt: (host, value) => post("/set-txt", { host: fqdn(host), value }),
      clearTxt: (host) => post("/clear-txt", { host: fqdn(host) }),
      addA: (host, addresses) => post("/add-a", { host: fqdn(host), addresses }),
      stop: () => killChild(child),
    };
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}
