import { Resolver } from "node:dns/promises";
import { problem } from "../problems.js";

/**
 * DNS lookups for challenge validation, through the configured resolvers (a test's BIND or
 * pebble-challtestsrv; the system's when none are configured). Each call uses a fresh resolver, so
 * nothing is cached between validations, and an abort cancels its queries.
 */
export interface ValidationDns {
  /** IPv4 then IPv6 addresses of `host`; `dns` problem when it has none or the lookup fails. */
  addresses(host: string, signal: AbortSignal): Promise<string[]>;
  /** TXT records at `name` (each record's strings joined); [] when there are none. */
  txt(name: string, signal: AbortSignal): Promise<string[]>;
}

const ABSENT = new Set(["ENOTFOUND", "ENODATA"]);

export function createValidationDns(servers: readonly string[]): ValidationDns {
  async function withResolver<T>(signal: AbortSignal, fn: (r: Resolver) => Promise<T>): Promise<T> {
    const resolver = new Resolver({ timeout: 2_000, tries: 2 });
    if (servers.length > 0) resolver.setServers([...servers]);
    const onAbort = () => resolver.cancel();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      return await fn(resolver);
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }
  const absentOk = async <T>(p: Promise<T[]>): Promise<T[]> => {
    try {
      return await p;
    } catch (e) {
      if (ABSENT.has((e as { code?: string }).code ?? "")) return [];
      throw e;
    }
  };

  return {
    async addresses(host, signal) {
      let found: string[];
      try {
        found = await withResolver(signal, async (r) => [
          ...(await absentOk(r.resolve4(host))),
          ...(await absentOk(r.resolve6(host))),
        ]);
      } catch (e) {
        throw problem("dns", `DNS lookup for ${host} failed`, {
          internal: String((e as { code?: string }).code ?? e),
        });
      }
      if (found.length === 0) throw problem("dns", `no A or AAAA record for ${host}`);
      return found;
    },
    async txt(name, signal) {
      try {
        return await withResolver(signal, async (r) =>
          (await absentOk(r.resolveTxt(name))).map((chunks) => chunks.join("")),
        );
      } catch (e) {
        throw problem("dns", `DNS TXT lookup for ${name} failed`, {
          internal: String((e as { code?: string }).code ?? e),
        });
      }
    },
  };
}
