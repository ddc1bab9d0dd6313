import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { azureConfigSchema, createAzureProvider } from "../../../src/dns/providers/azure/azure-provider.js";
import { startAzureApi, type AzureApi } from "../../harness/dns-apis/azure.js";
import { runDnsProviderConformance } from "../conformance.js";
import { runDnsProviderErrorCases } from "./error-cases.js";
import { testDeps, txt } from "./helpers.js";

const ZONE = "example.io";
const TENANT = "11111111-2222-3333-4444-555555555555";
const CLIENT = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
const SECRET = "azure-client-secret~value";
const base = { tenantId: TENANT, subscriptionId: "sub-1", resourceGroup: "dns-rg" };

const start = () =>
  startAzureApi({
    ...base,
    clientId: CLIENT,
    clientSecret: SECRET,
    federatedToken: "eyJ.federated.token",
    managedIdentity: true,
    zones: [ZONE],
  });

function provider(
  api: AzureApi,
  extra: Record<string, unknown> = { clientId: CLIENT, clientSecret: SECRET },
) {
  return createAzureProvider(
    azureConfigSchema.parse({
      ...base,
      managementUrl: api.url,
      loginUrl: api.url,
      imdsUrl: `${api.url}/metadata/identity/oauth2/token`,
      ...extra,
    }),
    testDeps(),
  );
}

runDnsProviderConformance("azure", async () => {
  const api = await start();
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

runDnsProviderErrorCases("azure", async () => {
  const api = await start();
  return {
    api,
    zone: ZONE,
    provider: provider(api),
    badProvider: provider(api, { clientId: CLIENT, clientSecret: "wrong" }),
    lookup: async (n) => api.store.get(n),
    cleanup: () => api.close(),
  };
});

describe("azure specifics", () => {
  let api: AzureApi;
  let dir: string;
  beforeAll(async () => {
    api = await start();
    dir = mkdtempSync(join(tmpdir(), "certfleet-azure-"));
  });
  afterAll(async () => {
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("workload identity: the federated token file is the client assertion", async () => {
    const file = join(dir, "token");
    writeFileSync(file, "eyJ.federated.token\n");
    const p = provider(api, { clientId: CLIENT, federatedTokenFile: file });
    const r = txt(ZONE);
    await p.appendTxt(r, AbortSignal.timeout(10_000));
    expect(api.store.get(r.name)).toEqual([r.value]);
    await p.deleteTxt(r);
    writeFileSync(file, "eyJ.someone.else");
    await expect(
      provider(api, { clientId: CLIENT, federatedTokenFile: file }).appendTxt(
        txt(ZONE),
        AbortSignal.timeout(10_000),
      ),
    ).rejects.toMatchObject({
      code: "dns_provider_auth",
      retryable: false,
    });
  });

  it("managed identity through IMDS, one token for many calls", async () => {
    const p = provider(api, {});
    const before = api.tokenRequests();
    const r1 = txt(ZONE);
    const r2 = txt(ZONE);
    await Promise.all([
      p.appendTxt(r1, AbortSignal.timeout(10_000)),
      p.appendTxt(r2, AbortSignal.timeout(10_000)),
    ]);
    await p.deleteTxt(r1);
    await p.deleteTxt(r2);
    expect(api.tokenRequests() - before).toBe(1);
    expect(
      api.requests.some((q) => q.path === "/metadata/identity/oauth2/token" && q.headers.metadata === "true"),
    ).toBe(true);
  });

  it("two providers (two replicas) writing one name concurrently keep every value (ETag conflicts retried)", async () => {
    const a = provider(api);
    const b = provider(api);
    const first = txt(ZONE);
    const values = [first, { ...first, value: "p".repeat(43) }, { ...first, value: "q".repeat(43) }];
    await Promise.all(values.map((r, i) => (i % 2 ? a : b).appendTxt(r, AbortSignal.timeout(20_000))));
    expect(api.store.get(first.name).sort()).toEqual(values.map((v) => v.value).sort());
    await Promise.all(values.map((r, i) => (i % 2 ? b : a).deleteTxt(r)));
    expect(api.store.get(first.name)).toEqual([]);
  });

  it("a zone missing from the resource group is dns_zone_not_found", async () => {
    await expect(
      provider(api).appendTxt(txt("nope.example"), AbortSignal.timeout(10_000)),
    ).rejects.toMatchObject({
      code: "dns_zone_not_found",
      retryable: false,
    });
  });

  it("config: client secret auth needs tenant and client id", () => {
    expect(azureConfigSchema.safeParse({ ...base, clientSecret: "s" }).success).toBe(false);
    expect(azureConfigSchema.safeParse({ subscriptionId: "s", resourceGroup: "r" }).success).toBe(true);
  });

  it("no bad requests were sent", () => api.assertClean());
});
