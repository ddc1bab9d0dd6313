import { describe, expect, it } from "vitest";
import { createDnsProviderRegistry, dnsProviderDefinitions } from "../../src/dns/providers/index.js";

describe("dns provider index", () => {
  it("registers every definition once, under its id, aliases and lego code", () => {
    const registry = createDnsProviderRegistry();
    expect(registry.list().length).toBe(dnsProviderDefinitions.length);
    for (const d of dnsProviderDefinitions) {
      expect(registry.get(d.id)).toBe(d);
      for (const alias of d.aliases) expect(registry.get(alias)).toBe(d);
      if (d.legoCode) expect(registry.get(d.legoCode)).toBe(d);
    }
    expect(registry.get("rfc2136")?.id).toBe("rfc2136");
    expect(registry.get("exec")?.id).toBe("exec");
  });

  it("each schema is strict and each secret field is a key the schema knows", () => {
    for (const d of dnsProviderDefinitions) {
      const result = d.schema.safeParse({ certainlyNotAKey: true });
      expect(result.success).toBe(false);
      for (const [envName, key] of Object.entries(d.legoEnv ?? {})) {
        expect(envName).toMatch(/^[A-Z0-9_]+$/);
        expect(typeof key).toBe("string");
      }
    }
  });

  it("rfc2136 config: defaults, lego-style algorithm spelling, bad secret rejected", () => {
    const rfc = createDnsProviderRegistry().get("rfc2136")!;
    const ok = rfc.schema.safeParse({
      nameserver: "127.0.0.1:5353",
      tsigKeyName: "k",
      tsigAlgorithm: "HMAC-SHA512.",
      tsigSecret: Buffer.from("secret").toString("base64"),
    });
    expect(ok.success).toBe(true);
    expect(ok.data).toMatchObject({ transport: "tcp", timeoutMs: 10_000 });
    expect(
      rfc.schema.safeParse({ nameserver: "127.0.0.1", tsigKeyName: "k", tsigSecret: "not base64!" }).success,
    ).toBe(false);
    expect(
      rfc.schema.safeParse({
        nameserver: "127.0.0.1",
        tsigKeyName: "k",
        tsigSecret: "c2VjcmV0",
        tsigAlgorithm: "hmac-md5",
      }).success,
    ).toBe(false);
  });
});
