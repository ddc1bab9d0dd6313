import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Fastify, { type FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";
import { createEabKeys, newHmacKey } from "../../src/acme-server/eab.js";
import { eabKeyRoutes, grantCovers } from "../../src/acme-server/eab-api.js";
import { createApiKeyAuthenticator } from "../../src/auth/api-key.js";
import { acmeEabCreateCommand } from "../../src/cli/acme.js";
import { systemClock } from "../../src/core/clock.js";
import { AuthenticationError } from "../../src/core/errors.js";
import { silentLogger } from "../../src/core/logger.js";
import { createStorage } from "../../src/storage/create-storage.js";
import { openSqlDatabase } from "../../src/storage/dialect.js";
import { loadOrCreateMasterKey } from "../../src/storage/master-key.js";
import { parseStorageUrl } from "../../src/storage/storage-url.js";
import { installErrorHandler } from "../../src/server/error-handler.js";
import { startAcmeTestServer, type AcmeTestServer } from "./harness.js";
import { PROBLEM, TestAcmeClient, newAccountKey } from "./jws-client.js";

let server: AcmeTestServer;
beforeAll(async () => {
  server = await startAcmeTestServer({ profiles: [{ name: "default", mode: "eab" }] });
});
afterAll(async () => server?.stop());

test("HMAC keys are 256-bit base64url and never start with '-' (certbot would read an option)", () => {
  const keys = Array.from({ length: 2000 }, () => newHmacKey());
  for (const key of keys) {
    expect(key).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]{42}$/);
    expect(Buffer.from(key, "base64url")).toHaveLength(32);
  }
  expect(new Set(keys).size).toBe(keys.length);
});

