import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCertfleet, type CertfleetProcess } from "../harness/certfleet-process.js";
import {
  freePort,
  startChallTestSrv,
  startPebble,
  type ChallTestSrv,
  type PebbleServer,
} from "../harness/pebble.js";
import { keyMatches } from "../harness/pki.js";
import { pebbleCertStatus } from "./pebble-status.js";

const run = promisify(execFile);
const BIN = new URL("../../bin/certfleet.js", import.meta.url).pathname;

/**
 * Revoke-and-replace with Pebble as the CA: `certfleet serve` (the built bin) answers HTTP-01 on its
 * own listener; after POST /api/certificate/revoke (and after `certfleet revoke` run beside it) Pebble's
 * management API reports the old certificate revoked and the replacement valid.
 */
describe("revocation through certfleet serve (Pebble)", () => {
  let dns: ChallTestSrv;
  let pebble: PebbleServer;
  let cf: CertfleetProcess;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "cf-revoke-pebble-"));
    dns = await startChallTestSrv(); // every name resolves to 127.0.0.1: Pebble reaches certfleet's listener
    const httpPort = await freePort();
    pebble = await startPebble({ dnsServer: dns.dnsAddress, httpPort });
    const caBundle = join(dir, "pebble-ca.pem");
    await writeFile(caBundle, pebble.caBundlePem);
    cf = await startCertfleet({
      dataDir: dir,
      config: {
        logging: { level: "warn" },
        issuers: [
          {
            id: "pebble",
            type: "acme",
            caDirUrl: pebble.directoryUrl,
            caBundleFile: caBundle,
            email: "ops@example.com",
            challenges: ["http-01"],
            pollInterval: "100ms",
          },
        ],
        routing: { defaultIssuer: "pebble" },
        server: { bind: "127.0.0.1", port: 0, http01: { enabled: true, bind: "127.0.0.1", port: httpPort } },
      },
    });
  }, 120_000);
  afterAll(async () => {
    await cf?.stop();
    await pebble?.stop();
    await dns?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("POST /api/certificate/revoke revokes at Pebble and returns a replacement for a new key", async () => {
    const before = await cf.post("/api/certificate", { domain: "www.example.test" });
    expect(before.status, JSON.stringify(before.body)).toBe(200);
    const res = await cf.post("/api/certificate/revoke", {
      domain: "www.example.test",
      reason: "keyCompromise",
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.issuer).toBe("pebble");
    expect(res.body.serial).not.toBe(before.body.serial);
    expect(keyMatches(before.body.privateKey, res.body.certificate)).toBe(false);
    expect(await pebbleCertStatus(pebble, before.body.certificate)).toEqual({ status: "Revoked", reason: 1 });
    expect((await pebbleCertStatus(pebble, res.body.certificate)).status).toBe("Valid");
    const next = await cf.post("/api/certificate", { domain: "www.example.test" });
    expect(next.body.serial).toBe(res.body.serial);
  }, 60_000);

  it("certfleet revoke beside the server: revoked at Pebble, replaced over the server's HTTP-01 listener", async () => {
    const before = await cf.post("/api/certificate", { domain: "cli.example.test" });
    expect(before.status, JSON.stringify(before.body)).toBe(200);
    const { stdout } = await run(process.execPath, [
      BIN,
      "revoke",
      "--config",
      join(dir, "certfleet.yaml"),
      "--domain",
      "cli.example.test",
      "--reason",
      "superseded",
      "--json",
    ]);
    const out = JSON.parse(stdout);
    expect(out.revoked.serial).toBe(before.body.serial);
    expect(await pebbleCertStatus(pebble, before.body.certificate)).toEqual({ status: "Revoked", reason: 4 });
    await new Promise((r) => setTimeout(r, 2100)); // the server's memory cache entry expires
    const next = await cf.post("/api/certificate", { domain: "cli.example.test" });
    expect(next.body.serial).toBe(out.replacement.serial);
    expect((await pebbleCertStatus(pebble, next.body.certificate)).status).toBe("Valid");
  }, 60_000);
});
