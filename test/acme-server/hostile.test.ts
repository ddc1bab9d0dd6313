import { createServer, type Server } from "node:http";
import { createPublicKey } from "node:crypto";
import { calculateJwkThumbprint, exportJWK, exportPKCS8, importPKCS8 } from "jose";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ORDER_LOCK_LEASE_MS } from "../../src/acme-server/rate-limits.js";
import { sleep } from "../../src/core/clock.js";
import { createCsr, generatePrivateKey } from "../../src/core/keys.js";
import { startBind, type BindServer } from "../harness/bind.js";
import { freePort } from "../harness/pebble.js";
import { startAcmeTestServer, type AcmeTestServer } from "./harness.js";
import {
  PROBLEM,
  TestAcmeClient,
  b64,
  newAccountKey,
  pemToB64url,
  signJws,
  type AccountKey,
  type AcmeHttpResult,
} from "./jws-client.js";

/**
 * Regressions from the hostile-client findings of issue 14, each written from its RFC 8555 clause and
 * driven by the hand-made JWS client: a certificate for an account key (§11.1), revocation by an account
 * holding authorizations (§7.6), the inner keyChange JWS (§7.3.5), the check order for `alg: none`
 * (§6.2), and an order lock left behind by a dead replica.
 */
let bind: BindServer;
let server: AcmeTestServer;
let http01: Server;
/** token → key authorization, served by the HTTP-01 responder below */
const keyAuthorizations = new Map<string, string>();

beforeAll(async () => {
  bind = await startBind({
    zone: "example.test",
    records: { "example.test": ["rev.example.test. IN A 127.0.0.1", "both.example.test. IN A 127.0.0.1"] },
  });
  const http01Port = await freePort();
  http01 = createServer((req, res) => {
    const token = (req.url ?? "").split("/").pop() ?? "";
    const answer = keyAuthorizations.get(token);
    res.writeHead(answer ? 200 : 404).end(answer ?? "");
  });
  http01.maxRequestsPerSocket = 20;
  await new Promise<void>((resolve) => http01.listen(http01Port, "127.0.0.1", resolve));
  server = await startAcmeTestServer({
    profiles: [
      { name: "default", mode: "eab" },
      { name: "once", mode: "eab", eabRebindWindow: 0 },
      { name: "brief", mode: "eab", eabRebindWindow: 1 },
      {
        name: "open",
        mode: "challenge",
        allowPrivateAddresses: true,
        ports: { http01: http01Port, tlsAlpn01: http01Port },
      },
    ],
    dnsResolvers: [bind.address],
    validationTimeout: 5_000,
  });
});
afterAll(async () => {
  await server?.stop();
  await new Promise((resolve) => http01?.close(resolve));
  await bind?.stop();
});

async function account(profile = "default", grants = ["*.example.com"], key?: AccountKey) {
  const c = await new TestAcmeClient(
    server.directoryUrl(profile),
    server.agent,
    key ?? (await newAccountKey()),
  ).init();
  const res = await c.register(profile === "default" ? await server.acme.eab.create(grants) : undefined);
  expect(res.status, res.text).toBe(201);
  return c;
}

function refused(res: AcmeHttpResult, type: string, status?: number): void {
  expect(res.body.type, res.text).toBe(PROBLEM(type));
  if (status !== undefined) expect(res.status).toBe(status);
  expect(res.nonce).toMatch(/^[A-Za-z0-9_-]{20,}$/);
}

const ids = (names: string[]) => ({ identifiers: names.map((value) => ({ type: "dns", value })) });

async function keyPem(key: AccountKey): Promise<string> {
  return exportPKCS8(key.privateKey);
}

