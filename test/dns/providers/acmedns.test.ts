import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  acmeDnsConfigSchema,
  createAcmeDnsProvider,
} from "../../../src/dns/providers/acmedns/acmedns-provider.js";
import { startAcmeDnsApi, type AcmeDnsApi } from "../../harness/dns-apis/acmedns.js";
import { runDnsProviderConformance } from "../conformance.js";
import { runDnsProviderErrorCases } from "./error-cases.js";
import { testDeps, txt } from "./helpers.js";

const ZONE = "example.com";
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function tempStorage(): string {
  const dir = mkdtempSync(join(tmpdir(), "certfleet-acmedns-"));
  dirs.push(dir);
  return join(dir, "accounts", "acme-dns.json");
}

/** What acme-dns serves for `name` — through the CNAME the user would have created. */
function lookupVia(api: AcmeDnsApi, storagePath: string) {
  return async (name: string): Promise<string[]> => {
    let accounts: Record<string, { fulldomain: string }> = {};
    try {
      accounts = JSON.parse(readFileSync(storagePath, "utf8")) as typeof accounts;
    } catch {
      return [];
    }
    const account = accounts[name.replace(/^_acme-challenge\./, "")];
    return account ? api.store.get(account.fulldomain) : [];
  };
}

function provider(api: AcmeDnsApi, extra: Record<string, unknown>, logger = testDeps().logger) {
  return createAcmeDnsProvider(
    acmeDnsConfigSchema.parse({ apiBase: api.url, ...extra }),
    testDeps({ logger }),
  );
}

runDnsProviderConformance("acmedns", async () => {
  const api = await startAcmeDnsApi();
  const storagePath = tempStorage();
  return {
    provider: provider(api, { storagePath }),
    zone: ZONE,
    lookup: lookupVia(api, storagePath),
    cleanup: async () => {
      await api.close();
      api.assertClean();
    },
  };
});

runDnsProviderErrorCases("acmedns", async () => {
  const api = await startAcmeDnsApi();
  const storagePath = tempStorage();
  const locked = {
    username: "u-locked",
    password: "right-password",
    subdomain: "locked-sub",
    fulldomain: `locked-sub.${api.domain}`,
  };
  api.addAccount(locked);
  return {
    api,
    zone: ZONE,
    provider: provider(api, { storagePath }),
    badProvider: provider(api, {
      accounts: { [`locked.${ZONE}`]: { ...locked, password: "wrong-password" } },
    }),
    badRecordName: `_acme-challenge.locked.${ZONE}`,
    lookup: lookupVia(api, storagePath),
    cleanup: () => api.close(),
  };
});

describe("acmedns specifics", () => {
  let api: AcmeDnsApi;
  beforeAll(async () => {
    api = await startAcmeDnsApi();
  });
  afterAll(() => api.close());

  it("registers once per domain, saves a lego-compatible accounts file (0600), logs the CNAME to create", async () => {
    const storagePath = tempStorage();
    const lines: string[] = [];
    const logger = pino(
      { level: "info" },
      new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }),
    );
    const p = provider(api, { storagePath, allowFrom: ["192.0.2.0/24"] }, logger);
    const r = txt(ZONE);
    const before = api.count("POST", "/register");
    await Promise.all([
      p.appendTxt(r, AbortSignal.timeout(10_000)),
      p.appendTxt({ ...r, value: "z".repeat(43) }, AbortSignal.timeout(10_000)),
    ]);
    expect(api.count("POST", "/register") - before).toBe(1);
    const domain = r.name.replace(/^_acme-challenge\./, "");
    const saved = JSON.parse(readFileSync(storagePath, "utf8")) as Record<string, Record<string, unknown>>;
    expect(Object.keys(saved)).toEqual([domain]);
    expect(saved[domain]).toMatchObject({
      allowfrom: ["192.0.2.0/24"],
      fulldomain: expect.stringMatching(/\.auth\.acme-dns\.test$/),
    });
    expect(statSync(storagePath).mode & 0o777).toBe(0o600);
    const cnameLog = lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.cname === r.name);
    expect(cnameLog).toMatchObject({ level: 40, target: saved[domain]!.fulldomain });
    expect(JSON.stringify(cnameLog)).not.toContain(String(saved[domain]!.password));

    const update = api.requests.findLast((q) => q.path === "/update")!;
    expect(update.headers["x-api-user"]).toBe(saved[domain]!.username);
    expect(update.headers["x-api-key"]).toBe(saved[domain]!.password);
    expect(JSON.parse(update.body)).toMatchObject({ subdomain: saved[domain]!.subdomain });

    // A second process with the same file reuses the account.
    const again = provider(api, { storagePath });
    await again.appendTxt(
      { ...r, value: randomBytes(32).toString("base64url") },
      AbortSignal.timeout(10_000),
    );
    expect(api.count("POST", "/register") - before).toBe(1);
  });

  it("accounts given in config are used without registering; none and no storagePath is a config error", async () => {
    const account = { username: "u-1", password: "p-1", subdomain: "s-1", fulldomain: `s-1.${api.domain}` };
    api.addAccount(account);
    const before = api.count("POST", "/register");
    const r = { ...txt(ZONE), name: `_acme-challenge.configured.${ZONE}` };
    await provider(api, { accounts: { [`configured.${ZONE}`]: account } }).appendTxt(
      r,
      AbortSignal.timeout(10_000),
    );
    expect(api.store.get(account.fulldomain)).toContain(r.value);
    expect(api.count("POST", "/register")).toBe(before);
    await expect(
      provider(api, { accounts: { [`configured.${ZONE}`]: account } }).appendTxt(
        txt(ZONE),
        AbortSignal.timeout(10_000),
      ),
    ).rejects.toMatchObject({ code: "dns_provider_config", retryable: false });
  });

  it("deleting the newer of two live values keeps the older one served at every moment", async () => {
    const storagePath = tempStorage();
    const p = provider(api, { storagePath });
    const older = txt(ZONE);
    const newer = { ...older, value: randomBytes(32).toString("base64url") };
    await p.appendTxt(older, AbortSignal.timeout(10_000));
    await p.appendTxt(newer, AbortSignal.timeout(10_000));
    const lookup = lookupVia(api, storagePath);
    const seen: string[][] = [];
    const before = api.requests.length;
    await p.deleteTxt(newer);
    for (const q of api.requests.slice(before)) seen.push([JSON.parse(q.body).txt as string]);
    expect(seen[0]).toEqual([older.value]);
    expect(await lookup(older.name)).toContain(older.value);
    expect(await lookup(older.name)).not.toContain(newer.value);
  });

  it("config needs storagePath or accounts", () => {
    expect(acmeDnsConfigSchema.safeParse({ apiBase: "https://auth.example.org" }).success).toBe(false);
  });

  it("no bad requests were sent", () => api.assertClean());
});
