import { describe, expect, it } from "vitest";
import { objectShape } from "../../../src/config/schema-walk.js";
import { configFromLegoEnv } from "../../../src/dns/lego-compat.js";
import { createDnsProviderRegistry, dnsProviderDefinitions } from "../../../src/dns/providers/index.js";
import type { DnsProviderDefinition } from "../../../src/dns/registry.js";
import { startCloudflareApi } from "../../harness/dns-apis/cloudflare.js";
import { testDeps, txt } from "./helpers.js";

const registry = createDnsProviderRegistry();
const defs = dnsProviderDefinitions as readonly DnsProviderDefinition<unknown>[];

describe("provider ids users bring from elsewhere", () => {
  it("the short ids of the Akash guide resolve: cf → cloudflare, gcloud → googlecloud (any case)", () => {
    expect(registry.get("cf")?.id).toBe("cloudflare");
    expect(registry.get("CF")?.id).toBe("cloudflare");
    expect(registry.get("gcloud")?.id).toBe("googlecloud");
    expect(registry.get("googleCloud")?.id).toBe("googlecloud");
  });

  it("lego provider codes resolve for every provider certfleet implements", () => {
    const lego: Record<string, string> = {
      cloudflare: "cloudflare",
      gcloud: "googlecloud",
      route53: "route53",
      azuredns: "azure",
      digitalocean: "digitalocean",
      hetzner: "hetzner",
      "acme-dns": "acmedns",
      rfc2136: "rfc2136",
      exec: "exec",
    };
    for (const [code, id] of Object.entries(lego)) expect(registry.get(code)?.id, code).toBe(id);
  });

  it("every legoEnv entry and secret field names a key of the provider's schema", () => {
    for (const d of defs) {
      const keys = Object.keys(objectShape(d.schema) ?? {});
      expect(keys.length, d.id).toBeGreaterThan(0);
      for (const key of Object.values(d.legoEnv ?? {}))
        expect(keys, `${d.id} legoEnv → ${key}`).toContain(key);
      for (const key of d.secretFields) expect(keys, `${d.id} secret ${key}`).toContain(key);
    }
  });
});

describe("le-cert-server dnsCredentials (lego variable names) → provider config", () => {
  // What a le-cert-server config would carry in letsEncrypt.dnsCredentials for each lego provider.
  const credentials: Record<string, { env: Record<string, string>; expect: Record<string, unknown> }> = {
    cloudflare: {
      env: { CF_DNS_API_TOKEN: "tok", CF_ZONE_API_TOKEN: "ztok", CF_PROPAGATION_TIMEOUT: "120" },
      expect: { apiToken: "tok", zoneApiToken: "ztok" },
    },
    gcloud: {
      env: { GCE_PROJECT: "proj", GCE_SERVICE_ACCOUNT_FILE: "/etc/certfleet/sa.json" },
      expect: { project: "proj", serviceAccountFile: "/etc/certfleet/sa.json" },
    },
    route53: {
      env: {
        AWS_ACCESS_KEY_ID: "AKIA1",
        AWS_SECRET_ACCESS_KEY: "secret",
        AWS_REGION: "eu-west-1",
        AWS_HOSTED_ZONE_ID: "Z123",
      },
      expect: { accessKeyId: "AKIA1", secretAccessKey: "secret", region: "eu-west-1", hostedZoneId: "Z123" },
    },
    azuredns: {
      env: {
        AZURE_CLIENT_ID: "c",
        AZURE_CLIENT_SECRET: "s",
        AZURE_TENANT_ID: "t",
        AZURE_SUBSCRIPTION_ID: "sub",
        AZURE_RESOURCE_GROUP: "rg",
        AZURE_ZONE_NAME: "example.com",
      },
      expect: {
        clientId: "c",
        clientSecret: "s",
        tenantId: "t",
        subscriptionId: "sub",
        resourceGroup: "rg",
        zoneName: "example.com",
      },
    },
    digitalocean: {
      env: { DO_AUTH_TOKEN: "dop_v1_x", DO_TTL: "60" },
      expect: { authToken: "dop_v1_x", ttl: 60 },
    },
    hetzner: { env: { HETZNER_API_KEY: "hk" }, expect: { apiKey: "hk" } },
    "acme-dns": {
      env: {
        ACME_DNS_API_BASE: "https://auth.example.org",
        ACME_DNS_STORAGE_PATH: "/var/lib/certfleet/acme-dns.json",
      },
      expect: { apiBase: "https://auth.example.org", storagePath: "/var/lib/certfleet/acme-dns.json" },
    },
  };

  for (const [code, c] of Object.entries(credentials)) {
    it(`${code}: lego variables map onto a config the schema accepts`, () => {
      const def = registry.get(code)!;
      const config = configFromLegoEnv(def, c.env);
      expect(config).toEqual(c.expect);
      const parsed = def.schema.safeParse(config);
      expect(parsed.success, JSON.stringify(parsed.error?.issues)).toBe(true);
    });
  }

  it("CLOUDFLARE_* spellings work too, and the first spelling wins when both are set", () => {
    const cf = registry.get("cloudflare")!;
    expect(configFromLegoEnv(cf, { CLOUDFLARE_DNS_API_TOKEN: "b" })).toEqual({ apiToken: "b" });
    expect(configFromLegoEnv(cf, { CF_DNS_API_TOKEN: "a", CLOUDFLARE_DNS_API_TOKEN: "b" })).toEqual({
      apiToken: "a",
    });
  });

  it("a non-numeric TTL is passed through for the schema to reject with a clear issue", () => {
    const def = registry.get("digitalocean")!;
    const config = configFromLegoEnv(def, { DO_AUTH_TOKEN: "x", DO_TTL: "soon" });
    expect(config.ttl).toBe("soon");
    expect(def.schema.safeParse(config).success).toBe(false);
  });

  it("a provider created from lego variables through the registry works end to end", async () => {
    const api = await startCloudflareApi({ token: "lego-token", zones: ["example.com"] });
    try {
      const def = registry.get("cloudflare")!;
      const config = def.schema.parse({
        ...configFromLegoEnv(def, { CF_DNS_API_TOKEN: "lego-token" }),
        baseUrl: api.url,
      });
      const provider = def.create(config, testDeps());
      const r = txt("example.com");
      await provider.appendTxt(r, AbortSignal.timeout(10_000));
      expect(api.store.get(r.name)).toEqual([r.value]);
      await provider.deleteTxt(r);
      expect(api.store.get(r.name)).toEqual([]);
    } finally {
      await api.close();
    }
  });
});
