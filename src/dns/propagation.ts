import { sleep } from "../core/clock.js";
import { CertfleetError, UpstreamError, throwIfAborted } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import { formatEndpoint, parseEndpoint } from "./dns-transport.js";
import { isAbsent, normalizeFqdn, withResolver, type DnsResolver } from "./resolver.js";

/**
 * "Will the CA see it yet?" A TXT value is ready when every authoritative server of its zone returns
 * it: the CA may ask any of them, and asking a recursive resolver would only measure its cache.
 * Authoritative servers are found through the zone's NS records (addresses through the configured
 * resolver), or given outright when the public NS set is not reachable from here.
 */
export interface PropagationDeps {
  resolver: DnsResolver;
  logger: Logger;
  /** Ask these ("host:port") instead of the zone's NS set. */
  authoritativeServers?: readonly string[];
  /** Port the zone's NS hosts answer on (53 everywhere but in unusual setups). */
  authoritativePort?: number;
  /** Per-query timeout (ms). */
  queryTimeoutMs?: number;
}

export interface WaitForTxtOptions {
  fqdn: string;
  value: string;
  timeoutMs: number;
  intervalMs: number;
  signal: AbortSignal;
  /** The zone, when the caller already knows it (saves the SOA walk). */
  zone?: string;
  /** Overrides the checker's authoritative server list for this wait. */
  authoritativeServers?: readonly string[];
}

export interface PropagationChecker {
  /**
   * Resolve once every authoritative server returns `value` at `fqdn`. Rejects with UpstreamError
   * `dns_propagation_timeout` (retryable) after `timeoutMs`, or `aborted` when `signal` fires.
   */
  waitForTxt(options: WaitForTxtOptions): Promise<void>;
}

export function createPropagationChecker(deps: PropagationDeps): PropagationChecker {
  const port = deps.authoritativePort ?? 53;
  const queryTimeoutMs = deps.queryTimeoutMs ?? 2_000;

  async function authoritativeServers(fqdn: string, zone: string | undefined, signal: AbortSignal) {
    const apex = zone ?? (await deps.resolver.findZone(fqdn, signal));
    const hosts = await deps.resolver.nameservers(apex, signal);
    const servers = new Set<string>();
    for (const host of hosts) {
      for (const address of await deps.resolver.addresses(host, signal)) {
        servers.add(formatEndpoint({ host: address, port }));
      }
    }
    if (servers.size === 0) {
      throw new UpstreamError(
        "dns_lookup_failed",
        `no authoritative server addresses found for zone ${apex}`,
        {
          details: { zone: apex, nameservers: hosts },
        },
      );
    }
    return [...servers];
  }

  async function txtAt(server: string, fqdn: string, signal: AbortSignal): Promise<string[]> {
    try {
      const records = await withResolver([server], { timeoutMs: queryTimeoutMs, tries: 1 }, signal, (r) =>
        r.resolveTxt(fqdn),
      );
      return records.map((chunks) => chunks.join(""));
    } catch (e) {
      if (!(e instanceof CertfleetError) && isAbsent(e)) return [];
      throw e;
    }
  }

  return {
    async waitForTxt(options) {
      const fqdn = normalizeFqdn(options.fqdn);
      throwIfAborted(options.signal);
      const deadline = AbortSignal.timeout(options.timeoutMs);
      const signal = AbortSignal.any([options.signal, deadline]);
      const override = options.authoritativeServers ?? deps.authoritativeServers;
      let servers = override?.map((s) => formatEndpoint(parseEndpoint(s)));
      let pending: string[] = servers ?? [];
      let lastError: unknown;

      try {
        for (;;) {
          try {
            servers ??= await authoritativeServers(fqdn, options.zone, signal);
            const answers = await Promise.all(
              servers.map(async (server) => {
                try {
                  return { server, found: (await txtAt(server, fqdn, signal)).includes(options.value) };
                } catch (e) {
                  if (e instanceof CertfleetError) throw e;
                  lastError = e;
                  return { server, found: false };
                }
              }),
            );
            pending = answers.filter((a) => !a.found).map((a) => a.server);
            if (pending.length === 0) return;
            deps.logger.debug({ fqdn, pending }, "dns-01 TXT not yet on every authoritative server");
          } catch (e) {
            if (e instanceof CertfleetError && e.code === "aborted") throw e;
            lastError = e;
            deps.logger.debug({ fqdn, err: e }, "dns-01 propagation check failed, will retry");
          }
          await sleep(options.intervalMs, signal).catch(() => throwIfAborted(signal));
        }
      } catch (e) {
        if (options.signal.aborted) throw e;
        if (deadline.aborted) {
          throw new UpstreamError(
            "dns_propagation_timeout",
            `TXT record at ${fqdn} was not seen on every authoritative server within ${options.timeoutMs} ms`,
            {
              cause: lastError,
              internal: lastError instanceof Error ? lastError.message : undefined,
              details: { name: fqdn, pending, timeoutMs: options.timeoutMs },
            },
          );
        }
        throw e;
      }
    },
  };
}
