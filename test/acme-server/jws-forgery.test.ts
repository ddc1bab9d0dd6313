import { createPublicKey } from "node:crypto";
import { FlattenedSign, GeneralSign, exportJWK } from "jose";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createCsr, generatePrivateKey } from "../../src/core/keys.js";
import { startAcmeTestServer, type AcmeTestServer } from "./harness.js";
import {
  PROBLEM,
  TestAcmeClient,
  b64,
  newAccountKey,
  pemToB64url,
  signJws,
  type AcmeHttpResult,
} from "./jws-client.js";

/**
 * Hand-built JWS that a correct ACME server must refuse, each with the RFC 8555 problem type, and
 * each refusal still carrying a fresh Replay-Nonce (the client needs one to retry).
 */
let server: AcmeTestServer;
let alice: TestAcmeClient;

beforeAll(async () => {
  server = await startAcmeTestServer({
    profiles: [
      { name: "default", mode: "eab" },
      { name: "other", mode: "eab" },
    ],
  });
  alice = await registered("default", ["*.example.com", "example.com"]);
});
afterAll(async () => server?.stop());

async function registered(profile: string, grants: string[]): Promise<TestAcmeClient> {
  const c = await new TestAcmeClient(
    server.directoryUrl(profile),
    server.agent,
    await newAccountKey(),
  ).init();
  const res = await c.register(await server.acme.eab.create(grants));
  expect(res.status).toBe(201);
  return c;
}

function refused(res: AcmeHttpResult, type: string, status?: number): void {
  expect(res.body.type, res.text).toBe(PROBLEM(type));
  if (status !== undefined) expect(res.status).toBe(status);
  expect(res.headers["content-type"]).toContain("application/problem+json");
  expect(res.nonce).toMatch(/^[A-Za-z0-9_-]{20,}$/);
}

async function issue(c: TestAcmeClient, names: string[]) {
  const order = await c.post(c.directory.newOrder!, {
    identifiers: names.map((value) => ({ type: "dns", value })),
  });
  expect(order.status, order.text).toBe(201);
  const keyPem = await generatePrivateKey("ec256");
  const csr = pemToB64url(await createCsr(keyPem, names));
  const done = await c.post(order.body.finalize as string, { csr });
  expect(done.body.status, done.text).toBe("valid");
  const cert = await c.post(done.body.certificate as string, "");
  return { certPem: cert.text, keyPem, order: done };
}

