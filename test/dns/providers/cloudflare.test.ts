import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createCloudflareProvider,
  cloudflareConfigSchema,
} from "../../../src/dns/providers/cloudflare/cloudflare-provider.js";
import { startCloudflareApi, type CloudflareApi } from "../../harness/dns-apis/cloudflare.js";
import { runDnsProviderConformance } from "../conformance.js";
import { runDnsProviderErrorCases } from "./error-cases.js";
import { testDeps, txt } from "./helpers.js";

const ZONE = "example.com";
const TOKEN = "cf-token-0123456789";

function provider(api: CloudflareApi, token = TOKEN) {
  return createCloudflareProvider(
    cloudflareConfigSchema.parse({ apiToken: token, baseUrl: api.url }),
    testDeps(),
  );
}

runDnsProviderConformance("cloudflare", async () => {
  const api = await startCloudflareApi({ token: TOKEN, zones: [ZONE, "other.org"] });
  return {
    provider: provider(api),
    zone: ZONE,
    lookup: async (name) => api.store.get(name),
    cleanup: async () => {
      await api.close();
      api.assertClean();
    },
  };
});

runDnsProviderErrorCases("cloudflare", async () => {
  const api = await startCloudflareApi({ token: TOKEN, zones: [ZONE] });
  return {
    api,
    zone: ZONE,
    provider: provider(api),
    badProvider: provider(api, "wrong-token"),
    lookup: async (name) => api.store.get(name),
    cleanup: () => api.close(),
  };
});

describe("cloudflare specifics", () => {
  let api: CloudflareApi;
  beforeAll(async () => {
    api = await startCloudflareApi({ token: TOKEN, zones: [ZONE] });
  });
  afterAll(() => api.close());

  it("sends the documented requests and deletes by the remembered record id", async () => {
    const p = provider(api);
    const r = txt(ZONE);
    const before = api.requests.length;
    await p.appendTxt(r, AbortSignal.timeout(10_000));
    await p.deleteTxt(r);
    const calls = api.requests.slice(before).map((q) => `${q.method} ${q.path}`);
    const zid = api.zoneId(ZONE);
    expect(calls).toEqual([
      "GET /client/v4/zones",
      `POST /client/v4/zones/${zid}/dns_records`,
      expect.stringMatching(new RegExp(`^DELETE /client/v4/zones/${zid}/dns_records/[0-9a-f]{32}$`)),
    ]);
    expect(api.requests[before]!.query.get("name")).toBe(ZONE);
    expect(api.requests[before]!.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(JSON.parse(api.requests[before + 1]!.body)).toEqual({
      type: "TXT",
      name: r.name,
      content: r.value,
      ttl: 60,
    });
    expect(api.recordCount()).toBe(0);
  });

  it("a restarted provider (no remembered id) finds the record by name and content", async () => {
    const r = txt(ZONE);
    await provider(api).appendTxt(r, AbortSignal.timeout(10_000));
    const before = api.requests.length;
    await provider(api).deleteTxt(r);
    const lookup = api.requests
      .slice(before)
      .find((q) => q.method === "GET" && q.path.endsWith("/dns_records"));
    expect(lookup?.query.get("content")).toBe(r.value);
    expect(api.store.get(r.name)).toEqual([]);
  });

  it("appending a value that already exists adopts the record, so cleanup still removes it", async () => {
    const r = txt(ZONE);
    await provider(api).appendTxt(r, AbortSignal.timeout(10_000));
    const p = provider(api);
    await p.appendTxt(r, AbortSignal.timeout(10_000));
    await p.deleteTxt(r);
    expect(api.store.get(r.name)).toEqual([]);
  });

  it("a zone the token cannot see is dns_zone_not_found, not retryable", async () => {
    const r = txt("unknown.net");
    await expect(provider(api).appendTxt(r, AbortSignal.timeout(10_000))).rejects.toMatchObject({
      code: "dns_zone_not_found",
      retryable: false,
    });
  });

  it("a malformed token (Cloudflare answers 400 + code 6003/6111) is still dns_provider_auth, sent once", async () => {
    const before = api.requests.length;
    const p = createCloudflareProvider(
      cloudflareConfigSchema.parse({
        apiToken: "has spaces in it",
        baseUrl: api.url,
        zoneId: api.zoneId(ZONE),
      }),
      testDeps(),
    );
    await expect(p.appendTxt(txt(ZONE), AbortSignal.timeout(10_000))).rejects.toMatchObject({
      code: "dns_provider_auth",
      retryable: false,
    });
    expect(api.requests.length - before).toBe(1);
    expect(api.requests.at(-1)!.method).toBe("POST");
  });

  it("lists zones", async () => {
    expect(await provider(api).listZones(AbortSignal.timeout(10_000))).toEqual([ZONE]);
  });

  it("config: a token or key+email is required; lego's global key is accepted", () => {
    expect(cloudflareConfigSchema.safeParse({}).success).toBe(false);
    expect(cloudflareConfigSchema.safeParse({ apiKey: "k" }).success).toBe(false);
    expect(cloudflareConfigSchema.safeParse({ apiKey: "k", apiEmail: "a@b.c" }).success).toBe(true);
  });

  it("no bad requests were sent", () => api.assertClean());
});
