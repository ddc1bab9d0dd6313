import * as x509 from "@peculiar/x509";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createAcmeIssuer, type AcmeIssuer } from "../../src/acme-client/acme-issuer.js";
import type { ChallengeSolver } from "../../src/acme-client/challenge-solver.js";
import { systemClock } from "../../src/core/clock.js";
import { UpstreamError } from "../../src/core/errors.js";
import { createCsr, generatePrivateKey } from "../../src/core/keys.js";
import { silentLogger } from "../../src/core/logger.js";
import { dns01TxtValue } from "../../src/dns/dns01-solver.js";
import type { Issuer, Revoker } from "../../src/issuance/issuer.js";
import { startChallTestSrv, startPebble, type ChallTestSrv, type PebbleServer } from "../harness/pebble.js";
import { startAcmeTestServer, type AcmeTestServer } from "../acme-server/harness.js";
import { PROBLEM, TestAcmeClient, newAccountKey, pemToB64url } from "../acme-server/jws-client.js";
import { pebbleCertStatus } from "./pebble-status.js";

/**
 * certfleet's ACME server tells the profile's issuer before it records a revocation: an upstream
 * ACME CA (Pebble) revokes it there, the embedded CA lists it in its CRL, and an issuer that fails
 * leaves nothing recorded (serverInternal) so the client can try again.
 */
let dns: ChallTestSrv;
let pebble: PebbleServer;
let upstream: AcmeIssuer;
let server: AcmeTestServer;
let failNextRevoke = false;

beforeAll(async () => {
  dns = await startChallTestSrv();
  pebble = await startPebble({ dnsServer: dns.dnsAddress });
  const solver: ChallengeSolver = {
    type: "dns-01",
    present: (c) => dns.setTxt(`_acme-challenge.${c.domain}`, dns01TxtValue(c.keyAuthorization)),
    cleanup: (c) => dns.clearTxt(`_acme-challenge.${c.domain}`),
  };
  server = await startAcmeTestServer({
    profiles: [
      { name: "default", mode: "eab" },
      { name: "up", mode: "eab", issuer: "pebble" },
      { name: "flaky", mode: "eab", issuer: "flaky" },
    ],
    lateIssuers: (storage) => {
      upstream = createAcmeIssuer({
        id: "pebble",
        store: storage.kv,
        solvers: [solver],
        logger: silentLogger(),
        clock: systemClock,
        options: {
          directoryUrl: pebble.directoryUrl,
          caBundlePem: pebble.caBundlePem,
          preferredChallenges: ["dns-01"],
          pollIntervalMs: 100,
        },
      });
      // the real embedded CA (server.ca, the same storage) whose revoke fails once, like an upstream
      // CA that is briefly unreachable
      const flaky: Issuer & Revoker = {
        id: "flaky",
        issue: (r, s) => server.ca.issue(r, s),
        async revoke(certPem, reason, signal) {
          if (failNextRevoke) {
            failNextRevoke = false;
            throw new UpstreamError("acme_unreachable", "the ACME CA could not be reached");
          }
          await server.ca.revoke(certPem, reason, signal);
        },
      };
      return [upstream, flaky];
    },
  });
}, 120_000);

afterAll(async () => {
  await server?.stop();
  await upstream?.close();
  await pebble?.stop();
  await dns?.stop();
});

const ids = (names: string[]) => ({ identifiers: names.map((value) => ({ type: "dns", value })) });

async function account(profile: string, grants: string[]) {
  const c = await new TestAcmeClient(
    server.directoryUrl(profile),
    server.agent,
    await newAccountKey(),
  ).init();
  const res = await c.register(await server.acme.eab.create(grants));
  expect(res.status, res.text).toBe(201);
  return c;
}

/** newOrder → finalize → poll until valid → download; the leaf PEM. */
async function issue(c: TestAcmeClient, names: string[]): Promise<string> {
  const order = await c.post(c.directory.newOrder!, ids(names));
  expect(order.status, order.text).toBe(201);
  const csr = pemToB64url(await createCsr(await generatePrivateKey("ec256"), names));
  let body = (await c.post(order.body.finalize as string, { csr })).body;
  for (let i = 0; body.status !== "valid" && i < 300; i++) {
    expect(body.status).not.toBe("invalid");
    await new Promise((r) => setTimeout(r, 100));
    body = (await c.post(order.location!, "")).body;
  }
  expect(body.status).toBe("valid");
  const cert = await c.post(body.certificate as string, "");
  return cert.text.slice(0, cert.text.indexOf("-----END CERTIFICATE-----") + 25) + "\n";
}

describe("ACME server revocation reaches the issuer", () => {
  test("upstream profile: revoked at Pebble first, then recorded; twice is alreadyRevoked", async () => {
    const c = await account("up", ["*.up.example.com"]);
    const certPem = await issue(c, ["a.up.example.com"]);
    expect((await pebbleCertStatus(pebble, certPem)).status).toBe("Valid");
    const res = await c.post(c.directory.revokeCert!, { certificate: pemToB64url(certPem), reason: 1 });
    expect(res.status, res.text).toBe(200);
    expect(await pebbleCertStatus(pebble, certPem)).toEqual({ status: "Revoked", reason: 1 });
    const again = await c.post(c.directory.revokeCert!, { certificate: pemToB64url(certPem) });
    expect(again.body.type).toBe(PROBLEM("alreadyRevoked"));
  }, 60_000);

  test("embedded profile: the revoked certificate is listed in the embedded CA's CRL", async () => {
    const c = await account("default", ["*.example.com"]);
    const certPem = await issue(c, ["crl.example.com"]);
    const res = await c.post(c.directory.revokeCert!, { certificate: pemToB64url(certPem), reason: 4 });
    expect(res.status, res.text).toBe(200);
    const serial = new x509.X509Certificate(certPem).serialNumber;
    const crl = new x509.X509Crl(await server.ca.crl());
    const entry = crl.entries.find((e) => BigInt("0x" + e.serialNumber) === BigInt("0x" + serial));
    expect(entry?.reason).toBe(x509.X509CrlReason.superseded);
  });

  test("an issuer that fails: serverInternal, nothing recorded, the retry succeeds", async () => {
    const c = await account("flaky", ["*.flaky.example.com"]);
    const certPem = await issue(c, ["f.flaky.example.com"]);
    const certificate = pemToB64url(certPem);
    failNextRevoke = true;
    const failed = await c.post(c.directory.revokeCert!, { certificate, reason: 1 });
    expect(failed.status).toBe(500);
    expect(failed.body.type).toBe(PROBLEM("serverInternal"));
    const serial = BigInt("0x" + new x509.X509Certificate(certPem).serialNumber);
    const listed = async () =>
      new x509.X509Crl(await server.ca.crl()).entries.some((e) => BigInt("0x" + e.serialNumber) === serial);
    expect(await listed()).toBe(false);
    const retry = await c.post(c.directory.revokeCert!, { certificate, reason: 1 });
    expect(retry.status, retry.text).toBe(200); // not "alreadyRevoked": the failure recorded nothing
    expect(await listed()).toBe(true);
  });
});
