import { execFile } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCsr } from "../../src/core/keys.js";
import { startCertfleet, type CertfleetProcess } from "../harness/certfleet-process.js";
import { keyMatches, opensslVerify, sanDnsNames } from "../harness/pki.js";

const run = promisify(execFile);

describe("certfleet serve on its embedded default (a real process)", () => {
  let cf: CertfleetProcess;
  beforeAll(async () => {
    cf = await startCertfleet();
  });
  afterAll(async () => {
    await cf?.stop();
  });

  it("prints an API key and a curl line that returns a certificate", async () => {
    expect(cf.apiKey).toMatch(/^cf_/);
    const line = cf
      .stdout()
      .split("\n")
      .find((l) => l.trim().startsWith("curl "));
    expect(line).toBeDefined();
    const { stdout } = await run("sh", ["-c", line!.trim() + " --silent --show-error --fail"], {
      cwd: cf.dataDir + "/..",
    });
    const body = JSON.parse(stdout);
    expect(body.domain).toBe("app.example.internal");
    expect(body.certificate).toContain("BEGIN CERTIFICATE");
  });

  it("prints the dashboard and ACME directory URLs, and both answer", async () => {
    const ca = cf
      .stdout()
      .split("\n")
      .find((l) => l.trim().startsWith("curl "))!
      .match(/--cacert (\S+)/)![1]!;
    for (const label of ["Dashboard (sign in with an admin API key): ", "ACME directory: "]) {
      const url = cf
        .stdout()
        .split("\n")
        .find((l) => l.startsWith(label))
        ?.slice(label.length);
      expect(url, label).toMatch(/^https:\/\/localhost:\d+\//);
      const { stdout } = await run("curl", ["--silent", "--show-error", "--fail", "--cacert", ca, url!], {
        cwd: cf.dataDir + "/..",
      });
      expect(stdout).toMatch(label.startsWith("ACME") ? /"newNonce"/ : /<title>/i);
    }
  });

  it("issues a verifiable certificate with the documented fields", async () => {
    const res = await cf.post("/api/certificate", { domain: "web.example.com" });
    expect(res.status).toBe(200);
    const b = res.body;
    expect(Object.keys(b)).toEqual(
      expect.arrayContaining([
        "domain",
        "certificate",
        "issuerCert",
        "privateKey",
        "notBefore",
        "notAfter",
        "cached",
      ]),
    );
    expect(b.cached).toBe(false);
    expect(keyMatches(b.privateKey, b.certificate)).toBe(true);
    expect(sanDnsNames(b.certificate)).toEqual(["web.example.com"]);
    expect(await opensslVerify(cf.caPem, b.issuerCert, b.certificate, { purpose: "sslserver" })).toContain(
      "OK",
    );
    expect(new Date(b.notAfter).getTime()).toBeGreaterThan(Date.now());

    const again = await cf.post("/api/certificate", { domain: "WEB.example.com." });
    expect(again.body.cached).toBe(true);
    expect(again.body.serial).toBe(b.serial);
  });

  it("issues multi-name and wildcard certificates", async () => {
    const res = await cf.post("/api/certificate", {
      domains: ["*.apps.example.com", "apps.example.com"],
      keyType: "rsa2048",
    });
    expect(res.status).toBe(200);
    expect(sanDnsNames(res.body.certificate)).toEqual(["*.apps.example.com", "apps.example.com"]);
    expect(res.body.keyType).toBe("rsa2048");
  });

  it("CSR mode: the private key never leaves the caller", async () => {
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const keyPem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const csr = await createCsr(keyPem, ["csr.example.com"]);
    const res = await cf.post("/api/certificate", { domain: "csr.example.com", csr });
    expect(res.status).toBe(200);
    expect(res.body.privateKey).toBeUndefined();
    expect(keyMatches(keyPem, res.body.certificate)).toBe(true);
    const mismatch = await cf.post("/api/certificate", { domain: "other.example.com", csr });
    expect(mismatch.status).toBe(400);
    expect(mismatch.body.error.code).toBe("csr_names_mismatch");
  });

  it.each([
    [{ domain: "192.0.2.1" }, "domain_ip_literal"],
    [{ domain: "bücher.example" }, "domain_not_punycode"],
    [{ domain: "a.*.example.com" }, "domain_wildcard_invalid"],
    [{ domain: "x".repeat(64) + ".example.com" }, "domain_too_long"],
    [{ domain: "no_underscores.example.com" }, "domain_invalid"],
    [{}, "domains_empty"],
    [{ domain: "a.example.com", extra: 1 }, "request_invalid"],
  ])("refuses %j with 400 %s", async (body, code) => {
    const res = await cf.post("/api/certificate", body);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe(code);
    expect(typeof res.body.error.message).toBe("string");
  });

  it("refuses a missing or wrong key with 401 in the same error format", async () => {
    for (const apiKey of ["", "cf_wrong-key-wrong-key-wrong-key"]) {
      const res = await cf.post(
        "/api/certificate",
        { domain: "a.example.com" },
        { apiKey: apiKey || undefined, headers: apiKey ? {} : { authorization: "" } },
      );
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe("unauthenticated");
    }
  });

  it("renewal is refused inside the window unless an admin forces it", async () => {
    const first = await cf.post("/api/certificate", { domain: "renew.example.com" });
    const early = await cf.post("/api/certificate/renew", { domain: "renew.example.com" });
    expect(early.status).toBe(429);
    expect(early.body.error.code).toBe("renewal_not_due");
    expect(Number(early.headers.get("retry-after"))).toBeGreaterThan(0);
    const forced = await cf.post("/api/certificate/renew", { domain: "renew.example.com", force: true });
    expect(forced.status).toBe(200);
    expect(forced.body.serial).not.toBe(first.body.serial);
    expect(forced.body.privateKey).not.toBe(first.body.privateKey); // a fresh key by default
    const served = await cf.post("/api/certificate", { domain: "renew.example.com" });
    expect(served.body.serial).toBe(forced.body.serial);
  });

  it("answers health checks and unknown routes in the error format", async () => {
    expect((await cf.get("/healthz")).body).toEqual({ status: "ok" });
    expect((await cf.get("/readyz")).body).toEqual({ status: "ready" });
    const missing = await cf.get("/nope");
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe("not_found");
  });
});

describe("restart keeps the CA, the key and the certificates", () => {
  it("serves the same CA and cached certificate after a restart", async () => {
    const { mkdtemp } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const dir = await mkdtemp(join(tmpdir(), "certfleet-restart-"));
    const a = await startCertfleet({ dataDir: dir });
    const first = await a.post("/api/certificate", { domain: "keep.example.com" });
    await a.stop();
    const b = await startCertfleet({ dataDir: dir });
    try {
      expect(b.caPem).toBe(a.caPem);
      expect(b.apiKey).toBe(a.apiKey);
      const again = await b.post("/api/certificate", { domain: "keep.example.com" });
      expect(again.body.cached).toBe(true);
      expect(again.body.serial).toBe(first.body.serial);
      expect(again.body.privateKey).toBe(first.body.privateKey);
    } finally {
      await b.stop();
    }
  });
});
