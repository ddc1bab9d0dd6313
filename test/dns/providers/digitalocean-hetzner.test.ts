import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createDigitalOceanProvider,
  digitalOceanConfigSchema,
} from "../../../src/dns/providers/digitalocean/digitalocean-provider.js";
import {
  createHetznerProvider,
  hetznerConfigSchema,
} from "../../../src/dns/providers/hetzner/hetzner-provider.js";
import { startDigitalOceanApi } from "../../harness/dns-apis/digitalocean.js";
import { startHetznerApi } from "../../harness/dns-apis/hetzner.js";
import type { LoopbackApi } from "../../harness/dns-apis/loopback-api.js";
import { runDnsProviderConformance } from "../conformance.js";
import { runDnsProviderErrorCases } from "./error-cases.js";
import { testDeps, txt } from "./helpers.js";

const ZONE = "example.net";

const doProvider = (api: LoopbackApi, token = "do-token") =>
  createDigitalOceanProvider(
    digitalOceanConfigSchema.parse({ authToken: token, baseUrl: api.url }),
    testDeps(),
  );
const hzProvider = (api: LoopbackApi, token = "hz-token") =>
  createHetznerProvider(hetznerConfigSchema.parse({ apiKey: token, baseUrl: api.url }), testDeps());

runDnsProviderConformance("digitalocean", async () => {
  const api = await startDigitalOceanApi({ token: "do-token", domains: [ZONE] });
  return {
    provider: doProvider(api),
    zone: ZONE,
    lookup: async (n) => api.store.get(n),
    cleanup: async () => {
      await api.close();
      api.assertClean();
    },
  };
});

runDnsProviderErrorCases("digitalocean", async () => {
  const api = await startDigitalOceanApi({ token: "do-token", domains: [ZONE] });
  return {
    api,
    zone: ZONE,
    provider: doProvider(api),
    badProvider: doProvider(api, "nope"),
    lookup: async (n) => api.store.get(n),
    cleanup: () => api.close(),
  };
});

runDnsProviderConformance("hetzner", async () => {
  const api = await startHetznerApi({ token: "hz-token", zones: [ZONE, "example.org"] });
  return {
    provider: hzProvider(api),
    zone: ZONE,
    lookup: async (n) => api.store.get(n),
    cleanup: async () => {
      await api.close();
      api.assertClean();
    },
  };
});

runDnsProviderErrorCases("hetzner", async () => {
  const api = await startHetznerApi({ token: "hz-token", zones: [ZONE] });
  return {
    api,
    zone: ZONE,
    provider: hzProvider(api),
    badProvider: hzProvider(api, "nope"),
    lookup: async (n) => api.store.get(n),
    cleanup: () => api.close(),
  };
});

describe("digitalocean and hetzner specifics", () => {
  let doApi: Awaited<ReturnType<typeof startDigitalOceanApi>>;
  let hzApi: Awaited<ReturnType<typeof startHetznerApi>>;
  beforeAll(async () => {
    doApi = await startDigitalOceanApi({ token: "do-token", domains: [ZONE] });
    hzApi = await startHetznerApi({ token: "hz-token", zones: [ZONE] });
  });
  afterAll(async () => {
    await doApi.close();
    await hzApi.close();
  });

  it("digitalocean: relative name on create, delete by remembered id, lookup by full name after restart", async () => {
    const r = txt(ZONE);
    const p = doProvider(doApi);
    await p.appendTxt(r, AbortSignal.timeout(10_000));
    const post = doApi.requests.at(-1)!;
    expect(post.method).toBe("POST");
    expect(post.path).toBe(`/v2/domains/${ZONE}/records`);
    expect(JSON.parse(post.body)).toMatchObject({
      type: "TXT",
      name: r.name.replace(`.${ZONE}`, ""),
      data: r.value,
    });
    await p.deleteTxt(r);
    expect(doApi.requests.at(-1)!.method).toBe("DELETE");
    expect(doApi.count("GET", `/v2/domains/${ZONE}/records`)).toBe(0);

    const r2 = txt(ZONE);
    await doProvider(doApi).appendTxt(r2, AbortSignal.timeout(10_000));
    await doProvider(doApi).deleteTxt(r2);
    expect(doApi.count("GET", `/v2/domains/${ZONE}/records`)).toBe(1);
    expect(doApi.recordCount()).toBe(0);
  });

  it("digitalocean: unknown domain is dns_zone_not_found; zones are listed", async () => {
    await expect(
      doProvider(doApi).appendTxt(txt("nope.example"), AbortSignal.timeout(10_000)),
    ).rejects.toMatchObject({
      code: "dns_zone_not_found",
      retryable: false,
    });
    expect(await doProvider(doApi).listZones(AbortSignal.timeout(10_000))).toEqual([ZONE]);
  });

  it("hetzner: Auth-API-Token header, zone id lookup once, unknown zone is dns_zone_not_found", async () => {
    const p = hzProvider(hzApi);
    const before = hzApi.requests.length;
    await p.appendTxt(txt(ZONE), AbortSignal.timeout(10_000));
    await p.appendTxt(txt(ZONE), AbortSignal.timeout(10_000));
    const sent = hzApi.requests.slice(before);
    expect(sent.map((q) => `${q.method} ${q.path}`)).toEqual([
      "GET /api/v1/zones",
      "POST /api/v1/records",
      "POST /api/v1/records",
    ]);
    expect(sent.every((q) => q.headers["auth-api-token"] === "hz-token")).toBe(true);
    await expect(p.appendTxt(txt("nope.example"), AbortSignal.timeout(10_000))).rejects.toMatchObject({
      code: "dns_zone_not_found",
    });
    expect(await p.listZones(AbortSignal.timeout(10_000))).toEqual([ZONE]);
  });

  it("no bad requests were sent", () => {
    doApi.assertClean();
    hzApi.assertClean();
  });
});
