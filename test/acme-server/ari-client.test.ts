import { createPublicKey } from "node:crypto";
import { exportJWK, importPKCS8 } from "jose";
import { sql } from "kysely";
import { afterAll, beforeAll, expect, test } from "vitest";
import { createAcmeIssuer, type AcmeIssuer } from "../../src/acme-client/acme-issuer.js";
import { ariCertId } from "../../src/acme-client/ari.js";
import { createManualClock, systemClock } from "../../src/core/clock.js";
import { createCsr, generatePrivateKey } from "../../src/core/keys.js";
import { silentLogger } from "../../src/core/logger.js";
import { createIssuerRouter } from "../../src/issuance/issuer-routing.js";
import { createCertificateManager } from "../../src/issuance/manager.js";
import { startAcmeTestServer, type AcmeTestServer } from "./harness.js";
import { TestAcmeClient, newAccountKey, pemToB64url } from "./jws-client.js";

/**
 * certfleet's own ACME client (the issuer the core uses for upstream CAs) against certfleet's ACME
 * server: it finds `renewalInfo` in the directory, reads the RFC 9773 window, and renews with
 * `replaces`, which the server records on the replaced certificate.
 */
let server: AcmeTestServer;
let client: AcmeIssuer;

beforeAll(async () => {
  server = await startAcmeTestServer({ profiles: [{ name: "default", mode: "eab" }] });
  const eab = await server.acme.eab.create(["ari.example.com"]);
  client = createAcmeIssuer({
    id: "certfleet-acme",
    store: server.storage.kv,
    solvers: [],
    logger: silentLogger(),
    clock: systemClock,
    options: { directoryUrl: server.directoryUrl(), eab, caBundlePem: server.caPem, pollIntervalMs: 100 },
  });
});
afterAll(async () => {
  await client?.close();
  await server?.stop();
});

async function issue(replaces?: string) {
  const csrPem = await createCsr(await generatePrivateKey("ec256"), ["ari.example.com"]);
  return client.issue(
    { names: ["ari.example.com"], csrPem, keyType: "ec256", ...(replaces ? { replaces } : {}) },
    AbortSignal.timeout(20_000),
  );
}

test("renewalInfo window, then a renewal that replaces the first certificate", async () => {
  const first = await issue();
  const info = await client.renewalInfo(first.certPem, AbortSignal.timeout(10_000));
  expect(info).toBeDefined();
  expect(info!.certId).toBe(ariCertId(first.certPem));
  expect(info!.windowEnd.getTime()).toBeGreaterThan(info!.windowStart.getTime());
  expect(info!.retryAfterSeconds).toBe(21600);
  expect(info!.explanationUrl).toMatch(/\/acme\/default\/renewal-info-explained$/);

  const second = await issue(info!.certId);
  expect(ariCertId(second.certPem)).not.toBe(info!.certId);
  const row = await sql<{
    replaced_by: string | null;
  }>`select replaced_by from acme_certificates where ari_cert_id = ${info!.certId}`.execute(server.db);
  expect(row.rows[0]?.replaced_by).toBeTruthy();
  const order = await sql<{
    replaces: string | null;
  }>`select replaces from acme_orders where id = ${row.rows[0]!.replaced_by}`.execute(server.db);
  expect(order.rows[0]?.replaces).toBe(info!.certId);

  // replacing it again is alreadyReplaced; the client falls back to a plain order and still gets a certificate
  const third = await issue(info!.certId);
  expect(third.certPem).toContain("BEGIN CERTIFICATE");
});

test("the manager keeps polling renewalInfo: a certificate revoked at the CA is renewed on the next pass", async () => {
  const clock = createManualClock(new Date());
  const manager = createCertificateManager({
    certificates: server.storage.certificates,
    locks: server.storage.locks,
    kv: server.storage.kv,
    journal: server.storage.journal,
    router: createIssuerRouter([client], [], client.id),
    clock,
    logger: silentLogger(),
    policy: {
      renewWhenRemaining: 1 / 3,
      renewJitter: 0,
      keyType: "ec256",
      reuseKey: false,
      issueTimeoutMs: 30_000,
    },
  });
  const first = (await manager.obtain({ names: ["ari.example.com"] })).record;
  expect(first.ariCertId).toBe(ariCertId(first.certPem));
  expect(first.renewAt.getTime()).toBeGreaterThan(clock.now().getTime() + 86_400_000);

  // Nothing is due, and the CA's Retry-After (6 h) has not passed: no renewal.
  expect(await manager.renewDue()).toEqual({ renewed: 0, failed: 0 });

  // The certificate's own key revokes it at certfleet's ACME server (RFC 8555 §7.6, jwk form).
  const holder = await new TestAcmeClient(server.directoryUrl(), server.agent, await newAccountKey()).init();
  const certKey = {
    alg: "ES256" as const,
    privateKey: await importPKCS8(first.privateKeyPem!, "ES256"),
    publicJwk: await exportJWK(createPublicKey(first.privateKeyPem!)),
  };
  const revoked = await holder.post(
    holder.directory.revokeCert!,
    { certificate: pemToB64url(first.certPem), reason: 1 },
    { useJwk: true, key: certKey },
  );
  expect(revoked.status, revoked.text).toBe(200);

  // Six hours later the next pass asks again, sees a window in the past, and renews with `replaces`.
  clock.set(new Date(clock.now().getTime() + 6 * 3600_000 + 1000));
  expect(await manager.renewDue()).toEqual({ renewed: 1, failed: 0 });
  const second = await server.storage.certificates.getCertificate(first.id);
  expect(second?.version).toBe(first.version + 1);
  expect(second?.serial).not.toBe(first.serial);
  const row = await sql<{
    replaced_by: string | null;
  }>`select replaced_by from acme_certificates where ari_cert_id = ${first.ariCertId}`.execute(server.db);
  expect(row.rows[0]?.replaced_by).toBeTruthy();
});
