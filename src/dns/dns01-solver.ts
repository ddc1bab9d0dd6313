import { createHash } from "node:crypto";
import type { ChallengeSolver, SolverChallenge } from "../acme-client/challenge-solver.js";
import { ValidationError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import type { DnsProvider, TxtRecord } from "./dns-provider.js";
import type { PropagationChecker } from "./propagation.js";
import { normalizeFqdn, type DnsResolver } from "./resolver.js";

/**
 * The DNS-01 solver (RFC 8555 §8.4): writes `base64url(sha256(keyAuthorization))` at
 * `_acme-challenge.<domain>` through the DNS provider routed to that domain, waits until the zone's
 * authoritative servers serve it, and removes exactly that value afterwards.
 *
 * Routing: the route whose `suffix` is the longest match for the domain wins ("" matches every domain).
 * Every domain needs a route (else ValidationError `dns_route_missing`). If `_acme-challenge.<domain>`
 * is a CNAME (delegation, e.g. to an acme-dns zone), the record is written at the end of the chain,
 * through the route configured for the target's suffix if there is one (a catch-all does not count),
 * otherwise through the domain's route.
 */
export interface Dns01Route {
  /** Domain suffix this route serves: "example.com" matches example.com and every name below it. */
  suffix: string;
  provider: DnsProvider;
  /** Zone to write into; default: found by SOA lookup. */
  zone?: string;
  /** TXT TTL in seconds (default 60). */
  ttl?: number;
  propagation: {
    timeoutMs: number;
    intervalMs: number;
    /** Ask these servers ("host:port") instead of the zone's NS set. */
    authoritativeServers?: readonly string[];
    /** Do not wait at all (the CA's own retries cover the delay). */
    skip?: boolean;
  };
}

export interface Dns01SolverDeps {
  routes: readonly Dns01Route[];
  resolver: DnsResolver;
  propagation: PropagationChecker;
  logger: Logger;
  /** Follow `_acme-challenge` CNAMEs (default true). */
  followCnames?: boolean;
}

/** The TXT value for a key authorization (RFC 8555 §8.4). */
export function dns01TxtValue(keyAuthorization: string): string {
  return createHash("sha256").update(keyAuthorization).digest("base64url");
}

function normalizeSuffix(suffix: string): string {
  return normalizeFqdn(suffix).replace(/^\*?\./, "");
}

/** The route with the longest suffix matching `domain`, or undefined. */
export function selectRoute<R extends { suffix: string }>(
  routes: readonly R[],
  domain: string,
): R | undefined {
  const name = normalizeFqdn(domain);
  let best: R | undefined;
  let bestLength = -1;
  for (const route of routes) {
    const suffix = normalizeSuffix(route.suffix);
    const matches = suffix === "" || name === suffix || name.endsWith(`.${suffix}`);
    if (matches && suffix.length > bestLength) {
      best = route;
      bestLength = suffix.length;
    }
  }
  return best;
}

interface Presented {
  record: TxtRecord;
  route: Dns01Route;
}

export function createDns01Solver(deps: Dns01SolverDeps): ChallengeSolver {
  const presented = new Map<string, Presented>();
  const keyOf = (c: SolverChallenge) => `${c.domain}\u0000${c.wildcard ? "*" : ""}\u0000${c.token}`;

  const specificRoutes = deps.routes.filter((r) => normalizeSuffix(r.suffix) !== "");

  function domainRoute(domain: string): Dns01Route {
    const route = selectRoute(deps.routes, domain);
    if (!route) {
      throw new ValidationError("dns_route_missing", `no DNS provider is configured for ${domain}`, {
        domain,
      });
    }
    return route;
  }

  return {
    type: "dns-01",

    covers: (domain) => selectRoute(deps.routes, domain) !== undefined,

    async present(challenge, signal) {
      const challengeName = `_acme-challenge.${normalizeFqdn(challenge.domain)}`;
      const fallback = domainRoute(challenge.domain);
      const name =
        deps.followCnames === false
          ? challengeName
          : await deps.resolver.followChallengeCname(challengeName, signal);
      // A delegated name is written by the route for its own zone if one is configured.
      const route = (name !== challengeName ? selectRoute(specificRoutes, name) : undefined) ?? fallback;
      const zone = normalizeFqdn(route.zone ?? (await deps.resolver.findZone(name, signal)));
      const record: TxtRecord = {
        zone,
        name,
        value: dns01TxtValue(challenge.keyAuthorization),
        ttl: route.ttl ?? 60,
      };
      // Remember before writing: if the append fails half-way, cleanup still tries to remove it.
      presented.set(keyOf(challenge), { record, route });
      deps.logger.debug({ name, zone, provider: route.provider.id }, "dns-01: adding TXT record");
      await route.provider.appendTxt(record, signal);
    },

    async waitReady(challenge, signal) {
      const entry = presented.get(keyOf(challenge));
      if (!entry || entry.route.propagation.skip) return;
      const { record, route } = entry;
      await deps.propagation.waitForTxt({
        fqdn: record.name,
        value: record.value,
        zone: record.zone,
        timeoutMs: route.propagation.timeoutMs,
        intervalMs: route.propagation.intervalMs,
        authoritativeServers: route.propagation.authoritativeServers,
        signal,
      });
    },

    async cleanup(challenge) {
      const key = keyOf(challenge);
      const entry = presented.get(key);
      if (!entry) return;
      presented.delete(key);
      try {
        await entry.route.provider.deleteTxt(entry.record);
      } catch (e) {
        deps.logger.warn(
          { err: e, name: entry.record.name, zone: entry.record.zone, provider: entry.route.provider.id },
          "dns-01: could not remove TXT record; remove it by hand",
        );
      }
    },
  };
}