/** newOrder → (challenge mode: HTTP-01 answered) → finalize with `csrKeyPem` → the certificate PEM. */
async function obtain(c: TestAcmeClient, names: string[], csrKeyPem?: string): Promise<string> {
  const order = await c.post(c.directory.newOrder!, ids(names));
  expect(order.status, order.text).toBe(201);
  for (const authzUrl of order.body.authorizations as string[]) {
    const authz = await c.post(authzUrl, "");
    if (authz.body.status === "valid") continue;
    const challenge = (authz.body.challenges as { type: string; url: string; token: string }[]).find(
      (ch) => ch.type === "http-01",
    )!;
    keyAuthorizations.set(
      challenge.token,
      `${challenge.token}.${await calculateJwkThumbprint(c.key.publicJwk, "sha256")}`,
    );
    expect((await c.post(challenge.url, {})).status).toBe(200);
    for (let i = 0; i < 100; i++) {
      const now = await c.post(authzUrl, "");
      if (now.body.status !== "pending") {
        expect(now.body.status, now.text).toBe("valid");
        break;
      }
      await sleep(100);
    }
  }
  const csr = pemToB64url(await createCsr(csrKeyPem ?? (await generatePrivateKey("ec256")), names));
  let done = await c.post(order.body.finalize as string, { csr });
  expect(done.body.status, done.text).not.toBe("invalid");
  for (let i = 0; done.body.status !== "valid" && i < 100; i++) {
    await sleep(100);
    done = await c.post(order.location!, "");
  }
  return (await c.post(done.body.certificate as string, "")).text;
}

describe("§11.1 the certificate key is not an account key", () => {
  test("a CSR carrying the ordering account's own key is badCSR, and nothing is issued", async () => {
    const c = await account("default", ["self.example.com"]);
    const order = await c.post(c.directory.newOrder!, ids(["self.example.com"]));
    const csr = pemToB64url(await createCsr(await keyPem(c.key), ["self.example.com"]));
    refused(await c.post(order.body.finalize as string, { csr }), "badCSR", 400);
    // the order stays ready: a proper CSR still works
    const after = await c.post(order.location!, "");
    expect(after.body.status).toBe("ready");
    const good = pemToB64url(await createCsr(await generatePrivateKey("ec256"), ["self.example.com"]));
    expect((await c.post(order.body.finalize as string, { csr: good })).body.status).toBe("valid");
  });

  test("a CSR carrying another account's key is badCSR too", async () => {
    const other = await account("default", ["unrelated.example.com"]);
    const c = await account("default", ["theirs.example.com"]);
    const order = await c.post(c.directory.newOrder!, ids(["theirs.example.com"]));
    const csr = pemToB64url(await createCsr(await keyPem(other.key), ["theirs.example.com"]));
    refused(await c.post(order.body.finalize as string, { csr }), "badCSR", 400);
  });
});

describe("the mirror of §11.1: an account key is not a certificate key", () => {
  /** The account key a client would make from a certificate's private key. */
  async function accountKeyFrom(privateKeyPem: string): Promise<AccountKey> {
    const privateKey = await importPKCS8(privateKeyPem, "ES256", { extractable: true });
    return { alg: "ES256", privateKey, publicJwk: await exportJWK(createPublicKey(privateKeyPem)) };
  }

  test("newAccount and keyChange with the key of an issued certificate are badPublicKey", async () => {
    const c = await account("default", ["mirror.example.com"]);
    const certKey = await generatePrivateKey("ec256");
    expect(await obtain(c, ["mirror.example.com"], certKey)).toContain("BEGIN CERTIFICATE");
    const stolen = await accountKeyFrom(certKey);

    // a new account with it: refused in every profile, and nothing is created
    for (const profile of ["default", "open"]) {
      const thief = await new TestAcmeClient(server.directoryUrl(profile), server.agent, stolen).init();
      const eab = profile === "default" ? await server.acme.eab.create(["*.example.com"]) : undefined;
      refused(await thief.register(eab), "badPublicKey", 400);
      const existing = await thief.post(thief.directory.newAccount!, {
        onlyReturnExisting: true,
      });
      refused(existing, "accountDoesNotExist", 400);
    }

    // rolling an account over to it: refused, and the old key still speaks for the account
    const other = await account("default", ["other.example.com"]);
    const url = other.directory.keyChange!;
    const inner = await signJws(
      stolen,
      { jwk: stolen.publicJwk, url },
      { account: other.kid, oldKey: other.key.publicJwk },
    );
    refused(await other.post(url, inner), "badPublicKey", 400);
    expect((await other.post(other.kid!, "")).status).toBe(200);
  });

  test("a CSR carrying an account key of another profile fails the order with badCSR", async () => {
    const elsewhere = await account("open");
    const c = await account("default", ["cross.example.com"]);
    const order = await c.post(c.directory.newOrder!, ids(["cross.example.com"]));
    const csr = pemToB64url(await createCsr(await keyPem(elsewhere.key), ["cross.example.com"]));
    let res = await c.post(order.body.finalize as string, { csr });
    for (let i = 0; res.body.status === "processing" && i < 100; i++) {
      await sleep(100);
      res = await c.post(order.location!, "");
    }
    expect(res.body.status, res.text).toBe("invalid");
    expect((res.body.error as { type?: string } | undefined)?.type).toBe(PROBLEM("badCSR"));
    expect(res.body.certificate).toBeUndefined();
  });
});

