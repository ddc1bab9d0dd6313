import type { ChallengeSolver, SolverChallenge } from "../acme-client/challenge-solver.js";
import type { ResolvedConfig } from "../config/resolve.js";
import type { Authenticate } from "./auth-hook.js";

/**
 * SIGHUP support: the parts built from configuration that may change without a restart sit behind
 * small holders, and a reload swaps what they hold in one assignment. A request (or an ACME challenge)
 * that started before the swap finishes with the part it started with; the next one sees the new part.
 */
export interface Holder<T> {
  readonly current: T;
  swap(next: T): void;
}

export function createHolder<T>(initial: T): Holder<T> {
  let current = initial;
  return {
    get current() {
      return current;
    },
    swap(next) {
      current = next;
    },
  };
}

/** The authentication chain as one stable function that always calls the chain currently held. */
export function swappableAuthenticate(holder: Holder<Authenticate>): Authenticate {
  return (request, signal) => holder.current(request, signal);
}

/**
 * A DNS-01 solver that delegates to the one currently held. Cleanup always goes to the solver that
 * presented the record, so a reload in the middle of an order never leaves a TXT record behind.
 */
export function swappableSolver(holder: Holder<ChallengeSolver>): ChallengeSolver {
  const presentedBy = new Map<string, ChallengeSolver>();
  const keyOf = (c: SolverChallenge) => `${c.domain}\0${c.token}`;
  return {
    type: holder.current.type,
    async present(challenge, signal) {
      const solver = holder.current;
      presentedBy.set(keyOf(challenge), solver);
      await solver.present(challenge, signal);
    },
    async waitReady(challenge, signal) {
      const solver = presentedBy.get(keyOf(challenge)) ?? holder.current;
      await solver.waitReady?.(challenge, signal);
    },
    async cleanup(challenge) {
      const solver = presentedBy.get(keyOf(challenge)) ?? holder.current;
      presentedBy.delete(keyOf(challenge));
      await solver.cleanup(challenge);
    },
  };
}

/**
 * Settings a reload applies in place. Everything else needs a restart; `restartOnlyChanges` names
 * what differs so the operator is told, not silently ignored.
 */
export const RELOADABLE_SETTINGS = [
  "auth.apiKeys",
  "auth.issuers (and auth.jwt, auth.psk)",
  "dns.providers (and their propagation settings)",
  "logging.level",
  "server.tls certificate and key files",
] as const;

/** Resolved-config paths shown with the key the user writes. */
const FILE_KEY: Record<string, string> = {
  logFormat: "logging.format",
  "server.shutdownTimeoutMs": "server.shutdownTimeout",
  "certificates.checkIntervalMs": "certificates.checkInterval",
  "certificates.issueTimeoutMs": "certificates.issueTimeout",
};

/** Config paths that differ between two configs and that a reload cannot apply. */
export function restartOnlyChanges(before: ResolvedConfig, after: ResolvedConfig): string[] {
  const fixed = (c: ResolvedConfig) => ({
    server: { ...c.server, tls: { names: c.server.tls.names } },
    dataDir: c.dataDir,
    storage: c.storage,
    auth: {
      clientCertificates: c.auth.clientCertificates,
      sessionTokens: c.auth.sessionTokens,
      failureLimit: c.auth.failureLimit,
    },
    issuers: c.issuers,
    routing: c.routing,
    dns: { resolvers: c.dns.resolvers, authoritativeServers: c.dns.authoritativeServers },
    certificates: c.certificates,
    acmeServer: c.acmeServer,
    ssh: c.ssh,
    metrics: c.metrics,
    notifications: c.notifications,
    logFormat: c.logFormat,
  });
  const out: string[] = [];
  diff(fixed(before), fixed(after), [], out);
  return out.map((p) => FILE_KEY[p] ?? p.replace(/^storage\b/, "database"));
}

function diff(a: unknown, b: unknown, path: string[], out: string[]): void {
  const plain = (v: unknown): v is Record<string, unknown> =>
    typeof v === "object" && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
  if (plain(a) && plain(b) && path.length < 2) {
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)]))
      diff(a[key], b[key], [...path, key], out);
    return;
  }
  if (JSON.stringify(a) !== JSON.stringify(b)) out.push(path.join("."));
}
