import { randomBytes } from "node:crypto";
import { systemClock } from "../../../src/core/clock.js";
import { silentLogger } from "../../../src/core/logger.js";
import type { TxtRecord } from "../../../src/dns/dns-provider.js";
import type { DnsProviderDeps } from "../../../src/dns/registry.js";

/** Real fetch (every test server is on 127.0.0.1), real clock, no log output. */
export function testDeps(overrides: Partial<DnsProviderDeps> = {}): DnsProviderDeps {
  return { logger: silentLogger(), clock: systemClock, fetch: globalThis.fetch, ...overrides };
}

let counter = 0;

/** A fresh `_acme-challenge` record in `zone` with a DNS-01-shaped value. */
export function txt(zone: string, label = "t"): TxtRecord {
  counter += 1;
  return {
    zone,
    name: `_acme-challenge.${label}-${counter}.${zone}`,
    value: randomBytes(32).toString("base64url"),
    ttl: 60,
  };
}