describe("§7.6 revocation by an account holding authorizations", () => {
  test("challenge mode: an account with valid authorizations for every name may revoke", async () => {
    const owner = await account("open");
    const certPem = await obtain(owner, ["rev.example.test", "both.example.test"]);
    const certificate = pemToB64url(certPem);

    // an account with an authorization for one of the two names only: refused
    const partial = await account("open");
    await obtain(partial, ["rev.example.test"]);
    refused(await partial.post(partial.directory.revokeCert!, { certificate }), "unauthorized", 403);

    // an account holding valid authorizations for both names (from an order of its own): authorized
    const holder = await account("open");
    await obtain(holder, ["both.example.test", "rev.example.test"]);
    const ok = await holder.post(holder.directory.revokeCert!, { certificate, reason: 4 });
    expect(ok.status, ok.text).toBe(200);
    refused(await owner.post(owner.directory.revokeCert!, { certificate }), "alreadyRevoked", 400);
  });

  test("eab mode: the grants are standing authorizations; a grant for other names is not", async () => {
    const owner = await account("default", ["grant.example.com"]);
    const certificate = pemToB64url(await obtain(owner, ["grant.example.com"]));
    const stranger = await account("default", ["other.example.com"]);
    refused(await stranger.post(stranger.directory.revokeCert!, { certificate }), "unauthorized", 403);
    const granted = await account("default", ["*.example.com"]);
    const ok = await granted.post(granted.directory.revokeCert!, { certificate });
    expect(ok.status, ok.text).toBe(200);
  });
});

describe("§7.3.5 keyChange and §6.2 check order", () => {
  test("an inner JWS with a nonce is malformed, and the key is not changed", async () => {
    const c = await account();
    const url = c.directory.keyChange!;
    const newKey = await newAccountKey();
    const payload = { account: c.kid, oldKey: c.key.publicJwk };
    const withNonce = await signJws(newKey, { jwk: newKey.publicJwk, url, nonce: await c.nonce() }, payload);
    refused(await c.post(url, withNonce), "malformed", 400);
    // the old key still speaks for the account
    expect((await c.post(c.kid!, "")).status).toBe(200);

    // an inner payload that is JSON but not an object is malformed, not a server error
    const nullPayload = await signJws(newKey, { jwk: newKey.publicJwk, url }, null);
    refused(await c.post(url, nullPayload), "malformed", 400);
    // an inner JWS with `alg: none` and no signature: badSignatureAlgorithm
    const none = {
      protected: b64(JSON.stringify({ alg: "none", jwk: newKey.publicJwk, url })),
      payload: b64(JSON.stringify(payload)),
      signature: "",
    };
    refused(await c.post(url, none), "badSignatureAlgorithm", 400);
  });

  test("`alg: none` or an unsupported alg with an empty signature is badSignatureAlgorithm", async () => {
    const c = await account();
    for (const alg of ["none", "HS256", "PS256", "ES512"]) {
      const header = { alg, nonce: await c.nonce(), url: c.directory.newOrder, kid: c.kid };
      const body = { protected: b64(JSON.stringify(header)), payload: b64("{}"), signature: "" };
      const res = await c.postRaw(c.directory.newOrder!, JSON.stringify(body));
      refused(res, "badSignatureAlgorithm", 400);
      expect(res.body.algorithms).toEqual(["RS256", "ES256", "ES384", "EdDSA"]);
    }
    // a supported alg with an empty signature is malformed
    const header = { alg: "ES256", nonce: await c.nonce(), url: c.directory.newOrder, kid: c.kid };
    const body = { protected: b64(JSON.stringify(header)), payload: b64("{}"), signature: "" };
    refused(await c.postRaw(c.directory.newOrder!, JSON.stringify(body)), "malformed", 400);
  });
});

