import { Resolver } from "node:dns/promises";
import { CertfleetError, UpstreamError, throwIfAborted } from "../core/errors.js";

/**
 * DNS lookups the DNS-01 machinery needs, through resolvers the operator chooses (`servers`, each
 * "host:port"). The system resolver is only the default: split-horizon setups and tests point this at
 * the servers that see the public (or test) view. Each operation uses a fresh c-ares channel, so no
 * answer is cached between calls and an abort cancels exactly that operation's queries.
 *
 * Names are given and returned lowercase without the trailing dot.
 */
export interface DnsResolverOptions {
  /** Resolvers to ask, e.g. ["127.0.0.1:5353", "[::1]:53"]. Empty or absent: the system's. */
  servers?: readonly string[];
  /** Per-query timeout (ms) and attempts per server. */
  timeoutMs?: number;
  tries?: number;
}

export interface DnsResolver {
  /** The zone apex `fqdn` belongs to: the closest enclosing name that owns an SOA (walking up). */
  findZone(fqdn: string, signal: AbortSignal): Promise<string>;
  /**
   * Follow a CNAME chain from `fqdn` (at most 10 hops) and return the name that finally holds the TXT
   * record: `_acme-challenge.example.com CNAME x.auth.acme-dns.io` means the value is written at the
   * target. Returns `fqdn` itself when it is not an alias.
   */
  followChallengeCname(fqdn: string, signal: AbortSignal): Promise<string>;
  /** NS host names of `zone`. */
  nameservers(zone: string, signal: AbortSignal): Promise<string[]>;
  /** IPv4 and IPv6 addresses of `host` (empty if it has none). */
  addresses(host: string, signal: AbortSignal): Promise<string[]>;
}

/** How many CNAME hops followChallengeCname accepts before it calls the chain a loop. */
export const MAX_CNAME_HOPS = 10;

/** c-ares error codes meaning "the name or the record type is not there". */
const ABSENT = new Set(["ENOTFOUND", "ENODATA"]);

export function normalizeFqdn(name: string): string {
  return name.trim().toLowerCase().replace(/\.$/, "");
}

export function isAbsent(e: unknown): boolean {
  return ABSENT.has((e as { code?: string } | null)?.code ?? "");
}

/**
 * Run `fn` against a fresh resolver bound to `servers`; cancel its queries when `signal` aborts.
 * Exported for the propagation check, which asks each authoritative server on its own.
 */
export async function withResolver<T>(
  servers: readonly string[] | undefined,
  options: { timeoutMs?: number; tries?: number },
  signal: AbortSignal,
  fn: (resolver: Resolver) => Promise<T>,
): Promise<T> {
  throwIfAborted(signal);
  const resolver = new Resolver({ timeout: options.timeoutMs ?? 2_000, tries: options.tries ?? 2 });
  if (servers && servers.length > 0) resolver.setServers([...servers]);
  const onAbort = () => resolver.cancel();
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    return await fn(resolver);
  } catch (e) {
    throwIfAborted(signal);
    throw e;
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

function lookupFailed(what: string, name: string, e: unknown): UpstreamError {
  const code = (e as { code?: string } | null)?.code;
  return new UpstreamError("dns_lookup_failed", `dns lookup failed: ${what} ${name} (${code ?? "error"})`, {
    cause: e,
    internal: e instanceof Error ? e.message : String(e),
    details: { name, query: what, error: code },
  });
}

export function createDnsResolver(options: DnsResolverOptions = {}): DnsResolver {
  const servers = options.servers;
  const run = <T>(signal: AbortSignal, fn: (r: Resolver) => Promise<T>) =>
    withResolver(servers, options, signal, fn);

  async function cnameOf(name: string, signal: AbortSignal): Promise<string | undefined> {
    try {
      const targets = await run(signal, (r) => r.resolveCname(name));
      return targets[0] === undefined ? undefined : normalizeFqdn(targets[0]);
    } catch (e) {
      if (e instanceof CertfleetError) throw e;
      if (isAbsent(e)) return undefined;
      throw lookupFailed("CNAME", name, e);
    }
  }

  return {
    async findZone(fqdn, signal) {
      const labels = normalizeFqdn(fqdn).split(".");
      for (let i = 0; i < labels.length; i++) {
        const candidate = labels.slice(i).join(".");
        let badResponse: unknown;
        try {
          await run(signal, (r) => r.resolveSoa(candidate));
        } catch (e) {
          if (e instanceof CertfleetError) throw e;
          const code = (e as { code?: string }).code;
          // REFUSED: an authoritative-only server saying "not a zone of mine"; try the parent.
          if (isAbsent(e) || code === "EREFUSED") continue;
          // c-ares cannot parse an SOA answer that starts with a CNAME: see whether this is an alias.
          if (code !== "EBADRESP") throw lookupFailed("SOA", candidate, e);
          badResponse = e;
        }
        // A resolver chases CNAMEs, so an alias whose target is an apex also "has" an SOA. An alias
        // cannot be an apex (RFC 1034 §3.6.2): keep walking.
        if ((await cnameOf(candidate, signal)) !== undefined) continue;
        if (badResponse !== undefined) throw lookupFailed("SOA", candidate, badResponse);
        return candidate;
      }
      throw new UpstreamError("dns_zone_not_found", `no DNS zone (SOA) found for ${normalizeFqdn(fqdn)}`, {
        details: { name: normalizeFqdn(fqdn) },
        retryable: false,
      });
    },

    async followChallengeCname(fqdn, signal) {
      let name = normalizeFqdn(fqdn);
      const seen = new Set([name]);
      for (let hop = 0; hop < MAX_CNAME_HOPS; hop++) {
        const target = await cnameOf(name, signal);
        if (target === undefined) return name;
        if (seen.has(target)) break;
        seen.add(target);
        name = target;
      }
      throw new UpstreamError(
        "dns_cname_loop",
        `the CNAME chain from ${normalizeFqdn(fqdn)} loops or is too long`,
        {
          details: { name: normalizeFqdn(fqdn), chain: [...seen] },
          retryable: false,
        },
      );
    },

    async nameservers(zone, signal) {
      try {
        return (await run(signal, (r) => r.resolveNs(normalizeFqdn(zone)))).map(normalizeFqdn);
      } catch (e) {
        if (e instanceof CertfleetError) throw e;
        if (isAbsent(e)) return [];
        throw lookupFailed("NS", zone, e);
      }
    },

    async addresses(host, signal) {
      const name = normalizeFqdn(host);
      const lookups = await Promise.allSettled([
        run(signal, (r) => r.resolve4(name)),
        run(signal, (r) => r.resolve6(name)),
      ]);
      throwIfAborted(signal);
      const out: string[] = [];
      for (const result of lookups) {
        if (result.status === "fulfilled") out.push(...result.value);
        else if (!isAbsent(result.reason)) throw lookupFailed("A/AAAA", name, result.reason);
      }
      return out;
    },
  };
}
