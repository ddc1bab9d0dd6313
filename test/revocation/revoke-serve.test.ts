import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import * as x509 from "@peculiar/x509";
import { Agent, fetch } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCertfleet, type CertfleetProcess } from "../harness/certfleet-process.js";
import { keyMatches } from "../harness/pki.js";

const run = promisify(execFile);
const BIN = new URL("../../bin/certfleet.js", import.meta.url).pathname;
const ADMIN = "admin-key-0123456789abcdef";
const USER = "user-key-0123456789abcdef";
const CRL_URL = "https://certs.example.test/ca/intermediate.crl";

/**
 * Revoke-and-replace through the real server over HTTPS (`certfleet serve` as a process, the built
 * bin) and through `certfleet revoke` beside it on the same database; the embedded CA's CRL is checked
 * with `openssl verify -crl_check`. Needs `npm run build`.
 */
describe("revocation through certfleet serve (embedded CA)", () => {
  let dir: string;
  let cf: CertfleetProcess;
  let dispatcher: Agent;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "cf-revoke-e2e-"));
    cf = await startCertfleet({
      dataDir: dir,
      config: {
        logging: { level: "warn" },
        issuers: [{ id: "embedded", type: "embedded", crlUrl: CRL_URL }],
        auth: {
          apiKeys: [
            { name: "ops", key: ADMIN, admin: true },
            { name: "web", key: USER, grants: ["*.example.test"] },
          ],
        },
      },
    });
    dispatcher = new Agent({ connect: { ca: cf.caPem, servername: "localhost" } });
  }, 60_000);
  afterAll(async () => {
    await cf?.stop();
    await dispatcher?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function raw(path: string) {
    const res = await fetch(cf.url + path, { dispatcher, signal: AbortSignal.timeout(10_000) });
    return {
      status: res.status,
      type: res.headers.get("content-type"),
      bytes: new Uint8Array(await res.arrayBuffer()),
    };
  }

  let n = 0;
  /** `openssl verify -crl_check` against what the server publishes at /ca/root.pem and /ca/intermediate.crl. */
  async function verifyAgainstCrl(leafPem: string, chainPem: string) {
    const root = await raw("/ca/root.pem");
    const crl = await raw("/ca/intermediate.crl");
    expect(crl.status).toBe(200);
    expect(crl.type).toBe("application/pkix-crl");
    const sub = join(dir, `v${++n}`);
    await run("mkdir", ["-p", sub]);
    await writeFile(join(sub, "root.pem"), root.bytes);
    await writeFile(join(sub, "int.pem"), chainPem);
    await writeFile(join(sub, "leaf.pem"), leafPem);
    await writeFile(join(sub, "crl.der"), crl.bytes);
    await run("openssl", ["crl", "-inform", "DER", "-in", "crl.der", "-out", "crl.pem"], { cwd: sub });
    const args = [
      "verify",
      "-crl_check",
      "-CAfile",
      "root.pem",
      "-untrusted",
      "int.pem",
      "-CRLfile",
      "crl.pem",
      "leaf.pem",
    ];
    return run("openssl", args, { cwd: sub }).then(
      (r) => ({ ok: true, output: r.stdout + r.stderr }),
      (e: { stdout?: string; stderr?: string }) => ({
        ok: false,
        output: (e.stdout ?? "") + (e.stderr ?? ""),
      }),
    );
  }

  it("refuses a non-admin (403) and an unknown certificate (404)", async () => {
    await cf.post("/api/certificate", { domain: "www.example.test" }, { apiKey: USER });
    const forbidden = await cf.post(
      "/api/certificate/revoke",
      { domain: "www.example.test" },
      { apiKey: USER },
    );
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.error.code).toBe("admin_required");
    const unknown = await cf.post(
      "/api/certificate/revoke",
      { domain: "nothing.example.test" },
      { apiKey: ADMIN },
    );
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe("certificate_not_found");
    const badReason = await cf.post(
      "/api/certificate/revoke",
      { domain: "www.example.test", reason: "because" },
      { apiKey: ADMIN },
    );
    expect(badReason.status).toBe(400);
  });

  it("revokes and replaces: new serial and key, the old one is in the CRL, the next POST gets the new one", async () => {
    const before = await cf.post("/api/certificate", { domain: "app.example.test" }, { apiKey: USER });
    expect(before.status).toBe(200);
    const ext = new x509.X509Certificate(before.body.certificate).getExtension(
      x509.CRLDistributionPointsExtension,
    );
    expect(ext?.distributionPoints[0]?.distributionPoint?.fullName?.[0]?.uniformResourceIdentifier).toBe(
      CRL_URL,
    );
    expect((await verifyAgainstCrl(before.body.certificate, before.body.issuerCert)).ok).toBe(true);

    const res = await cf.post(
      "/api/certificate/revoke",
      { domain: "app.example.test", reason: "keyCompromise" },
      { apiKey: ADMIN },
    );
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.domain).toBe("app.example.test");
    expect(res.body.serial).not.toBe(before.body.serial);
    expect(res.body.privateKey).not.toBe(before.body.privateKey);
    expect(keyMatches(res.body.privateKey, res.body.certificate)).toBe(true);
    expect(keyMatches(before.body.privateKey, res.body.certificate)).toBe(false);

    const old = await verifyAgainstCrl(before.body.certificate, before.body.issuerCert);
    expect(old.ok).toBe(false);
    expect(old.output).toContain("certificate revoked");
    const fresh = await verifyAgainstCrl(res.body.certificate, res.body.issuerCert);
    expect(fresh.ok, fresh.output).toBe(true);

    const next = await cf.post("/api/certificate", { domain: "app.example.test" }, { apiKey: USER });
    expect(next.body.serial).toBe(res.body.serial);
  });

  it("replace: false answers {revoked: true}; the next POST issues a new certificate", async () => {
    const before = await cf.post("/api/certificate", { domain: "old.example.test" }, { apiKey: USER });
    const res = await cf.post(
      "/api/certificate/revoke",
      { domain: "old.example.test", reason: "cessationOfOperation", replace: false },
      { apiKey: ADMIN },
    );
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ revoked: true, serial: before.body.serial });
    const next = await cf.post("/api/certificate", { domain: "old.example.test" }, { apiKey: USER });
    expect(next.body.cached).toBe(false);
    expect(next.body.serial).not.toBe(before.body.serial);
    expect(next.body.privateKey).not.toBe(before.body.privateKey);
  });

  it("certfleet revoke (a process beside the running server) revokes and replaces", async () => {
    const configPath = join(dir, "certfleet.yaml");
    const before = await cf.post("/api/certificate", { domain: "cli.example.test" }, { apiKey: USER });
    const { stdout } = await run(process.execPath, [
      BIN,
      "revoke",
      "--config",
      configPath,
      "--domain",
      "cli.example.test",
      "--reason",
      "keyCompromise",
      "--json",
    ]);
    const out = JSON.parse(stdout);
    expect(out.revoked).toEqual({ serial: before.body.serial, reason: "keyCompromise" });
    expect(out.replacement.serial).not.toBe(before.body.serial);
    expect((await verifyAgainstCrl(before.body.certificate, before.body.issuerCert)).output).toContain(
      "certificate revoked",
    );
    // the server's memory cache holds an entry for at most 2 s
    await new Promise((r) => setTimeout(r, 2100));
    const next = await cf.post("/api/certificate", { domain: "cli.example.test" }, { apiKey: USER });
    expect(next.body.serial).toBe(out.replacement.serial);

    const unknown = await run(process.execPath, [
      BIN,
      "revoke",
      "--config",
      configPath,
      "--domain",
      "nope.example.test",
    ]).then(
      () => ({ code: 0, stderr: "" }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("no such certificate");
  }, 60_000);
});
