import { sql } from "kysely";
import { afterAll, beforeAll, expect, test } from "vitest";
import { createAcmeIssuer, type AcmeIssuer } from "../../src/acme-client/acme-issuer.js";
import { ariCertId } from "../../src/acme-client/ari.js";
import { systemClock } from "../../src/core/clock.js";
import { createCsr, generatePrivateKey } from "../../src/core/keys.js";
import { silentLogger } from "../../src/core/logger.js";
import { startAcmeTestServer, type AcmeTestServer } from "./harness.js";

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
    store: server.storage,
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
