import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClientCredentials, createClientSecretAuthenticator } from "../../src/auth/client-secret.js";
import { createLegacySwitch } from "../../src/auth/legacy-switch.js";
import { systemClock } from "../../src/core/clock.js";
import { silentLogger } from "../../src/core/logger.js";
import type { IdentityRecord, Storage } from "../../src/storage/storage.js";
import { authRequest, createIdentity, expectAuthFailure, openStorage, signal } from "./helpers.js";

const basic = (id: string, secret: string, extra: Record<string, string> = {}) =>
  authRequest({ authorization: "Basic " + Buffer.from(`${id}:${secret}`).toString("base64"), ...extra });

describe("client id / secret authenticator", () => {
  let storage: Storage;
  let record: IdentityRecord;
  let clientId: string;
  let clientSecret: string;
  let authenticator: ReturnType<typeof createClientSecretAuthenticator>;

  beforeAll(async () => {
    storage = await openStorage();
    const credentials = await createClientCredentials();
    ({ clientId, clientSecret } = credentials);
    record = await createIdentity(storage, {
      method: "client_secret",
      binding: { clientId },
      grants: ["app.example.com"],
      secretHash: credentials.secretHash,
    });
    const legacySwitch = createLegacySwitch({
      store: storage.kv,
      clock: systemClock,
      logger: silentLogger(),
      ttlMs: 0,
    });
    authenticator = createClientSecretAuthenticator({
      store: storage.identities,
      legacySwitch,
      logger: silentLogger(),
    });
  });
  afterAll(() => storage.close());

  it("issues cour_ ids and never stores the secret itself", () => {
    expect(clientId).toMatch(/^cour_[0-9a-f]{32}$/);
    expect(record.secretHash).toMatch(/^scrypt\$/);
    expect(record.secretHash).not.toContain(clientSecret);
  });

  it("accepts the right secret, with or without the identity header", async () => {
    expect(await authenticator.authenticate(basic(clientId, clientSecret), signal)).toEqual({
      id: record.id,
      name: record.name,
      method: "client_secret",
      grants: ["app.example.com"],
      admin: false,
    });
    const withHeader = basic(clientId, clientSecret, { "x-certfleet-identity": record.id });
    expect((await authenticator.authenticate(withHeader, signal))?.id).toBe(record.id);
  });

  it("refuses a wrong secret, an unknown id, a mismatched identity header and malformed credentials", async () => {
    await expectAuthFailure(
      authenticator.authenticate(basic(clientId, clientSecret + "x"), signal),
      "client_secret_wrong",
    );
    await expectAuthFailure(
      authenticator.authenticate(basic("cour_doesnotexist00", clientSecret), signal),
      "client_unknown",
    );
    await expectAuthFailure(
      authenticator.authenticate(
        basic(clientId, clientSecret, { "x-certfleet-identity": "00000000-0000-4000-8000-000000000000" }),
        signal,
      ),
      "identity_mismatch",
    );
    await expectAuthFailure(
      authenticator.authenticate(basic("admin", "password"), signal),
      "client_credentials_malformed",
    );
    await expectAuthFailure(
      authenticator.authenticate(authRequest({ authorization: "Basic %%%" }), signal),
      "client_credentials_malformed",
    );
  });

  it("refuses a disabled identity and names the claimed client for the limiter", async () => {
    const other = await createClientCredentials({ params: { N: 1024, r: 8, p: 1 } });
    const disabled = await createIdentity(storage, {
      method: "client_secret",
      binding: { clientId: other.clientId },
      grants: [],
      secretHash: other.secretHash,
      enabled: false,
    });
    expect(disabled.enabled).toBe(false);
    await expectAuthFailure(
      authenticator.authenticate(basic(other.clientId, other.clientSecret), signal),
      "identity_disabled",
    );
    expect(authenticator.claimedIdentity(basic(other.clientId, "x"))).toBe(`client_secret:${other.clientId}`);
  });

  it("leaves other schemes to other authenticators", async () => {
    expect(
      await authenticator.authenticate(authRequest({ authorization: "Bearer x.y.z" }), signal),
    ).toBeUndefined();
  });
});