describe("certfleet acme eab create", () => {
  test("prints kid and a base64url HMAC key, stored in the server's database", async () => {
    const dir = await mkdtemp(join(tmpdir(), "certfleet-eab-cli-"));
    try {
      const config = join(dir, "certfleet.yaml");
      await writeFile(config, `dataDir: ${join(dir, "data")}\n`);
      const written: string[] = [];
      const out = vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
        written.push(String(chunk));
        return true;
      });
      let code: number;
      try {
        code = await acmeEabCreateCommand({
          config,
          grant: ["app.example.com", "*.app.example.com"],
          json: true,
        });
      } finally {
        out.mockRestore();
      }
      expect(code).toBe(0);
      const printed = JSON.parse(written.join("")) as { kid: string; hmacKey: string };
      expect(Object.keys(printed).sort()).toEqual(["hmacKey", "kid"]);
      expect(printed.hmacKey).toMatch(/^[A-Za-z0-9_-]{43}$/);

      // the same storage the server opens holds it, with the grants, encrypted at rest
      const encryptionKey = await loadOrCreateMasterKey(join(dir, "data", "master.key"));
      const url = `sqlite:${join(dir, "data", "certfleet.db")}`;
      const storage = createStorage({ url, encryptionKey });
      const db = openSqlDatabase(parseStorageUrl(url), silentLogger()).db;
      const key = await createEabKeys({ kv: storage.kv, clock: systemClock }).get(printed.kid);
      expect(key).toMatchObject({
        hmacKey: printed.hmacKey,
        grants: ["app.example.com", "*.app.example.com"],
      });
      const raw = await db
        .selectFrom("kv")
        .select(["value", "secret"])
        .where("key", "=", printed.kid)
        .executeTakeFirstOrThrow();
      expect(raw.secret).toBe(1);
      expect(raw.value).not.toContain(printed.hmacKey);
      await storage.close();
      await db.destroy();

      const err = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
      try {
        expect(await acmeEabCreateCommand({ config, grant: ["not a name"], json: true })).toBe(2);
      } finally {
        err.mockRestore();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("admin API: POST /api/acme/eab-keys", () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    const auth = createApiKeyAuthenticator({
      keys: [
        { name: "admin", key: "admin-key-0123456789", admin: true },
        { name: "team", key: "team-key-0123456789", grants: [".team.example.com"] },
      ],
      logger: silentLogger(),
    });
    app = Fastify() as unknown as FastifyInstance;
    installErrorHandler(app);
    await app.register(
      eabKeyRoutes({
        acme: server.acme,
        identities: server.storage.identities,
        authenticate: async (req, signal) => {
          const p = await auth.authenticate(req, signal);
          if (!p) throw new AuthenticationError("no credentials");
          return p;
        },
      }),
    );
  });
  afterAll(async () => app?.close());

  const post = (key: string | undefined, payload: unknown) =>
    app.inject({
      method: "POST",
      url: "/api/acme/eab-keys",
      headers: key ? { authorization: `APIKey ${key}` } : {},
      payload: payload as object,
    });

  test("an admin names any grants; others hand on only what they hold", async () => {
    expect((await post(undefined, { grants: ["x.example.com"] })).statusCode).toBe(401);
    const admin = await post("admin-key-0123456789", { grants: ["x.example.com"] });
    expect(admin.statusCode).toBe(201);
    expect(admin.json()).toMatchObject({ kid: expect.stringMatching(/^eab_/), hmacKey: expect.any(String) });

    const refused = await post("team-key-0123456789", { grants: ["x.example.com"] });
    expect(refused.statusCode).toBe(403);
    expect(refused.json().error.code).toBe("domain_not_granted");

    const team = await post("team-key-0123456789", { grants: ["*.a.team.example.com"] });
    expect(team.statusCode).toBe(201);
    // the key works for an ACME account, within those grants only
    const c = await new TestAcmeClient(server.directoryUrl(), server.agent, await newAccountKey()).init();
    expect((await c.register(team.json())).status).toBe(201);
    const ok = await c.post(c.directory.newOrder!, {
      identifiers: [{ type: "dns", value: "b.a.team.example.com" }],
    });
    expect(ok.status).toBe(201);
    const no = await c.post(c.directory.newOrder!, {
      identifiers: [{ type: "dns", value: "b.team.example.com" }],
    });
    expect(no.body.type).toBe(PROBLEM("rejectedIdentifier"));
  });

  test("grant coverage", () => {
    expect(grantCovers("*", ".example.com")).toBe(true);
    expect(grantCovers(".example.com", "*.a.example.com")).toBe(true);
    expect(grantCovers(".example.com", ".a.example.com")).toBe(true);
    expect(grantCovers("*.example.com", ".example.com")).toBe(false);
    expect(grantCovers("*.example.com", "a.b.example.com")).toBe(false);
    expect(grantCovers("a.example.com", "*")).toBe(false);
  });
});

describe("owned EAB keys", () => {
  test("an account stops ordering when the identity that owns its key is disabled", async () => {
    const id = "5f4ad5a4-6f0a-4c0b-9b3f-0c7e2d3f9a10";
    await server.storage.identities.createIdentity({
      id,
      name: "edge-proxy",
      method: "api_key",
      binding: {},
      bindingKey: null,
      grants: ["owned.example.com"],
      enabled: true,
      admin: false,
      secretHash: null,
    });
    const eab = await server.acme.eab.create(["owned.example.com"], id);
    const c = await new TestAcmeClient(server.directoryUrl(), server.agent, await newAccountKey()).init();
    expect((await c.register(eab)).status).toBe(201);
    const ids = { identifiers: [{ type: "dns", value: "owned.example.com" }] };
    expect((await c.post(c.directory.newOrder!, ids)).status).toBe(201);
    await server.storage.identities.updateIdentity(id, { enabled: false });
    const refused = await c.post(c.directory.newOrder!, ids);
    expect(refused.status).toBe(403);
    expect(refused.body.type).toBe(PROBLEM("unauthorized"));
  });
});

describe("revoking an EAB key", () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    const auth = createApiKeyAuthenticator({
      keys: [
        { name: "admin", key: "admin-key-0123456789", admin: true },
        { name: "team", key: "team-key-0123456789", grants: ["*"] },
      ],
      logger: silentLogger(),
    });
    app = Fastify() as unknown as FastifyInstance;
    installErrorHandler(app);
    await app.register(
      eabKeyRoutes({
        acme: server.acme,
        identities: server.storage.identities,
        authenticate: async (req, signal) => {
          const p = await auth.authenticate(req, signal);
          if (!p) throw new AuthenticationError("no credentials");
          return p;
        },
      }),
    );
  });
  afterAll(async () => app?.close());
  const admin = { authorization: "APIKey admin-key-0123456789" };

  /** Every page of the admin list, following `next`, two keys a page. */
  async function allKeys(): Promise<any[]> {
    const keys: any[] = [];
    let cursor: string | null = null;
    do {
      const res: { statusCode: number; json(): any } = await app.inject({
        method: "GET",
        url: `/api/admin/acme/eab-keys?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
        headers: admin,
      });
      expect(res.statusCode).toBe(200);
      keys.push(...res.json().keys);
      cursor = res.json().next;
    } while (cursor);
    return keys;
  }

  test("lists keys with grants, bound account, last use and revoked flag; revoking stops every account of the key", async () => {
    const eab = await server.acme.eab.create(["revoked.example.com"]);
    const unused = await server.acme.eab.create(["unused.example.com"]);
    const first = await new TestAcmeClient(server.directoryUrl(), server.agent, await newAccountKey()).init();
    expect((await first.register(eab)).status).toBe(201);
    // the same client binding the key again with another account key (Caddy does): a second account
    const second = await new TestAcmeClient(
      server.directoryUrl(),
      server.agent,
      await newAccountKey(),
    ).init();
    expect((await second.register(eab)).status).toBe(201);
    const ids = { identifiers: [{ type: "dns", value: "revoked.example.com" }] };
    expect((await first.post(first.directory.newOrder!, ids)).status).toBe(201);
    expect((await second.post(second.directory.newOrder!, ids)).status).toBe(201);

    const listed = await allKeys();
    expect(JSON.stringify(listed)).not.toContain(eab.hmacKey);
    const bound = listed.find((k) => k.kid === eab.kid);
    expect(bound).toMatchObject({
      grants: ["revoked.example.com"],
      ownerId: null,
      revoked: false,
      revokedAt: null,
      account: { id: first.kid!.split("/").at(-1), profile: "default", status: "valid" },
    });
    expect(Date.parse(bound.lastUsedAt)).toBeGreaterThan(Date.now() - 60_000);
    expect(listed.find((k) => k.kid === unused.kid)).toMatchObject({ account: null, lastUsedAt: null });

    // only an admin
    const team = { authorization: "APIKey team-key-0123456789" };
    const forbidden = await app.inject({ method: "GET", url: "/api/admin/acme/eab-keys", headers: team });
    expect(forbidden.statusCode).toBe(403);
    expect(
      (
        await app.inject({
          method: "POST",
          url: `/api/admin/acme/eab-keys/${eab.kid}/revoke`,
          headers: team,
        })
      ).statusCode,
    ).toBe(403);

    const revoked = await app.inject({
      method: "POST",
      url: `/api/admin/acme/eab-keys/${eab.kid}/revoke`,
      headers: admin,
    });
    expect(revoked.statusCode).toBe(200);
    expect(revoked.json()).toMatchObject({ kid: eab.kid, revoked: true });
    const at = revoked.json().revokedAt;
    // idempotent: the first revocation time stays
    const again = await app.inject({
      method: "POST",
      url: `/api/admin/acme/eab-keys/${eab.kid}/revoke`,
      headers: admin,
    });
    expect(again.json()).toMatchObject({ revoked: true, revokedAt: at });
    expect((await allKeys()).find((k) => k.kid === eab.kid)).toMatchObject({ revoked: true, revokedAt: at });

    for (const client of [first, second]) {
      const refused = await client.post(client.directory.newOrder!, ids);
      expect(refused.status).toBe(403);
      expect(refused.body.type).toBe(PROBLEM("unauthorized"));
    }
    // and it binds no new account
    const late = await new TestAcmeClient(server.directoryUrl(), server.agent, await newAccountKey()).init();
    const lateRes = await late.register(eab);
    expect(lateRes.body.type).toBe(PROBLEM("unauthorized"));
    // a key nobody revoked still works
    const other = await new TestAcmeClient(server.directoryUrl(), server.agent, await newAccountKey()).init();
    expect((await other.register(unused)).status).toBe(201);
    const ok = await other.post(other.directory.newOrder!, {
      identifiers: [{ type: "dns", value: "unused.example.com" }],
    });
    expect(ok.status).toBe(201);

    const missing = await app.inject({
      method: "POST",
      url: "/api/admin/acme/eab-keys/eab_nope/revoke",
      headers: admin,
    });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe("eab_key_not_found");
  });

  test("the accounts view lists every account with its key and last order, paged", async () => {
    const res = await app.inject({ method: "GET", url: "/api/admin/acme/accounts?limit=1", headers: admin });
    expect(res.statusCode).toBe(200);
    const page = res.json();
    expect(page.accounts).toHaveLength(1);
    expect(page.next).toEqual(expect.any(String));
    const all: any[] = [];
    let cursor: string | null = null;
    do {
      const r: { json(): any } = await app.inject({
        method: "GET",
        url: `/api/admin/acme/accounts?limit=3${cursor ? `&cursor=${cursor}` : ""}`,
        headers: admin,
      });
      all.push(...r.json().accounts);
      cursor = r.json().next;
    } while (cursor);
    expect(new Set(all.map((a) => a.id)).size).toBe(all.length);
    expect([...all.map((a) => a.id)]).toEqual([...all.map((a) => a.id)].sort());
    const withKey = all.filter((a) => a.eabKid);
    expect(withKey.length).toBeGreaterThan(0);
    expect(withKey.some((a) => a.lastOrderAt !== null)).toBe(true);
    expect(all[0]).toMatchObject({
      profile: "default",
      status: "valid",
      contact: ["mailto:ops@example.com"],
    });
  });
});
