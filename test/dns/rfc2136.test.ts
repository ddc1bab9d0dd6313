import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { systemClock } from "../../src/core/clock.js";
import { UpstreamError } from "../../src/core/errors.js";
import {
  createRfc2136Provider,
  rfc2136ConfigSchema,
} from "../../src/dns/providers/rfc2136/rfc2136-provider.js";
import { startBind, type BindServer } from "../harness/bind.js";
import { runDnsProviderConformance } from "./conformance.js";

const ZONE = "rfc2136.test";

for (const transport of ["tcp", "udp"] as const) {
  runDnsProviderConformance(`rfc2136 over ${transport} against BIND`, async () => {
    const bind = await startBind({ zone: ZONE, tsig: { algorithm: "hmac-sha256" } });
    const provider = createRfc2136Provider(
      rfc2136ConfigSchema.parse({
        nameserver: bind.address,
        tsigKeyName: bind.tsig.name,
        tsigAlgorithm: bind.tsig.algorithm,
        tsigSecret: bind.tsig.secret,
        transport,
      }),
      { clock: systemClock },
    );
    return { provider, zone: ZONE, lookup: (name) => bind.dig(name, "TXT"), cleanup: () => bind.stop() };
  });
}

describe("rfc2136 against BIND: keys and refusals", () => {
  let bind: BindServer;

  beforeAll(async () => {
    bind = await startBind({ zone: ZONE, tsig: { algorithm: "hmac-sha512" } });
  });
  afterAll(async () => {
    await bind?.stop();
  });

  function provider(overrides: Record<string, unknown> = {}) {
    return createRfc2136Provider(
      rfc2136ConfigSchema.parse({
        nameserver: bind.address,
        tsigKeyName: bind.tsig.name,
        tsigAlgorithm: "hmac-sha512.",
        tsigSecret: bind.tsig.secret,
        ...overrides,
      }),
      { clock: systemClock },
    );
  }

  const record = (name = `_acme-challenge.k${randomBytes(3).toString("hex")}.${ZONE}`) => ({
    zone: ZONE,
    name,
    value: randomBytes(32).toString("base64url"),
    ttl: 60,
  });

  it("works with the right hmac-sha512 key (lego's algorithm spelling)", async () => {
    const r = record();
    await provider().appendTxt(r, AbortSignal.timeout(10_000));
    expect(await bind.dig(r.name, "TXT")).toEqual([r.value]);
    await provider().deleteTxt(r);
  });

  it("a wrong secret fails with dns_provider_auth, not retryable, and changes nothing", async () => {
    const r = record();
    const err = await provider({ tsigSecret: randomBytes(64).toString("base64") })
      .appendTxt(r, AbortSignal.timeout(10_000))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamError);
    expect((err as UpstreamError).code).toBe("dns_provider_auth");
    expect((err as UpstreamError).retryable).toBe(false);
    expect((err as UpstreamError).details).toMatchObject({ provider: "rfc2136", zone: ZONE });
    expect(await bind.dig(r.name, "TXT")).toEqual([]);
  });

  it("an unknown key name fails with dns_provider_auth", async () => {
    const err = await provider({ tsigKeyName: "no-such-key" })
      .appendTxt(record(), AbortSignal.timeout(10_000))
      .catch((e: unknown) => e);
    expect((err as UpstreamError).code).toBe("dns_provider_auth");
  });

  it("the wrong algorithm for the key fails with dns_provider_auth", async () => {
    const err = await provider({ tsigAlgorithm: "hmac-sha256" })
      .appendTxt(record(), AbortSignal.timeout(10_000))
      .catch((e: unknown) => e);
    expect((err as UpstreamError).code).toBe("dns_provider_auth");
  });

  it("a zone the server is not primary for is refused with dns_update_refused", async () => {
    const err = await provider({ zone: "not-served.test" })
      .appendTxt(record("_acme-challenge.not-served.test"), AbortSignal.timeout(10_000))
      .catch((e: unknown) => e);
    expect((err as UpstreamError).code).toBe("dns_update_refused");
    expect((err as UpstreamError).details).toMatchObject({ zone: "not-served.test" });
  });

  it("a name outside the zone is refused (NOTZONE) with dns_update_refused", async () => {
    const err = await provider()
      .appendTxt(record("_acme-challenge.elsewhere.test"), AbortSignal.timeout(10_000))
      .catch((e: unknown) => e);
    expect((err as UpstreamError).code).toBe("dns_update_refused");
    expect((err as UpstreamError).retryable).toBe(false);
  });

  it("an unreachable server is a retryable dns_provider_error", async () => {
    const err = await provider({ nameserver: "127.0.0.1:1", timeoutMs: 2_000 })
      .appendTxt(record(), AbortSignal.timeout(10_000))
      .catch((e: unknown) => e);
    expect((err as UpstreamError).code).toBe("dns_provider_error");
    expect((err as UpstreamError).retryable).toBe(true);
  });

  it("a value longer than 255 bytes is split into several strings and read back whole", async () => {
    const r = { ...record(), value: "v".repeat(300) };
    await provider().appendTxt(r, AbortSignal.timeout(10_000));
    expect(await bind.dig(r.name, "TXT")).toEqual([r.value]);
    await provider().deleteTxt(r);
    expect(await bind.dig(r.name, "TXT")).toEqual([]);
  });
});