describe("an order lock left by a dead replica", () => {
  test("newOrder answers 429 with a Retry-After that ends the lease, and succeeds then", async () => {
    const c = await account("default", ["lock.example.com"]);
    const accountId = c.kid!.split("/").pop()!;
    // a replica that took the lock with the server's own lease and died without releasing it
    expect(
      await server.storage.locks.tryLock(`acme-orders:${accountId}`, "dead-replica", ORDER_LOCK_LEASE_MS),
    ).toBe(true);
    const res = await c.post(c.directory.newOrder!, ids(["lock.example.com"]));
    refused(res, "rateLimited", 429);
    const retryAfter = Number(res.headers["retry-after"]);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(Math.ceil(ORDER_LOCK_LEASE_MS / 1000));
    // a client that does what Retry-After says gets its order
    await sleep(retryAfter * 1000);
    const again = await c.post(c.directory.newOrder!, ids(["lock.example.com"]));
    expect(again.status, again.text).toBe(201);
  });
});

describe("one EAB key bound twice by the same client (Caddy registering from two sites at once)", () => {
  async function client(profile: string) {
    return new TestAcmeClient(server.directoryUrl(profile), server.agent, await newAccountKey()).init();
  }

  test("a second account key with the same contacts, at once: a second account with the same grants", async () => {
    const eab = await server.acme.eab.create(["twice.example.com"]);
    const [a, b] = [await client("default"), await client("default")];
    const [ra, rb] = await Promise.all([a.register(eab), b.register(eab)]);
    expect([ra.status, rb.status], `${ra.text} ${rb.text}`).toEqual([201, 201]);
    expect(a.kid).not.toBe(b.kid);
    // both may order what the key grants, and only that
    for (const c of [a, b]) {
      expect((await c.post(c.directory.newOrder!, ids(["twice.example.com"]))).status).toBe(201);
      refused(await c.post(c.directory.newOrder!, ids(["other.example.com"])), "rejectedIdentifier");
    }
    // another client (other contacts) holding the same key is refused
    const stranger = await client("default");
    refused(
      await stranger.register(eab, { contact: ["mailto:someone-else@example.com"] }),
      "unauthorized",
      403,
    );
    // the second account is audited with the account it follows (audit writes are asynchronous)
    const accountIds = [a.kid, b.kid].map((k) => k!.split("/").pop());
    let rebindOf: unknown;
    for (let i = 0; i < 40 && rebindOf === undefined; i++) {
      const audit = await server.storage.audit.listAudit({ type: "acme.account.create", limit: 100 });
      rebindOf = audit.find((e) => accountIds.includes(e.actor?.split(":").pop()) && e.data.rebindOf)?.data
        .rebindOf;
      if (rebindOf === undefined) await sleep(50);
    }
    expect(accountIds).toContain(rebindOf);
  });

  test("with eabRebindWindow 0, or after the window, the key is spent", async () => {
    const once = await server.acme.eab.create(["once.example.com"]);
    expect((await (await client("once")).register(once)).status).toBe(201);
    refused(await (await client("once")).register(once), "unauthorized", 403);

    const brief = await server.acme.eab.create(["brief.example.com"]);
    expect((await (await client("brief")).register(brief)).status).toBe(201);
    await sleep(1_100);
    refused(await (await client("brief")).register(brief), "unauthorized", 403);
  });
});
