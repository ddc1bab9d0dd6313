import { readFile } from "node:fs/promises";
import { networkInterfaces, hostname } from "node:os";
import type { Clock } from "../core/clock.js";
import { parseCertificate } from "../core/certificate-info.js";
import { ConfigError } from "../core/errors.js";
import type { KeyValueStore } from "../storage/storage.js";

/**
 * The HTTPS listener's own certificate: the configured one (inline PEM or files), or else one from the
 * embedded CA, kept in storage and reissued when a third of its life remains. Never plain HTTP unless
 * `server.insecureHttp` says so.
 */
export interface ServerTlsMaterial {
  key: string;
  /** Leaf followed by its chain. */
  cert: string;
  notAfter: Date;
  source: "configured" | "embedded";
}

export interface ServerCertificateIssuer {
  issueServerCertificate(
    names: string[],
    ips: string[],
  ): Promise<{ certPem: string; chainPem: string; privateKeyPem: string }>;
}

export async function loadConfiguredTls(tls: {
  certPem?: string;
  keyPem?: string;
  certFile?: string;
  keyFile?: string;
}): Promise<ServerTlsMaterial | undefined> {
  let cert = tls.certPem;
  let key = tls.keyPem;
  if (!cert && tls.certFile && tls.keyFile) {
    try {
      [cert, key] = await Promise.all([readFile(tls.certFile, "utf8"), readFile(tls.keyFile, "utf8")]);
    } catch (e) {
      throw new ConfigError([
        { path: "server.tls", message: `cannot read the certificate or key: ${(e as Error).message}` },
      ]);
    }
  }
  if (!cert || !key) return undefined;
  return { cert, key, notAfter: parseCertificate(cert).notAfter, source: "configured" };
}

/** Addresses the self-issued certificate should cover: the configured names, loopback, this host. */
export function defaultServerIdentities(names: string[], bind: string): { names: string[]; ips: string[] } {
  const ips = new Set(["127.0.0.1", "::1"]);
  if (bind !== "0.0.0.0" && bind !== "::") ips.add(bind);
  else
    for (const addrs of Object.values(networkInterfaces()))
      for (const a of addrs ?? []) if (!a.internal) ips.add(a.address.split("%")[0]!);
  const host = hostname().toLowerCase();
  const all = new Set(names.map((n) => n.toLowerCase()));
  if (/^[a-z0-9.-]+$/.test(host)) all.add(host);
  return { names: [...all], ips: [...ips] };
}

export async function loadOrIssueEmbeddedTls(deps: {
  store: Pick<KeyValueStore, "getValue" | "putValue">;
  ca: ServerCertificateIssuer;
  clock: Clock;
  names: string[];
  ips: string[];
}): Promise<ServerTlsMaterial> {
  const want = JSON.stringify([...deps.names].sort()) + JSON.stringify([...deps.ips].sort());
  const stored = await deps.store.getValue("server-tls", "embedded");
  if (stored) {
    const s = JSON.parse(stored) as { cert: string; key: string; identities: string };
    const info = parseCertificate(s.cert);
    const remaining = info.notAfter.getTime() - deps.clock.now().getTime();
    const lifetime = info.notAfter.getTime() - info.notBefore.getTime();
    if (s.identities === want && remaining > lifetime / 3)
      return { cert: s.cert, key: s.key, notAfter: info.notAfter, source: "embedded" };
  }
  const issued = await deps.ca.issueServerCertificate(deps.names, deps.ips);
  const cert = issued.certPem + issued.chainPem;
  await deps.store.putValue(
    "server-tls",
    "embedded",
    JSON.stringify({ cert, key: issued.privateKeyPem, identities: want }),
    { secret: true },
  );
  return { cert, key: issued.privateKeyPem, notAfter: parseCertificate(cert).notAfter, source: "embedded" };
}
