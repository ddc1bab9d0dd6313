import { randomBytes } from "node:crypto";
import { sql } from "kysely";
import { afterAll, beforeAll, expect, test } from "vitest";
import { createCsr, generatePrivateKey } from "../../src/core/keys.js";
import { freePort } from "../harness/pebble.js";
import { startAcmeTestServer, type AcmeTestServer } from "./harness.js";
import { PROBLEM, TestAcmeClient, newAccountKey, pemToB64url } from "./jws-client.js";

/**
 * Two replicas behind one external URL, sharing a PostgreSQL database: a nonce from one is good at
 * the other exactly once, objects made on one are served by the other, and concurrent finalize calls
 * on both issue once. (This also runs the ACME migration on PostgreSQL.)
 */
const BASE_URL = process.env.CERTFLEET_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const schema = `certfleet_acme_${process.pid}_${Date.now().toString(36)}`;
let a: AcmeTestServer;
let b: AcmeTestServer;

beforeAll(async () => {
  const storage = { url: `${BASE_URL}?schema=${schema}`, encryptionKey: randomBytes(32) };
  const externalUrl = `https://127.0.0.1:${await freePort()}`;
  const profiles = [
    { name: "default", mode: "eab" as const },
    { name: "limited", mode: "eab" as const, ordersPerHour: 2 },
  ];
  a = await startAcmeTestServer({ profiles, storage, externalUrl });
  b = await startAcmeTestServer({ profiles, storage, externalUrl });
});
afterAll(async () => {
  await b?.stop();
  if (a) await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(a.db);
  await a?.stop();
});

/** A client whose requests go to replica `to()`, whatever URL it signs. */
function via(server: () => AcmeTestServer) {
  return (url: string) => url.replace(a.baseUrl, server().ownUrl);
}

test("nonces, accounts and orders work across replicas; a nonce is single-use everywhere", async () => {
  let target = a;
  const c = new TestAcmeClient(a.directoryUrl(), a.agent, await newAccountKey());
  c.route = via(() => target);
  await c.init();
  expect((await c.register(await a.acme.eab.create(["*.ha.example.com"]))).status).toBe(201);

  const nonceFromA = await c.nonce();
  target = b;
  const read = await c.post(c.kid!, "", { nonce: nonceFromA });
  expect(read.status, read.text).toBe(200);
  target = a;
  const replay = await c.post(c.kid!, "", { nonce: nonceFromA });
  expect(replay.body.type).toBe(PROBLEM("badNonce"));
  expect(replay.nonce).toBeDefined();

  target = b;
  const order = await c.post(c.directory.newOrder!, {
    identifiers: [{ type: "dns", value: "www.ha.example.com" }],
  });
  expect(order.status).toBe(201);
  const csr = pemToB64url(await createCsr(await generatePrivateKey("ec256"), ["www.ha.example.com"]));
  const [n1, n2] = [await c.nonce(), await c.nonce()];
  const toA = new TestAcmeClient(a.directoryUrl(), a.agent, c.key);
  Object.assign(toA, { directory: c.directory, kid: c.kid });
  toA.route = via(() => a);
  const toB = new TestAcmeClient(a.directoryUrl(), a.agent, c.key);
  Object.assign(toB, { directory: c.directory, kid: c.kid });
  toB.route = via(() => b);
  const results = await Promise.all([
    toA.post(order.body.finalize as string, { csr }, { nonce: n1 }),
    toB.post(order.body.finalize as string, { csr }, { nonce: n2 }),
  ]);
  expect(results.map((r) => r.status).sort()).toEqual([200, 403]);
  const orderId = order.location!.split("/").pop()!;
  const count = await sql<{
    n: string;
  }>`select count(*) as n from acme_certificates where order_id = ${orderId}`.execute(a.db);
  expect(Number(count.rows[0]!.n)).toBe(1);

  const done = results.find((r) => r.status === 200)!;
  const cert = await toA.post(done.body.certificate as string, "");
  expect(cert.status).toBe(200);
  expect(cert.text).toContain("BEGIN CERTIFICATE");
});

test("a burst of newOrders across both replicas stays within the per-account limit", async () => {
  const c = new TestAcmeClient(a.directoryUrl("limited"), a.agent, await newAccountKey());
  c.route = via(() => a);
  await c.init();
  expect((await c.register(await a.acme.eab.create(["*.burst.example.com"]))).status).toBe(201);
  const clients = [a, b].map((to) => {
    const x = new TestAcmeClient(a.directoryUrl("limited"), a.agent, c.key);
    Object.assign(x, { directory: c.directory, kid: c.kid });
    x.route = via(() => to);
    return x;
  });
  // nonces first, so the requests reach the replicas together
  const nonces = await Promise.all(Array.from({ length: 16 }, () => c.nonce()));
  const results = await Promise.all(
    nonces.map((nonce, i) =>
      clients[i % 2]!.post(
        c.directory.newOrder!,
        { identifiers: [{ type: "dns", value: `n${i}.burst.example.com` }] },
        { nonce },
      ),
    ),
  );
  const statuses = results.map((r) => r.status);
  expect(
    statuses.filter((s) => s === 201),
    JSON.stringify(statuses),
  ).toHaveLength(2);
  expect(statuses.filter((s) => s === 429)).toHaveLength(14);
  const accountId = c.kid!.split("/").pop()!;
  const count = await sql<{
    n: string;
  }>`select count(*) as n from acme_orders where account_id = ${accountId}`.execute(a.db);
  expect(Number(count.rows[0]!.n)).toBe(2);
});
