import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createRoute53Provider,
  route53ConfigSchema,
} from "../../../src/dns/providers/route53/route53-provider.js";
import { parseXml, textAt } from "../../../src/dns/providers/route53/xml.js";
import { startRoute53Api, type Route53Api } from "../../harness/dns-apis/route53.js";
import { runDnsProviderConformance } from "../conformance.js";
import { runDnsProviderErrorCases } from "./error-cases.js";
import { testDeps, txt } from "./helpers.js";

const ZONE = "example.org";
const AKID = "AKIACERTFLEETTEST01";
const SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

function provider(
  api: Route53Api,
  extra: Record<string, unknown> = { accessKeyId: AKID, secretAccessKey: SECRET },
) {
  return createRoute53Provider(
    route53ConfigSchema.parse({
      endpoint: api.url,
      stsEndpoint: api.stsUrl,
      changePollIntervalMs: 10,
      ...extra,
    }),
    testDeps(),
  );
}

runDnsProviderConformance("route53", async () => {
  const api = await startRoute53Api({ keys: { [AKID]: SECRET }, zones: [ZONE, "zzz.example"] });
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

runDnsProviderErrorCases("route53", async () => {
  const api = await startRoute53Api({ keys: { [AKID]: SECRET }, zones: [ZONE] });
  return {
    api,
    zone: ZONE,
    provider: provider(api),
    badProvider: provider(api, { accessKeyId: AKID, secretAccessKey: "not-the-secret" }),
    lookup: async (n) => api.store.get(n),
    cleanup: () => api.close(),
  };
});

describe("route53 specifics", () => {
  let api: Route53Api;
  let dir: string;
  beforeAll(async () => {
    api = await startRoute53Api({
      keys: { [AKID]: SECRET },
      zones: [ZONE],
      webIdentity: { token: "eyJ.web-identity.jwt", roleArn: "arn:aws:iam::123456789012:role/certfleet-dns" },
    });
    dir = mkdtempSync(join(tmpdir(), "certfleet-r53-"));
  });
  afterAll(async () => {
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("append writes one atomic batch with quoted values and waits for INSYNC", async () => {
    const r = txt(ZONE);
    const before = api.requests.length;
    await provider(api).appendTxt(r, AbortSignal.timeout(10_000));
    const sent = api.requests.slice(before);
    const post = sent.find((q) => q.method === "POST")!;
    expect(post.path).toBe(`/2013-04-01/hostedzone/${api.hostedZoneId(ZONE)}/rrset/`);
    const change = parseXml(post.body);
    expect(textAt(change, "ChangeBatch", "Changes", "Change", "Action")).toBe("CREATE");
    expect(textAt(change, "ChangeBatch", "Changes", "Change", "ResourceRecordSet", "Name")).toBe(
      `${r.name}.`,
    );
    expect(post.body).toContain(`<Value>&quot;${r.value}&quot;</Value>`);
    const polls = sent.filter((q) => q.path.startsWith("/2013-04-01/change/"));
    expect(polls.map((q) => q.status)).toEqual([200, 200]);
    expect(sent.every((q) => /^AWS4-HMAC-SHA256 Credential=AKIA/.test(q.headers.authorization ?? ""))).toBe(
      true,
    );
    await provider(api).deleteTxt(r);
    expect(api.store.get(r.name)).toEqual([]);
  });

  it("two providers (two replicas) appending to one name concurrently keep every value", async () => {
    const a = provider(api);
    const b = provider(api);
    const first = txt(ZONE);
    const values = [first, { ...first, value: "x".repeat(43) }, { ...first, value: "y".repeat(43) }];
    await Promise.all(values.map((r, i) => (i % 2 ? a : b).appendTxt(r, AbortSignal.timeout(20_000))));
    expect(api.store.get(first.name).sort()).toEqual(values.map((v) => v.value).sort());
    await Promise.all(values.map((r, i) => (i % 2 ? b : a).deleteTxt(r)));
    expect(api.store.get(first.name)).toEqual([]);
  });

  it("credentials from a shared credentials file profile", async () => {
    const file = join(dir, "credentials");
    writeFileSync(
      file,
      `[default]\naws_access_key_id = nope\naws_secret_access_key = nope\n\n[dns]\naws_access_key_id = ${AKID}\naws_secret_access_key = ${SECRET}\n`,
    );
    const p = provider(api, { profile: "dns", sharedCredentialsFile: file });
    const r = txt(ZONE);
    await p.appendTxt(r, AbortSignal.timeout(10_000));
    expect(api.store.get(r.name)).toEqual([r.value]);
    await p.deleteTxt(r);
    await expect(
      provider(api, { profile: "missing", sharedCredentialsFile: file }).appendTxt(
        txt(ZONE),
        AbortSignal.timeout(10_000),
      ),
    ).rejects.toMatchObject({
      code: "dns_provider_auth",
      retryable: false,
    });
  });

  it("web identity: token file → STS AssumeRoleWithWebIdentity once → temporary keys with session token", async () => {
    const tokenFile = join(dir, "token");
    writeFileSync(tokenFile, "eyJ.web-identity.jwt\n");
    const p = provider(api, {
      roleArn: "arn:aws:iam::123456789012:role/certfleet-dns",
      webIdentityTokenFile: tokenFile,
    });
    const stsBefore = api.stsCalls();
    const before = api.requests.length;
    const r1 = txt(ZONE);
    const r2 = txt(ZONE);
    await Promise.all([
      p.appendTxt(r1, AbortSignal.timeout(10_000)),
      p.appendTxt(r2, AbortSignal.timeout(10_000)),
    ]);
    expect(api.stsCalls() - stsBefore).toBe(1);
    const signed = api.requests.slice(before).filter((q) => q.path !== "/sts");
    expect(
      signed.every(
        (q) => /Credential=ASIA/.test(q.headers.authorization ?? "") && q.headers["x-amz-security-token"],
      ),
    ).toBe(true);
    await p.deleteTxt(r1);
    await p.deleteTxt(r2);
    expect(api.store.get(r1.name)).toEqual([]);
  });

  it("a rejected web identity token is dns_provider_auth after one STS call", async () => {
    const tokenFile = join(dir, "bad-token");
    writeFileSync(tokenFile, "not-a-valid-token");
    const before = api.stsCalls();
    await expect(
      provider(api, {
        roleArn: "arn:aws:iam::123456789012:role/certfleet-dns",
        webIdentityTokenFile: tokenFile,
      }).appendTxt(txt(ZONE), AbortSignal.timeout(10_000)),
    ).rejects.toMatchObject({ code: "dns_provider_auth", retryable: false });
    expect(api.stsCalls() - before).toBe(1);
  });

  it("hostedZoneId skips the lookup; unknown zones are dns_zone_not_found; lists zones", async () => {
    const before = api.requests.length;
    const r = txt(ZONE);
    const p = provider(api, {
      accessKeyId: AKID,
      secretAccessKey: SECRET,
      hostedZoneId: `/hostedzone/${api.hostedZoneId(ZONE)}`,
    });
    await p.appendTxt(r, AbortSignal.timeout(10_000));
    await p.deleteTxt(r);
    expect(api.requests.slice(before).some((q) => q.path.endsWith("hostedzonesbyname"))).toBe(false);
    await expect(
      provider(api).appendTxt(txt("nope.example"), AbortSignal.timeout(10_000)),
    ).rejects.toMatchObject({
      code: "dns_zone_not_found",
    });
    expect(await provider(api).listZones(AbortSignal.timeout(10_000))).toEqual([ZONE]);
  });

  it("config pairs are enforced", () => {
    expect(route53ConfigSchema.safeParse({ accessKeyId: "a" }).success).toBe(false);
    expect(route53ConfigSchema.safeParse({ roleArn: "arn" }).success).toBe(false);
    expect(route53ConfigSchema.safeParse({}).success).toBe(true);
  });

  it("no bad requests were sent", () => api.assertClean());
});
