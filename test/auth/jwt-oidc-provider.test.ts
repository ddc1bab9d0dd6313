import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { authorizeNames } from "../../src/auth/grants.js";
import { createJwtAuthenticator } from "../../src/auth/jwt/jwt-authenticator.js";
import { createManualClock } from "../../src/core/clock.js";
import { silentLogger } from "../../src/core/logger.js";
import type { IdentityRecord, Storage } from "../../src/storage/storage.js";
import { startOidcProvider, type OidcProviderHarness } from "../harness/oidc-provider.js";
import { bearer, createIdentity, expectAuthFailure, openStorage, signal } from "./helpers.js";

/** Against a real OpenID Connect provider (oidc-provider v9, client-credentials grant, JWT access tokens). */
describe("JWT authenticator with a real OIDC provider", () => {
  let provider: OidcProviderHarness;
  let storage: Storage;
  let record: IdentityRecord;

  beforeAll(async () => {
    provider = await startOidcProvider({ accessTokenTTL: 300 });
    storage = await openStorage();
    record = await createIdentity(storage, {
      method: "jwt",
      binding: { issuer: provider.issuer, subject: provider.clientId },
      grants: ["app.example.com", "*.app.example.com"],
    });
  });
  afterAll(async () => {
    await provider?.close();
    await storage?.close();
  });

  const setup = () => {
    const clock = createManualClock(new Date());
    const authenticator = createJwtAuthenticator({
      issuers: [
        {
          issuerUrl: provider.issuer,
          audience: provider.resource,
          requiredScopes: ["certificates:request"],
          jwksCacheMaxAgeSeconds: 60,
          jwksCooldownSeconds: 5,
        },
      ],
      fetch,
      clock,
      logger: silentLogger(),
      store: storage.identities,
    });
    return { clock, authenticator };
  };

  it("accepts a client-credentials token and grants exactly the identity record's names", async () => {
    const { authenticator } = setup();
    const token = await provider.getToken({ scope: "certificates:request" });
    const principal = await authenticator.authenticate(bearer(token), signal);
    expect(principal).toMatchObject({
      id: record.id,
      method: "jwt",
      grants: ["app.example.com", "*.app.example.com"],
    });
    expect(() => authorizeNames(principal!, ["app.example.com", "www.app.example.com"])).not.toThrow();
    expect(() => authorizeNames(principal!, ["other.example.com"])).toThrow(
      expect.objectContaining({ code: "domain_not_granted", status: 403 }),
    );
  });

  it("refuses a token issued for another audience", async () => {
    const { authenticator } = setup();
    const token = await provider.getToken({
      resource: provider.otherResource,
      scope: "certificates:request",
    });
    await expectAuthFailure(authenticator.authenticate(bearer(token), signal), "jwt_audience_mismatch");
  });

  it("refuses a token without the required scope", async () => {
    const { authenticator } = setup();
    const token = await provider.getToken({ scope: "certificates:read" });
    await expectAuthFailure(authenticator.authenticate(bearer(token), signal), "jwt_scope_missing");
  });

  it("refuses an expired token (beyond the clock tolerance)", async () => {
    const { authenticator, clock } = setup();
    const token = await provider.getToken({ scope: "certificates:request" });
    clock.advance((300 + 20) * 1000); // expired, but within the 30 s tolerance
    expect(await authenticator.authenticate(bearer(token), signal)).toBeDefined();
    clock.advance(15_000);
    await expectAuthFailure(authenticator.authenticate(bearer(token), signal), "jwt_expired");
  });

  it("follows a key rotation: new kid accepted after a refetch; old key removed → old tokens refused", async () => {
    const { authenticator, clock } = setup();
    const oldToken = await provider.getToken({ scope: "certificates:request" });
    expect(await authenticator.authenticate(bearer(oldToken), signal)).toBeDefined();

    await provider.rotateKeys();
    const newToken = await provider.getToken({ scope: "certificates:request" });
    // Within the refetch cooldown an unknown kid is refused without another fetch…
    await expectAuthFailure(authenticator.authenticate(bearer(newToken), signal), "jwt_key_unknown");
    // …after it, the unknown kid triggers a refetch and is accepted.
    clock.advance(6_000);
    expect(await authenticator.authenticate(bearer(newToken), signal)).toBeDefined();
    expect(await authenticator.authenticate(bearer(oldToken), signal)).toBeDefined();

    await provider.dropOldKeys();
    clock.advance(61_000); // the cached set ages out and is fetched again
    await expectAuthFailure(authenticator.authenticate(bearer(oldToken), signal), "jwt_key_unknown");
    expect(await authenticator.authenticate(bearer(newToken), signal)).toBeDefined();
  });
});
