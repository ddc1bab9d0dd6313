import { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ariCertId } from "../../src/acme-client/ari.js";
import { createCsr, generatePrivateKey } from "../../src/core/keys.js";
import { opensslVerify } from "../harness/pki.js";
import { httpGet, startAcmeTestServer, type AcmeTestServer } from "./harness.js";
import { PROBLEM, TestAcmeClient, newAccountKey, pemToB64url } from "./jws-client.js";

let server: AcmeTestServer;

beforeAll(async () => {
  server = await startAcmeTestServer({
    profiles: [
      { name: "default", mode: "eab" },
      { name: "limited", mode: "eab", ordersPerHour: 2 },
      { name: "open", mode: "challenge", maxPendingAuthorizations: 2, allowPrivateAddresses: true },
    ],
  });
});
afterAll(async () => server?.stop());

async function account(profile = "default", grants = ["*.example.com", "example.com"]) {
  const c = await new TestAcmeClient(
    server.directoryUrl(profile),
    server.agent,
    await newAccountKey(),
  ).init();
  const res = await c.register(profile === "open" ? undefined : await server.acme.eab.create(grants));
  expect(res.status, res.text).toBe(201);
  return c;
}

const ids = (names: string[]) => ({ identifiers: names.map((value) => ({ type: "dns", value })) });

async function csrFor(names: string[]) {
  return pemToB64url(await createCsr(await generatePrivateKey("ec256"), names));
}

/** A CSR carrying an IP address SAN next to the DNS names (built by hand; createCsr never does this). */
async function csrWithIp(names: string[], ip: string): Promise<string> {
  const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const keys = await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"]);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    {
      name: `CN=${names[0]}`,
      keys,
      signingAlgorithm: alg,
      extensions: [
        new x509.SubjectAlternativeNameExtension([
          ...names.map((value) => ({ type: "dns" as const, value })),
          { type: "ip", value: ip },
        ]),
      ],
    },
    webcrypto,
  );
  return Buffer.from(csr.rawData).toString("base64url");
}

