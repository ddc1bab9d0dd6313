import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { UpstreamError } from "../../../src/core/errors.js";
import type { DnsProvider } from "../../../src/dns/dns-provider.js";
import type { LoopbackApi } from "../../harness/dns-apis/loopback-api.js";
import { txt } from "./helpers.js";

/**
 * How every HTTP-API provider must fail, checked against its loopback double: bad credentials are a
 * `dns_provider_auth` error naming the provider and zone after exactly one refused request; a 429 with
 * a long Retry-After surfaces at once as retryable with `retryAfter`; a short one is waited out once;
 * a persistent 5xx is retried a bounded number of times.
 */
export interface ErrorCaseFixture {
  api: LoopbackApi;
  zone: string;
  provider: DnsProvider;
  /** The same provider configured with credentials the double rejects. */
  badProvider: DnsProvider;
  /** Record name the bad provider has (rejected) credentials for; default: a fresh name in the zone. */
  badRecordName?: string;
  lookup(name: string): Promise<string[]>;
  cleanup(): Promise<void>;
}

async function rejection(p: Promise<unknown>): Promise<UpstreamError> {
  const error = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(UpstreamError);
  return error as UpstreamError;
}

export function runDnsProviderErrorCases(name: string, setup: () => Promise<ErrorCaseFixture>): void {
  describe(`DnsProvider error handling: ${name}`, () => {
    let fx: ErrorCaseFixture;
    beforeAll(async () => {
      fx = await setup();
    });
    afterEach(() => fx.api.clearFaults());
    afterAll(async () => {
      await fx?.cleanup();
    });

    it("bad credentials: dns_provider_auth naming provider and zone, not retryable, one refused request", async () => {
      const r = { ...txt(fx.zone, "badauth"), ...(fx.badRecordName ? { name: fx.badRecordName } : {}) };
      const before = fx.api.requests.length;
      const error = await rejection(fx.badProvider.appendTxt(r, AbortSignal.timeout(20_000)));
      expect(error.code).toBe("dns_provider_auth");
      expect(error.retryable).toBe(false);
      expect(error.message).toContain(fx.badProvider.id);
      expect(error.message).toContain(fx.zone);
      expect(error.details).toMatchObject({ provider: fx.badProvider.id, zone: fx.zone });
      const failing = fx.api.requests.slice(before).filter((q) => q.status >= 400);
      expect(failing).toHaveLength(1);
      expect(await fx.lookup(r.name)).not.toContain(r.value);
    });

    it("429 with a long Retry-After: retryable error with retryAfter, no further requests", async () => {
      const r = txt(fx.zone, "limited");
      const before = fx.api.requests.length;
      fx.api.inject({
        status: 429,
        headers: { "retry-after": "120" },
        json: { message: "slow down" },
        times: 100,
      });
      const error = await rejection(fx.provider.appendTxt(r, AbortSignal.timeout(20_000)));
      expect(error.code).toBe("dns_provider_rate_limited");
      expect(error.retryable).toBe(true);
      expect(error.retryAfter).toBe(120);
      expect(error.message).toContain(fx.zone);
      expect(fx.api.requests.length - before).toBe(1);
    });

    it("429 with a short Retry-After is waited out once and the append succeeds", async () => {
      const r = txt(fx.zone, "brief");
      const before = fx.api.requests.length;
      fx.api.inject({
        status: 429,
        headers: { "retry-after": "0" },
        json: { message: "slow down" },
        times: 1,
      });
      await fx.provider.appendTxt(r, AbortSignal.timeout(20_000));
      expect(fx.api.requests.slice(before).filter((q) => q.status === 429)).toHaveLength(1);
      expect(await fx.lookup(r.name)).toContain(r.value);
      await fx.provider.deleteTxt(r);
      expect(await fx.lookup(r.name)).not.toContain(r.value);
    });

    it("a persistent 5xx is retried a bounded number of times, then a retryable error", async () => {
      const r = txt(fx.zone, "broken");
      const before = fx.api.requests.length;
      fx.api.inject({ status: 502, text: "bad gateway", times: 1000 });
      const error = await rejection(fx.provider.appendTxt(r, AbortSignal.timeout(20_000)));
      expect(error.code).toBe("dns_provider_error");
      expect(error.retryable).toBe(true);
      const sent = fx.api.requests.length - before;
      expect(sent).toBeGreaterThanOrEqual(1);
      expect(sent).toBeLessThanOrEqual(3);
    });

    it("every request the provider sent matched the documented API", () => {
      fx.api.assertClean();
    });
  });
}
