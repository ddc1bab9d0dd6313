import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createGoogleCloudProvider,
  googleCloudConfigSchema,
} from "../../../src/dns/providers/googlecloud/googlecloud-provider.js";
import { startGoogleCloudApi, type GoogleCloudApi } from "../../harness/dns-apis/googlecloud.js";
import { runDnsProviderConformance } from "../conformance.js";
import { runDnsProviderErrorCases } from "./error-cases.js";
import { testDeps, txt } from "./helpers.js";

const ZONE = "example.com";
const PROJECT = "certfleet-test";

function provider(api: GoogleCloudApi, extra: Record<string, unknown> = {}) {
  return createGoogleCloudProvider(
    googleCloudConfigSchema.parse({
      serviceAccount: api.serviceAccountJson(),
      baseUrl: api.url,
      changePollIntervalMs: 10,
      ...extra,
    }),
    testDeps(),
  );
}

runDnsProviderConformance("googlecloud", async () => {
  const api = await startGoogleCloudApi({ project: PROJECT, zones: [ZONE] });
  return {
    provider: provider(api),
    zone: ZONE,
    lookup: async (n) => api.store.get(n),
    cleanup: async () => {
      await api.close();
      api.assertClean();
    },
  };
});

runDnsProviderErrorCases("googlecloud", async () => {
  const api = await startGoogleCloudApi({ project: PROJECT, zones: [ZONE] });
  return {
    api,
    zone: ZONE,
    provider: provider(api),
    badProvider: provider(api, { serviceAccount: api.unknownServiceAccountJson() }),
    lookup: async (n) => api.store.get(n),
    cleanup: () => api.close(),
  };
});

describe("googlecloud specifics", () => {
  let api: GoogleCloudApi;
  let dir: string;
  beforeAll(async () => {
    api = await startGoogleCloudApi({
      project: PROJECT,
      zones: [ZONE, "sub.example.com"],
      changeDelayMs: 30,
    });
    dir = mkdtempSync(join(tmpdir(), "certfleet-gcloud-"));
  });
  afterAll(async () => {
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("reads the key from a file, takes the project from it, fetches one token for many calls", async () => {
    const file = join(dir, "sa.json");
    writeFileSync(file, api.serviceAccountJson());
    const p = createGoogleCloudProvider(
      googleCloudConfigSchema.parse({ serviceAccountFile: file, baseUrl: api.url, changePollIntervalMs: 10 }),
      testDeps(),
    );
    const tokensBefore = api.tokenRequests();
    const records = [txt(ZONE), txt(ZONE), txt("sub.example.com")];
    await Promise.all(records.map((r) => p.appendTxt(r, AbortSignal.timeout(10_000))));
    for (const r of records) expect(api.store.get(r.name)).toEqual([r.value]);
    await Promise.all(records.map((r) => p.deleteTxt(r)));
    expect(api.tokenRequests() - tokensBefore).toBe(1);
    expect(api.requests.some((q) => q.path === `/dns/v1/projects/${PROJECT}/managedZones`)).toBe(true);
  });

  it("waits for the change to be done (polls the change until status done)", async () => {
    const before = api.requests.length;
    const r = txt(ZONE);
    await provider(api).appendTxt(r, AbortSignal.timeout(10_000));
    const polls = api.requests
      .slice(before)
      .filter((q) => q.method === "GET" && /\/changes\/\d+$/.test(q.path));
    expect(polls.length).toBeGreaterThanOrEqual(2);
    await provider(api).deleteTxt(r);
  });

  it("two providers (two processes) writing one name concurrently keep both values (409/412 retried)", async () => {
    const a = provider(api);
    const b = provider(api);
    // Warm both up (token, zone) so their reads of the set happen together and the writes collide.
    for (const p of [a, b]) {
      const warm = txt(ZONE);
      await p.appendTxt(warm, AbortSignal.timeout(10_000));
      await p.deleteTxt(warm);
    }
    const first = txt(ZONE);
    const values = [first, { ...first, value: "v".repeat(43) }, { ...first, value: "w".repeat(43) }];
    await Promise.all(values.map((r, i) => (i % 2 ? a : b).appendTxt(r, AbortSignal.timeout(20_000))));
    expect(api.store.get(first.name).sort()).toEqual(values.map((v) => v.value).sort());
    expect(api.requests.some((q) => q.status === 409 || q.status === 412)).toBe(true);
    await Promise.all(values.map((r, i) => (i % 2 ? b : a).deleteTxt(r)));
    expect(api.store.get(first.name)).toEqual([]);
  });

  it("unknown zone → dns_zone_not_found; lists zones", async () => {
    await expect(
      provider(api).appendTxt(txt("nope.example"), AbortSignal.timeout(10_000)),
    ).rejects.toMatchObject({
      code: "dns_zone_not_found",
      retryable: false,
    });
    expect(await provider(api).listZones(AbortSignal.timeout(10_000))).toEqual([ZONE, "sub.example.com"]);
  });

  it("config: exactly one of serviceAccount / serviceAccountFile; the JSON must be a key", () => {
    expect(googleCloudConfigSchema.safeParse({}).success).toBe(false);
    expect(googleCloudConfigSchema.safeParse({ serviceAccount: "{}" }).success).toBe(false);
    expect(
      googleCloudConfigSchema.safeParse({
        serviceAccount: api.serviceAccountJson(),
        serviceAccountFile: "/x",
      }).success,
    ).toBe(false);
  });

  it("no bad requests were sent", () => api.assertClean());
});