describe("orders in an eab profile", () => {
  test("granted names are ready at once; the certificate chains to the embedded root", async () => {
    const c = await account();
    const order = await c.post(c.directory.newOrder!, ids(["www.example.com", "example.com"]));
    expect(order.status).toBe(201);
    expect(order.body).toMatchObject({
      status: "ready",
      identifiers: [
        { type: "dns", value: "www.example.com" },
        { type: "dns", value: "example.com" },
      ],
    });
    const authz = await c.post((order.body.authorizations as string[])[0]!, "");
    expect(authz.body).toMatchObject({
      status: "valid",
      identifier: { type: "dns", value: "www.example.com" },
    });

    const done = await c.post(order.body.finalize as string, {
      csr: await csrFor(["example.com", "www.example.com"]),
    });
    expect(done.body.status, done.text).toBe("valid");
    const cert = await c.post(done.body.certificate as string, "");
    expect(cert.headers["content-type"]).toContain("application/pem-certificate-chain");
    const blocks = cert.text.match(/-----BEGIN CERTIFICATE-----/g) ?? [];
    expect(blocks).toHaveLength(2);
    const leaf = cert.text.slice(0, cert.text.indexOf("-----END CERTIFICATE-----") + 25) + "\n";
    await opensslVerify(server.caPem, cert.text.slice(leaf.length), leaf);

    // an alternate chain that includes the root
    const links = ([] as string[]).concat(cert.headers.link as string[]);
    const alternate = links.find((l) => l.endsWith('rel="alternate"'));
    expect(alternate).toBeDefined();
    const alt = await c.post(/<([^>]+)>/.exec(alternate!)![1]!, "");
    expect(alt.text.match(/-----BEGIN CERTIFICATE-----/g)).toHaveLength(3);

    // orders list
    const list = await c.post(`${c.kid}/orders`, "");
    expect(list.body.orders).toEqual([order.location]);
  });

  test("names outside the account's grants are rejectedIdentifier, with subproblems", async () => {
    const c = await account("default", ["a.example.com"]);
    const res = await c.post(c.directory.newOrder!, ids(["a.example.com", "b.example.com", "evil.test"]));
    expect(res.status).toBe(400);
    expect(res.body.type).toBe(PROBLEM("rejectedIdentifier"));
    expect(
      (res.body.subproblems as { identifier: { value: string } }[]).map((s) => s.identifier.value),
    ).toEqual(["b.example.com", "evil.test"]);
    const ip = await c.post(c.directory.newOrder!, { identifiers: [{ type: "ip", value: "127.0.0.1" }] });
    expect(ip.body.type).toBe(PROBLEM("unsupportedIdentifier"));
    const wildcard = await c.post(c.directory.newOrder!, ids(["*.a.example.com"]));
    expect(wildcard.body.type).toBe(PROBLEM("rejectedIdentifier"));
  });

  test("finalize: CSR names must match exactly; no IP SANs; a second finalize is orderNotReady", async () => {
    const c = await account();
    const order = await c.post(c.directory.newOrder!, ids(["csr.example.com"]));
    const finalizeUrl = order.body.finalize as string;
    for (const csr of [
      await csrFor(["csr.example.com", "extra.example.com"]),
      await csrFor(["other.example.com"]),
      await csrWithIp(["csr.example.com"], "10.0.0.1"),
    ]) {
      const res = await c.post(finalizeUrl, { csr });
      expect(res.status).toBe(400);
      expect(res.body.type).toBe(PROBLEM("badCSR"));
    }
    expect((await c.post(order.location!, "")).body.status).toBe("ready");
    const ok = await c.post(finalizeUrl, { csr: await csrFor(["csr.example.com"]) });
    expect(ok.body.status).toBe("valid");
    const again = await c.post(finalizeUrl, { csr: await csrFor(["csr.example.com"]) });
    expect(again.status).toBe(403);
    expect(again.body.type).toBe(PROBLEM("orderNotReady"));
  });

  test("two concurrent finalize calls issue exactly one certificate", async () => {
    const c = await account();
    const order = await c.post(c.directory.newOrder!, ids(["race.example.com"]));
    const csr = await csrFor(["race.example.com"]);
    const [n1, n2] = [await c.nonce(), await c.nonce()];
    const results = await Promise.all([
      c.post(order.body.finalize as string, { csr }, { nonce: n1 }),
      c.post(order.body.finalize as string, { csr }, { nonce: n2 }),
    ]);
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 403]);
    expect(results.find((r) => r.status === 403)!.body.type).toBe(PROBLEM("orderNotReady"));
    const orderId = order.location!.split("/").pop()!;
    const rows = await sql<{
      n: number;
    }>`select count(*) as n from acme_certificates where order_id = ${orderId}`.execute(server.db);
    expect(Number(rows.rows[0]!.n)).toBe(1);
  });

  test("orders per hour are rate limited with Retry-After", async () => {
    const c = await account("limited");
    expect((await c.post(c.directory.newOrder!, ids(["r1.example.com"]))).status).toBe(201);
    expect((await c.post(c.directory.newOrder!, ids(["r2.example.com"]))).status).toBe(201);
    const limited = await c.post(c.directory.newOrder!, ids(["r3.example.com"]));
    expect(limited.status).toBe(429);
    expect(limited.body.type).toBe(PROBLEM("rateLimited"));
    const retryAfter = Number(limited.headers["retry-after"]);
    expect(retryAfter).toBeGreaterThan(3000);
    expect(retryAfter).toBeLessThanOrEqual(3600);
    expect(limited.nonce).toBeDefined();
  });

  test("concurrent newOrders cannot slip past the per-account limit together", async () => {
    const c = await account("limited");
    // nonces first, so the twelve requests reach the server together
    const nonces = await Promise.all(Array.from({ length: 12 }, () => c.nonce()));
    const results = await Promise.all(
      nonces.map((nonce, i) => c.post(c.directory.newOrder!, ids([`burst${i}.example.com`]), { nonce })),
    );
    const statuses = results.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 201)).toHaveLength(2);
    expect(statuses.filter((s) => s === 429)).toHaveLength(10);
    for (const r of results.filter((x) => x.status === 429)) expect(r.body.type).toBe(PROBLEM("rateLimited"));
    const kid = c.kid!.split("/").pop()!;
    const rows = await sql<{
      n: number;
    }>`select count(*) as n from acme_orders where account_id = ${kid}`.execute(server.db);
    expect(Number(rows.rows[0]!.n)).toBe(2);
  });

  test("pending authorizations are limited in a challenge profile", async () => {
    const c = await account("open");
    const order = await c.post(c.directory.newOrder!, ids(["p1.example.com", "p2.example.com"]));
    expect(order.body.status).toBe("pending");
    const authz = await c.post((order.body.authorizations as string[])[0]!, "");
    expect(authz.body.status).toBe("pending");
    expect(authz.headers["retry-after"]).toBe("1");
    const types = (authz.body.challenges as { type: string; token: string }[]).map((ch) => ch.type).sort();
    expect(types).toEqual(["dns-01", "http-01", "tls-alpn-01"]);
    for (const ch of authz.body.challenges as { token: string }[])
      expect(Buffer.from(ch.token, "base64url").length).toBeGreaterThanOrEqual(16);
    const notReady = await c.post(order.body.finalize as string, {
      csr: await csrFor(["p1.example.com", "p2.example.com"]),
    });
    expect(notReady.body.type).toBe(PROBLEM("orderNotReady"));
    const limited = await c.post(c.directory.newOrder!, ids(["p3.example.com"]));
    expect(limited.status).toBe(429);
    expect(limited.body.type).toBe(PROBLEM("rateLimited"));
    expect(limited.headers["retry-after"]).toBeDefined();
    // a wildcard gets only dns-01
    const deactivate = await c.post((order.body.authorizations as string[])[0]!, { status: "deactivated" });
    expect(deactivate.body.status).toBe("deactivated");
    const wild = await c.post(c.directory.newOrder!, ids(["*.w.example.com"]));
    const wauthz = await c.post((wild.body.authorizations as string[])[0]!, "");
    expect(wauthz.body).toMatchObject({ wildcard: true, identifier: { value: "w.example.com" } });
    expect((wauthz.body.challenges as { type: string }[]).map((ch) => ch.type)).toEqual(["dns-01"]);
    // the order whose authorization was deactivated can never become ready
    expect((await c.post(order.location!, "")).body.status).toBe("invalid");
  });
});

