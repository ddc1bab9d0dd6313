import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startAcmeTestServer, httpGet, type AcmeTestServer } from "./harness.js";
import { PROBLEM, TestAcmeClient, newAccountKey } from "./jws-client.js";

let server: AcmeTestServer;

beforeAll(async () => {
  server = await startAcmeTestServer({
    profiles: [
      { name: "default", mode: "eab" },
      { name: "open", mode: "challenge", allowPrivateAddresses: true },
    ],
  });
});
afterAll(async () => server?.stop());

const client = async (profile?: string, alg?: "ES256" | "ES384" | "RS256" | "EdDSA") =>
  new TestAcmeClient(server.directoryUrl(profile), server.agent, await newAccountKey(alg)).init();

describe("directory and nonces", () => {
  test("per-profile directory lists the resources, renewalInfo and meta", async () => {
    const res = await httpGet(server, server.directoryUrl("default"));
    expect(res.status).toBe(200);
    const dir = res.json();
    const base = `${server.baseUrl}/acme/default`;
    expect(dir).toMatchObject({
      newNonce: `${base}/new-nonce`,
      newAccount: `${base}/new-account`,
      newOrder: `${base}/new-order`,
      revokeCert: `${base}/revoke-cert`,
      keyChange: `${base}/key-change`,
      renewalInfo: `${base}/renewal-info`,
      meta: { externalAccountRequired: true, profiles: { default: expect.any(String) } },
    });
    expect(res.headers["replay-nonce"]).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    const open = (await httpGet(server, server.directoryUrl("open"))).json();
    expect(open.meta).toMatchObject({ externalAccountRequired: false });
    // the default alias serves the "default" profile's directory
    expect((await httpGet(server, server.directoryUrl())).json()).toEqual(dir);
  });

  test("HEAD newNonce is 200, GET is 204, each with a fresh nonce and the index link", async () => {
    const c = await client();
    const head = await c.get(c.directory.newNonce!, "HEAD");
    const get = await c.get(c.directory.newNonce!);
    expect(head.status).toBe(200);
    expect(get.status).toBe(204);
    expect(head.nonce).toBeDefined();
    expect(get.nonce).not.toBe(head.nonce);
    expect(head.headers["cache-control"]).toBe("no-store");
    expect(String(head.headers.link)).toContain(`<${server.directoryUrl("default")}>;rel="index"`);
  });

  test("an unknown ACME path is a problem document with a nonce, not the REST error shape", async () => {
    const res = await httpGet(server, `${server.baseUrl}/acme/default/nope`);
    expect(res.status).toBe(404);
    expect(res.headers["content-type"]).toContain("application/problem+json");
    expect(res.json().type).toBe(PROBLEM("malformed"));
    expect(res.headers["replay-nonce"]).toBeDefined();
  });

  test("GET on a POST-as-GET resource is 405", async () => {
    const res = await httpGet(server, `${server.baseUrl}/acme/default/new-order`);
    expect(res.status).toBe(405);
    expect(res.json().type).toBe(PROBLEM("malformed"));
  });
});

describe("accounts", () => {
  test("eab profile: no binding is externalAccountRequired; a binding creates the account; same key returns it", async () => {
    const c = await client();
    const refused = await c.register();
    expect(refused.status).toBe(400);
    expect(refused.body.type).toBe(PROBLEM("externalAccountRequired"));
    expect(refused.nonce).toBeDefined();

    const eab = await server.acme.eab.create(["*.example.com"]);
    const created = await c.register(eab);
    expect(created.status).toBe(201);
    expect(created.location).toMatch(new RegExp(`^${server.baseUrl}/acme/default/account/`));
    expect(created.body).toMatchObject({ status: "valid", contact: ["mailto:ops@example.com"] });

    const again = await c.register(eab);
    expect(again.status).toBe(200);
    expect(again.location).toBe(created.location);

    // the same EAB key cannot bind another client's account (the same client's rebind within
    // eabRebindWindow is covered in hostile.test.ts)
    const other = await client();
    const reused = await other.register(eab, { contact: ["mailto:another-team@example.com"] });
    expect(reused.status).toBe(403);
    expect(reused.body.type).toBe(PROBLEM("unauthorized"));
  });

  test("a binding signed with the wrong HMAC key, or for another URL, is unauthorized", async () => {
    const eab = await server.acme.eab.create(["a.example.com"]);
    const c = await client();
    const wrongKey = await c.register({ kid: eab.kid, hmacKey: Buffer.alloc(32, 1).toString("base64url") });
    expect(wrongKey.body.type).toBe(PROBLEM("unauthorized"));
    const unknownKid = await c.register({ kid: "eab_unknown", hmacKey: eab.hmacKey });
    expect(unknownKid.body.type).toBe(PROBLEM("unauthorized"));
  });

  test("onlyReturnExisting never creates an account", async () => {
    const c = await client("open");
    const res = await c.post(c.directory.newAccount!, { onlyReturnExisting: true }, { useJwk: true });
    expect(res.status).toBe(400);
    expect(res.body.type).toBe(PROBLEM("accountDoesNotExist"));
    await c.register();
    const found = await c.post(c.directory.newAccount!, { onlyReturnExisting: true }, { useJwk: true });
    expect(found.status).toBe(200);
    expect(found.location).toBe(c.kid);
  });

  test("contact update, bad contacts, and deactivation", async () => {
    for (const alg of ["ES384", "RS256", "EdDSA"] as const) {
      const c = await client("open", alg);
      expect((await c.register()).status).toBe(201);
    }
    const c = await client("open");
    await c.register();
    const updated = await c.post(c.kid!, { contact: ["mailto:new@example.com"] });
    expect(updated.status).toBe(200);
    expect(updated.body.contact).toEqual(["mailto:new@example.com"]);
    const bad = await c.post(c.kid!, { contact: ["tel:+1555"] });
    expect(bad.body.type).toBe(PROBLEM("unsupportedContact"));
    const invalid = await c.post(c.kid!, { contact: ["mailto:a@b.example,c@d.example"] });
    expect(invalid.body.type).toBe(PROBLEM("invalidContact"));

    const read = await c.post(c.kid!, "");
    expect(read.body).toMatchObject({ status: "valid", orders: `${c.kid}/orders` });

    const deactivated = await c.post(c.kid!, { status: "deactivated" });
    expect(deactivated.body.status).toBe("deactivated");
    const after = await c.post(c.directory.newOrder!, {
      identifiers: [{ type: "dns", value: "x.example.com" }],
    });
    expect(after.status).toBe(403);
    expect(after.body.type).toBe(PROBLEM("unauthorized"));
  });
});
