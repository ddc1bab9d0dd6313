import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DnsProvider, TxtRecord } from "../../src/dns/dns-provider.js";

/**
 * The shared DNS provider conformance suite (after libdns's libdnstest). Every provider runs it against
 * a real backend (BIND, a loopback API double, a file) with its own `lookup`, which reads what the
 * backend holds right now — not what a caching resolver remembers.
 */
export interface DnsConformanceFixture {
  provider: DnsProvider;
  /** The zone apex records are written into (no trailing dot, lowercase). */
  zone: string;
  /** Current TXT values at `name` as the provider's backend sees them. */
  lookup(name: string): Promise<string[]>;
  cleanup(): Promise<void>;
}

const TTL = 60;

function challengeValue(): string {
  // Same shape as a real DNS-01 value: 43 base64url characters.
  return randomBytes(32).toString("base64url");
}

export function runDnsProviderConformance(name: string, setup: () => Promise<DnsConformanceFixture>): void {
  describe(`DnsProvider conformance: ${name}`, () => {
    let fx: DnsConformanceFixture;
    let counter = 0;

    beforeAll(async () => {
      fx = await setup();
    });

    afterAll(async () => {
      await fx?.cleanup();
    });

    /** A fresh record name per test so tests cannot see each other's leftovers. */
    function record(label: string, value = challengeValue()): TxtRecord {
      counter += 1;
      return { zone: fx.zone, name: `_acme-challenge.${label}-${counter}.${fx.zone}`, value, ttl: TTL };
    }

    it("appendTxt makes the value visible to lookup", async () => {
      const r = record("append");
      await fx.provider.appendTxt(r, AbortSignal.timeout(30_000));
      expect(await fx.lookup(r.name)).toContain(r.value);
      await fx.provider.deleteTxt(r);
    });

    it("deleteTxt removes exactly that value", async () => {
      const r = record("delete");
      await fx.provider.appendTxt(r, AbortSignal.timeout(30_000));
      await fx.provider.deleteTxt(r);
      expect(await fx.lookup(r.name)).not.toContain(r.value);
    });

    it("two values at one name appended concurrently coexist; deleting one keeps the other", async () => {
      // example.com and *.example.com are both validated through _acme-challenge.example.com.
      const apex = record("shared");
      const wildcard: TxtRecord = { ...apex, value: challengeValue() };
      await Promise.all([
        fx.provider.appendTxt(apex, AbortSignal.timeout(30_000)),
        fx.provider.appendTxt(wildcard, AbortSignal.timeout(30_000)),
      ]);
      const both = await fx.lookup(apex.name);
      expect(both).toContain(apex.value);
      expect(both).toContain(wildcard.value);

      await fx.provider.deleteTxt(apex);
      const left = await fx.lookup(apex.name);
      expect(left).not.toContain(apex.value);
      expect(left).toContain(wildcard.value);

      await fx.provider.deleteTxt(wildcard);
      expect(await fx.lookup(apex.name)).not.toContain(wildcard.value);
    });

    it("deleting a value that is not there is not an error", async () => {
      const r = record("absent");
      await expect(fx.provider.deleteTxt(r)).resolves.toBeUndefined();
      expect(await fx.lookup(r.name)).not.toContain(r.value);
    });

    it("deleting one absent value leaves a present value at the same name alone", async () => {
      const present = record("keep");
      const absent: TxtRecord = { ...present, value: challengeValue() };
      await fx.provider.appendTxt(present, AbortSignal.timeout(30_000));
      await fx.provider.deleteTxt(absent);
      expect(await fx.lookup(present.name)).toContain(present.value);
      await fx.provider.deleteTxt(present);
    });

    it("an already-aborted signal makes appendTxt reject without creating anything", async () => {
      const r = record("aborted");
      const controller = new AbortController();
      controller.abort(new Error("cancelled by test"));
      await expect(fx.provider.appendTxt(r, controller.signal)).rejects.toBeDefined();
      expect(await fx.lookup(r.name)).not.toContain(r.value);
    });

    it("cleanup after a failed append (delete of a value never created) does not throw", async () => {
      const r = record("failed");
      const controller = new AbortController();
      controller.abort();
      await fx.provider.appendTxt(r, controller.signal).catch(() => undefined);
      await expect(fx.provider.deleteTxt(r)).resolves.toBeUndefined();
      expect(await fx.lookup(r.name)).not.toContain(r.value);
    });

    it("reports its registry id", () => {
      expect(typeof fx.provider.id).toBe("string");
      expect(fx.provider.id.length).toBeGreaterThan(0);
    });
  });
}
