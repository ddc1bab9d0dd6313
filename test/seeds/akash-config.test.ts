import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCertfleet, type CertfleetProcess } from "../harness/certfleet-process.js";
import { fixtureYaml } from "./seed-support.js";

/**
 * What the Akash provider's users met (seeds/003): `config check` passed DNS settings that `serve` then
 * refused, and of several embedded issuers only the first was built. Both commands now run one
 * validation, and every embedded issuer is built with its own lifetime.
 */

const BIN = new URL("../../bin/certfleet.js", import.meta.url).pathname;
const DAY_MS = 86_400_000;

function certfleet(args: string[], dir: string) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: { PATH: process.env.PATH ?? "", HOME: dir }, cwd: dir, timeout: 30_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

/** The `  - path: message` lines of an invalid-configuration report. */
const issueLines = (text: string) => text.split("\n").filter((l) => l.startsWith("  - "));

describe("config check runs the validation serve runs", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "cf-akash-check-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function both(name: string, config: Record<string, unknown>) {
    const path = join(dir, `${name}.yaml`);
    await writeFile(
      path,
      stringify({ dataDir: join(dir, `${name}-data`), server: { bind: "127.0.0.1", port: 0 }, ...config }),
    );
    const check = await certfleet(["config", "check", "--config", path], dir);
    const serve = await certfleet(["serve", "--config", path], dir);
    return { check, serve };
  }

  it("a typo'd apiTokn: both exit 2 with the same key paths", async () => {
    const { check, serve } = await both("typo", {
      dns: { providers: [{ id: "cf", type: "cloudflare", config: { apiTokn: "abc" } }] },
    });
    expect(check.code).toBe(2);
    expect(serve.code).toBe(2);
    expect(issueLines(check.stderr)).toContain("  - dns.providers.0.config.apiTokn: unknown key");
    expect(issueLines(serve.stderr)).toEqual(issueLines(check.stderr));
  });

  it("Akash's serviceAccount block nested in certfleet's own provider shape: both refuse it", async () => {
    const akash = (await fixtureYaml("akash/gcloud.yaml")) as { letsEncrypt: any };
    const { check, serve } = await both("nested", {
      dns: {
        providers: [
          {
            id: "gc",
            type: "googlecloud",
            config: { serviceAccount: akash.letsEncrypt.providers.googleCloud.serviceAccount },
          },
        ],
      },
    });
    expect(check.code).toBe(2);
    expect(serve.code).toBe(2);
    expect(
      issueLines(check.stderr).some((l) => l.startsWith("  - dns.providers.0.config.serviceAccount:")),
    ).toBe(true);
    expect(issueLines(serve.stderr)).toEqual(issueLines(check.stderr));
  });

  it("the Akash letsEncrypt block with a typo under providers.cloudflare: the same path from both", async () => {
    const akash = (await fixtureYaml("akash/cloudflare.yaml")) as { letsEncrypt: any };
    akash.letsEncrypt.providers.cloudflare = { enabled: true, apiTokn: "your-cloudflare-api-token" };
    const { check, serve } = await both("akash-typo", akash);
    expect(check.code).toBe(2);
    expect(issueLines(check.stderr)).toContain("  - letsEncrypt.providers.cloudflare.apiTokn: unknown key");
    expect(serve.code).toBe(2);
    expect(issueLines(serve.stderr)).toEqual(issueLines(check.stderr));
  });

  it("two embedded issuers with different CA names: refused by both, naming the second", async () => {
    const { check, serve } = await both("names", {
      issuers: [
        { id: "short", type: "embedded", leafValidity: "3d", commonName: "CA one" },
        { id: "long", type: "embedded", leafValidity: "30d", commonName: "CA two" },
      ],
    });
    expect(check.code).toBe(2);
    expect(issueLines(check.stderr).some((l) => l.startsWith("  - issuers.1.commonName:"))).toBe(true);
    expect(serve.code).toBe(2);
    expect(issueLines(serve.stderr)).toEqual(issueLines(check.stderr));
  });
});

describe("several embedded issuers in one config", () => {
  let dir: string;
  let cf: CertfleetProcess;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "cf-akash-issuers-"));
    cf = await startCertfleet({
      dataDir: dir,
      config: {
        issuers: [
          { id: "short", type: "embedded", leafValidity: "3d" },
          { id: "long", type: "embedded", leafValidity: "30d" },
        ],
        routing: { rules: [{ match: "*.short.example.com", issuer: "short" }], defaultIssuer: "long" },
      },
    });
  }, 60_000);
  afterAll(async () => {
    await cf?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const lifetimeDays = (pem: string) => {
    const c = new X509Certificate(pem);
    return (Date.parse(c.validTo) - Date.parse(c.validFrom)) / DAY_MS;
  };

  it("config check lists both; each issues with its own lifetime under the one root", async () => {
    const check = await certfleet(
      ["config", "check", "--config", join(dir, "certfleet.yaml"), "--json"],
      dir,
    );
    expect(check.code, check.stderr).toBe(0);
    expect(JSON.parse(check.stdout).issuers.map((i: { id: string }) => i.id)).toEqual(["short", "long"]);

    const short = await cf.post("/api/certificate", { domain: "a.short.example.com" }, { apiKey: cf.apiKey });
    const long = await cf.post("/api/certificate", { domain: "a.long.example.com" }, { apiKey: cf.apiKey });
    expect(short.status, JSON.stringify(short.body)).toBe(200);
    expect(long.status, JSON.stringify(long.body)).toBe(200);
    // leaves start a minute in the past (clock skew), so the lifetime is a little over the setting
    expect(lifetimeDays(short.body.certificate)).toBeCloseTo(3, 2);
    expect(lifetimeDays(long.body.certificate)).toBeCloseTo(30, 2);
    const root = new X509Certificate(cf.caPem);
    for (const pem of [short.body.issuerCert, long.body.issuerCert]) {
      expect(new X509Certificate(pem).verify(root.publicKey)).toBe(true);
    }
  });
});