describe("ARI renewalInfo (RFC 9773) and replaces", () => {
  test("renewalInfo answers a window, an explanation URL and Retry-After; replaces is accepted once", async () => {
    const c = await account();
    const order = await c.post(c.directory.newOrder!, ids(["ari.example.com"]));
    const done = await c.post(order.body.finalize as string, { csr: await csrFor(["ari.example.com"]) });
    const certPem = (await c.post(done.body.certificate as string, "")).text;
    const certId = ariCertId(certPem);

    const info = await httpGet(server, `${c.directory.renewalInfo}/${certId}`);
    expect(info.status).toBe(200);
    expect(Number(info.headers["retry-after"])).toBe(21600);
    expect(info.headers["replay-nonce"]).toBeDefined();
    const body = info.json() as { suggestedWindow: { start: string; end: string }; explanationURL: string };
    const cert = new x509.X509Certificate(certPem);
    const start = Date.parse(body.suggestedWindow.start);
    const end = Date.parse(body.suggestedWindow.end);
    expect(start).toBeGreaterThan(cert.notBefore.getTime());
    expect(end).toBeGreaterThan(start);
    expect(end).toBeLessThan(cert.notAfter.getTime());
    const explanation = await httpGet(server, body.explanationURL);
    expect(explanation.status).toBe(200);

    const unknown = await httpGet(server, `${c.directory.renewalInfo}/AAAA.AAAA`);
    expect(unknown.status).toBe(404);

    const renewal = await c.post(c.directory.newOrder!, { ...ids(["ari.example.com"]), replaces: certId });
    expect(renewal.status, renewal.text).toBe(201);
    expect(renewal.body.replaces).toBe(certId);
    const renewed = await c.post(renewal.body.finalize as string, { csr: await csrFor(["ari.example.com"]) });
    expect(renewed.body.status).toBe("valid");
    const twice = await c.post(c.directory.newOrder!, { ...ids(["ari.example.com"]), replaces: certId });
    expect(twice.status).toBe(409);
    expect(twice.body.type).toBe(PROBLEM("alreadyReplaced"));

    // another account cannot claim to replace it
    const other = await account();
    const theirs = await other.post(other.directory.newOrder!, {
      ...ids(["ari.example.com"]),
      replaces: certId,
    });
    expect(theirs.body.type).toBe(PROBLEM("unauthorized"));

    // after revocation the window is in the past: renew now
    await c.post(c.directory.revokeCert!, { certificate: pemToB64url(certPem) });
    const revoked = (await httpGet(server, `${c.directory.renewalInfo}/${certId}`)).json() as typeof body;
    expect(Date.parse(revoked.suggestedWindow.end)).toBeLessThanOrEqual(Date.now());
  });
});
