import { Resolver } from "node:dns/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  cloudflareConfigSchema,
  createCloudflareProvider,
} from "../../../src/dns/providers/cloudflare/cloudflare-provider.js";
import { startCloudflareApi, type CloudflareApi } from "../../harness/dns-apis/cloudflare.js";
import { mirrorTxtInto } from "../../harness/dns-apis/dns-sink.js";
import { startChallTestSrv, type ChallTestSrv } from "../../harness/pebble.js";
import { testDeps, txt } from "./helpers.js";

describe("a loopback DNS API mirrored into pebble-challtestsrv (the e2e wiring)", () => {
  let cts: ChallTestSrv;
  let api: CloudflareApi;
  const resolver = new Resolver({ timeout: 2_000, tries: 1 });
  beforeAll(async () => {
    cts = await startChallTestSrv();
    api = await startCloudflareApi({
      token: "cf-token-sink",
      zones: ["example.com"],
      onChange: mirrorTxtInto(cts),
    });
    resolver.setServers([cts.dnsAddress]);
  });
  afterAll(async () => {
    await api?.close();
    await cts?.stop();
  });

  it("values written through the API are answered over DNS, and removed with them", async () => {
    const provider = createCloudflareProvider(
      cloudflareConfigSchema.parse({ apiToken: "cf-token-sink", baseUrl: api.url }),
      testDeps(),
    );
    const apex = txt("example.com");
    const wildcard = { ...apex, value: "w".repeat(43) };
    await Promise.all([
      provider.appendTxt(apex, AbortSignal.timeout(10_000)),
      provider.appendTxt(wildcard, AbortSignal.timeout(10_000)),
    ]);
    expect((await resolver.resolveTxt(apex.name)).map((r) => r.join("")).sort()).toEqual(
      [apex.value, wildcard.value].sort(),
    );
    await provider.deleteTxt(apex);
    expect((await resolver.resolveTxt(apex.name)).map((r) => r.join(""))).toEqual([wildcard.value]);
    await provider.deleteTxt(wildcard);
    await expect(resolver.resolveTxt(apex.name)).rejects.toBeDefined();
  });
});