describe("JWS forgery", () => {
  test("alg none", async () => {
    const header = { alg: "none", nonce: await alice.nonce(), url: alice.directory.newOrder, kid: alice.kid };
    const body = {
      protected: b64(JSON.stringify(header)),
      payload: b64(JSON.stringify({ identifiers: [] })),
      signature: "",
    };
    // the algorithm is checked before the signature: no signature does not make `none` malformed
    refused(
      await alice.postRaw(alice.directory.newOrder!, JSON.stringify(body)),
      "badSignatureAlgorithm",
      400,
    );
    body.signature = b64("x");
    refused(
      await alice.postRaw(alice.directory.newOrder!, JSON.stringify(body)),
      "badSignatureAlgorithm",
      400,
    );
  });

  test("HS256 keyed with the account's public key (algorithm substitution)", async () => {
    const publicPem = createPublicKey({ key: alice.key.publicJwk as never, format: "jwk" }).export({
      type: "spki",
      format: "pem",
    });
    for (const secret of [Buffer.from(String(publicPem)), Buffer.from(JSON.stringify(alice.key.publicJwk))]) {
      const url = alice.directory.newOrder!;
      const jws = await new FlattenedSign(
        new TextEncoder().encode(JSON.stringify({ identifiers: [{ type: "dns", value: "example.com" }] })),
      )
        .setProtectedHeader({ alg: "HS256", nonce: await alice.nonce(), url, kid: alice.kid })
        .sign(new Uint8Array(secret));
      const res = await alice.postRaw(url, JSON.stringify(jws));
      refused(res, "badSignatureAlgorithm", 400);
      expect(res.body.algorithms).toEqual(["RS256", "ES256", "ES384", "EdDSA"]);
    }
  });

  test("ES256 claimed for a P-384 key", async () => {
    const key = await newAccountKey("ES384");
    const c = await new TestAcmeClient(server.directoryUrl("default"), server.agent, key).init();
    const jws = await new FlattenedSign(new TextEncoder().encode("{}"))
      .setProtectedHeader({
        alg: "ES384",
        nonce: await c.nonce(),
        url: c.directory.newAccount!,
        jwk: { ...key.publicJwk },
      })
      .sign(key.privateKey);
    const lying = JSON.parse(Buffer.from(jws.protected!, "base64url").toString()) as Record<string, unknown>;
    lying.alg = "ES256";
    const forged = { ...jws, protected: b64(JSON.stringify(lying)) };
    refused(await c.postRaw(c.directory.newAccount!, JSON.stringify(forged)), "badSignatureAlgorithm");
  });

  test("replayed nonce", async () => {
    const url = `${alice.kid}`;
    const jws = await signJws(alice.key, { nonce: await alice.nonce(), url, kid: alice.kid }, "");
    const first = await alice.postRaw(url, JSON.stringify(jws));
    expect(first.status).toBe(200);
    refused(await alice.postRaw(url, JSON.stringify(jws)), "badNonce", 400);
  });

  test("missing, unknown and forged nonces", async () => {
    const url = alice.kid!;
    refused(await alice.post(url, "", { header: { nonce: undefined } }), "badNonce");
    refused(await alice.post(url, "", { nonce: "bm90LWEtbm9uY2U" }), "badNonce");
    const real = Buffer.from(await alice.nonce(), "base64url");
    real[real.length - 1]! ^= 1;
    refused(await alice.post(url, "", { nonce: real.toString("base64url") }), "badNonce");
  });

  test("url spoofing: the signed url is not the request URL", async () => {
    const signedFor = alice.kid!;
    const jws = await signJws(
      alice.key,
      { nonce: await alice.nonce(), url: signedFor, kid: alice.kid },
      {
        identifiers: [{ type: "dns", value: "example.com" }],
      },
    );
    refused(await alice.postRaw(alice.directory.newOrder!, JSON.stringify(jws)), "unauthorized", 403);
    // the same path on another host is another URL
    const other = await signJws(
      alice.key,
      {
        nonce: await alice.nonce(),
        url: alice.directory.newOrder!.replace("127.0.0.1", "localhost"),
        kid: alice.kid,
      },
      { identifiers: [{ type: "dns", value: "example.com" }] },
    );
    refused(await alice.postRaw(alice.directory.newOrder!, JSON.stringify(other)), "unauthorized", 403);
  });

  test("two signatures (general JWS serialization)", async () => {
    const url = alice.directory.newOrder!;
    const second = await newAccountKey();
    const nonce = await alice.nonce();
    const general = await new GeneralSign(
      new TextEncoder().encode(JSON.stringify({ identifiers: [{ type: "dns", value: "example.com" }] })),
    )
      .addSignature(alice.key.privateKey)
      .setProtectedHeader({ alg: "ES256", nonce, url, kid: alice.kid })
      .addSignature(second.privateKey)
      .setProtectedHeader({ alg: "ES256", nonce, url, jwk: second.publicJwk })
      .sign();
    refused(await alice.postRaw(url, JSON.stringify(general)), "malformed", 400);
    // a flattened JWS carrying a second signature smuggled as extra members
    const flat = await signJws(alice.key, { nonce: await alice.nonce(), url, kid: alice.kid }, {});
    refused(
      await alice.postRaw(url, JSON.stringify({ ...flat, signatures: general.signatures })),
      "malformed",
      400,
    );
    refused(await alice.postRaw(url, JSON.stringify({ ...flat, header: { kid: "x" } })), "malformed", 400);
  });

  test("kid and jwk together", async () => {
    refused(
      await alice.post(
        alice.directory.newOrder!,
        { identifiers: [] },
        { header: { jwk: alice.key.publicJwk } },
      ),
      "malformed",
      400,
    );
  });

  test("kid and jwk swapped: jwk where an account is needed, kid on newAccount", async () => {
    refused(
      await alice.post(
        alice.directory.newOrder!,
        { identifiers: [{ type: "dns", value: "example.com" }] },
        { useJwk: true },
      ),
      "malformed",
      400,
    );
    refused(await alice.post(alice.directory.newAccount!, { termsOfServiceAgreed: true }), "malformed", 400);
  });

  test("kid of another profile's account", async () => {
    const bob = await registered("other", ["example.com"]);
    // bob's kid (profile "other") on profile "default"
    const url = alice.directory.newOrder!;
    const jws = await signJws(
      bob.key,
      { nonce: await alice.nonce(), url, kid: bob.kid },
      {
        identifiers: [{ type: "dns", value: "example.com" }],
      },
    );
    refused(await alice.postRaw(url, JSON.stringify(jws)), "unauthorized", 403);
    // bob's account id spliced into a "default" account URL does not exist there
    const spliced = bob.kid!.replace("/acme/other/", "/acme/default/");
    const jws2 = await signJws(
      bob.key,
      { nonce: await alice.nonce(), url, kid: spliced },
      {
        identifiers: [{ type: "dns", value: "example.com" }],
      },
    );
    refused(await alice.postRaw(url, JSON.stringify(jws2)), "accountDoesNotExist", 400);
  });

  test("a payload signed by another key under this kid", async () => {
    const mallory = await newAccountKey();
    refused(
      await alice.post(
        alice.directory.newOrder!,
        { identifiers: [{ type: "dns", value: "example.com" }] },
        { key: mallory },
      ),
      "malformed",
      400,
    );
  });

  test("content type other than application/jose+json is 415", async () => {
    const jws = await signJws(alice.key, { nonce: await alice.nonce(), url: alice.kid, kid: alice.kid }, "");
    refused(await alice.postRaw(alice.kid!, JSON.stringify(jws), "application/json"), "malformed", 415);
  });

  test("POST-as-GET must have an empty payload", async () => {
    const { order } = await issue(alice, ["pag.example.com"]);
    refused(await alice.post(order.location ?? (order.body.certificate as string), {}), "malformed", 400);
  });

  test("keyChange: inner url differs, inner account differs, oldKey wrong, inner signed by kid", async () => {
    const c = await registered("default", ["example.com"]);
    const url = c.directory.keyChange!;
    const newKey = await newAccountKey();
    const inner = async (header: Record<string, unknown>, payload: Record<string, unknown>) =>
      signJws(
        newKey,
        { jwk: newKey.publicJwk, url, ...header },
        { account: c.kid, oldKey: c.key.publicJwk, ...payload },
      );

    refused(await c.post(url, await inner({ url: c.directory.newOrder }, {})), "malformed", 400);
    refused(await c.post(url, await inner({}, { account: alice.kid })), "unauthorized", 403);
    refused(await c.post(url, await inner({}, { oldKey: newKey.publicJwk })), "unauthorized", 403);
    refused(await c.post(url, await inner({ jwk: undefined, kid: c.kid }, {})), "malformed", 400);
    // the inner JWS signed by a key other than the one it names
    const imposter = await newAccountKey();
    const forgedInner = await signJws(
      imposter,
      { jwk: newKey.publicJwk, url },
      { account: c.kid, oldKey: c.key.publicJwk },
    );
    refused(await c.post(url, forgedInner), "malformed", 400);
    // the new key already belongs to another account: conflict, with its URL
    const taken = await c.post(
      url,
      await signJws(
        alice.key,
        { jwk: alice.key.publicJwk, url },
        { account: c.kid, oldKey: c.key.publicJwk },
      ),
    );
    refused(taken, "conflict", 409);
    expect(taken.location).toBe(alice.kid);

    // and the proper rollover works: afterwards only the new key speaks for the account
    const ok = await c.post(url, await inner({}, {}));
    expect(ok.status, ok.text).toBe(200);
    const oldKey = c.key;
    c.key = newKey;
    expect((await c.post(c.kid!, "")).status).toBe(200);
    refused(await c.post(c.kid!, "", { key: oldKey }), "malformed", 400);
  });

  test("revocation with a key that does not own the certificate", async () => {
    const { certPem, keyPem } = await issue(alice, ["rev.example.com"]);
    const certificate = pemToB64url(certPem);
    // bob's grants do not cover the certificate's name, so he holds no authorization for it (§7.6)
    const bob = await registered("default", ["bob.example.com"]);
    refused(await bob.post(bob.directory.revokeCert!, { certificate }), "unauthorized", 403);
    const stranger = await newAccountKey();
    refused(
      await bob.post(bob.directory.revokeCert!, { certificate }, { useJwk: true, key: stranger }),
      "unauthorized",
      403,
    );
    refused(
      await alice.post(alice.directory.revokeCert!, { certificate, reason: 7 }),
      "badRevocationReason",
      400,
    );

    // the certificate's own key may revoke it (jwk), and then it is already revoked
    const certKey = await exportJWK(createPublicKey(keyPem));
    const { importPKCS8 } = await import("jose");
    const byCertKey = {
      alg: "ES256" as const,
      privateKey: await importPKCS8(keyPem, "ES256"),
      publicJwk: certKey,
    };
    const ok = await bob.post(
      bob.directory.revokeCert!,
      { certificate, reason: 1 },
      { useJwk: true, key: byCertKey },
    );
    expect(ok.status, ok.text).toBe(200);
    expect(ok.nonce).toBeDefined();
    refused(await alice.post(alice.directory.revokeCert!, { certificate }), "alreadyRevoked", 400);
  });

  test("the owning account may revoke; a certificate from elsewhere is refused", async () => {
    const { certPem } = await issue(alice, ["own.example.com"]);
    const ok = await alice.post(alice.directory.revokeCert!, {
      certificate: pemToB64url(certPem),
      reason: 4,
    });
    expect(ok.status, ok.text).toBe(200);
    const tls = await server.ca.issueServerCertificate(["foreign.example.com"], []);
    refused(
      await alice.post(alice.directory.revokeCert!, { certificate: pemToB64url(tls.certPem) }),
      "malformed",
      404,
    );
  });
});

test("a POST without any content type is 415 too", async () => {
  const jws = await signJws(alice.key, { nonce: await alice.nonce(), url: alice.kid, kid: alice.kid }, "");
  const { request } = await import("undici");
  const res = await request(alice.kid!, {
    method: "POST",
    body: JSON.stringify(jws),
    dispatcher: server.agent,
  });
  expect(res.statusCode).toBe(415);
  expect(res.headers["replay-nonce"]).toBeDefined();
  expect(((await res.body.json()) as { type: string }).type).toBe(PROBLEM("malformed"));
});
