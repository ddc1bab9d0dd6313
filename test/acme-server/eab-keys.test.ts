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
