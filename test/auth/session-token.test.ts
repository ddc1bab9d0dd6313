import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Principal } from "../../src/auth/authenticator.js";
import { createLegacySwitch, writeLegacySettings } from "../../src/auth/legacy-switch.js";
import { createSessionTokens } from "../../src/auth/session-token.js";
import { createManualClock } from "../../src/core/clock.js";
import { silentLogger } from "../../src/core/logger.js";
import type { IdentityRecord, Storage } from "../../src/storage/storage.js";
import { startJwksIssuer } from "../harness/jwks-issuer.js";
import { bearer, createIdentity, expectAuthFailure, openStorage, signal } from "./helpers.js";

describe("session tokens", () => {
  let storage: Storage;
  let record: IdentityRecord;
  const clock = createManualClock(new Date());
  const replica = () =>
    createSessionTokens({
      store: storage.kv,
      identities: storage.identities,
      legacySwitch: createLegacySwitch({ store: storage.kv, clock, logger: silentLogger(), ttlMs: 0 }),
      clock,
      logger: silentLogger(),
      ttlSeconds: 600,
    });
  let sessions: ReturnType<typeof createSessionTokens>;

  beforeAll(async () => {
    storage = await openStorage();
    record = await createIdentity(storage, {
      method: "client_secret",
      binding: { clientId: "cour_sessiontest01" },
      grants: ["s.example.com"],
    });
    sessions = replica();
  });
  afterAll(() => storage.close());

  const recordPrincipal = (): Principal => ({
    id: record.id,
    name: record.name,
    method: "client_secret",
    grants: record.grants,
    admin: false,
  });

  it("round-trips a principal, and another replica sharing the storage verifies it", async () => {
    const { token, expiresAt } = await sessions.issue(recordPrincipal(), signal);
    expect(expiresAt.getTime() - clock.now().getTime()).toBeLessThanOrEqual(600_000);
    expect(await sessions.authenticator.authenticate(bearer(token), signal)).toEqual(recordPrincipal());
    expect(await replica().authenticator.authenticate(bearer(token), signal)).toEqual(recordPrincipal());
  });

  it("re-reads the identity record: grants change and disabling take effect at once", async () => {
    const { token } = await sessions.issue(recordPrincipal(), signal);
    await storage.identities.updateIdentity(record.id, { grants: ["t.example.com"] });
    expect((await sessions.authenticator.authenticate(bearer(token), signal))?.grants).toEqual([
      "t.example.com",
    ]);
    await storage.identities.updateIdentity(record.id, { enabled: false });
    await expectAuthFailure(sessions.authenticator.authenticate(bearer(token), signal), "identity_disabled");
    await storage.identities.updateIdentity(record.id, { enabled: true, grants: ["s.example.com"] });
  });

  it("dies with its legacy method when the organisation disables it", async () => {
    const { token } = await sessions.issue(recordPrincipal(), signal);
    await writeLegacySettings(storage.kv, { client_secret: false }, signal);
    await expectAuthFailure(
      sessions.authenticator.authenticate(bearer(token), signal),
      "legacy_method_disabled",
    );
    await writeLegacySettings(storage.kv, true, signal);
  });

  it("keeps a snapshot for principals without a record (API keys), until it expires", async () => {
    const apiKey: Principal = {
      id: "apikey:ops",
      name: "ops",
      method: "api_key",
      grants: "all",
      admin: true,
    };
    const { token } = await sessions.issue(apiKey, signal);
    expect(await sessions.authenticator.authenticate(bearer(token), signal)).toEqual(apiKey);
    clock.advance(606_000);
    await expectAuthFailure(sessions.authenticator.authenticate(bearer(token), signal), "session_expired");
    clock.set(new Date());
  });

  it("refuses tampered tokens and leaves third-party bearer tokens to the JWT authenticator", async () => {
    const { token } = await sessions.issue(recordPrincipal(), signal);
    const [h, p, s] = token.split(".");
    const payload = JSON.parse(Buffer.from(p!, "base64url").toString()) as Record<string, unknown>;
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...payload, rec: false, grants: "all", admin: true })).toString("base64url")}.${s}`;
    await expectAuthFailure(sessions.authenticator.authenticate(bearer(forged), signal), "session_invalid");

    const issuer = await startJwksIssuer();
    try {
      const foreign = await issuer.sign({ sub: "x", aud: "urn:certfleet:api" }, { header: { typ: "JWT" } });
      expect(await sessions.authenticator.authenticate(bearer(foreign), signal)).toBeUndefined();
      // Someone else's key cannot mint a session token either.
      const mimic = await issuer.sign(
        { iss: "urn:certfleet:session", sub: record.id, aud: "urn:certfleet:api", rec: true, amr: ["jwt"] },
        { header: { typ: "certfleet-session+jwt" } },
      );
      await expectAuthFailure(sessions.authenticator.authenticate(bearer(mimic), signal), "session_invalid");
    } finally {
      await issuer.close();
    }
  });
});
