import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApiKeyAuthenticator } from "../../src/auth/api-key.js";
import { failureReason } from "../../src/auth/auth-failure.js";
import { createAuthenticate } from "../../src/auth/chain.js";
import { createClientCredentials, createClientSecretAuthenticator } from "../../src/auth/client-secret.js";
import { createFailureLimiter } from "../../src/auth/failure-limiter.js";
import { createJwtAuthenticator } from "../../src/auth/jwt/jwt-authenticator.js";
import { createLegacySwitch } from "../../src/auth/legacy-switch.js";
import { createManualClock } from "../../src/core/clock.js";
import type { CertfleetError, RateLimitedError } from "../../src/core/errors.js";
import { silentLogger } from "../../src/core/logger.js";
import type { Storage } from "../../src/storage/storage.js";
import { base64url, startJwksIssuer, type JwksIssuer } from "../harness/jwks-issuer.js";
import {
  authRequest,
  createIdentity,
  expectAuthFailure,
  expectCode,
  openStorage,
  signal,
} from "./helpers.js";

const KEY = "chain-key-0123456789abcdef0123";

describe("authentication chain", () => {
  let storage: Storage;
  const clock = createManualClock(new Date("2026-04-01T00:00:00Z"));
  let authenticate: ReturnType<typeof createAuthenticate>;
  let client: { clientId: string; clientSecret: string };

  beforeAll(async () => {
    storage = await openStorage();
    const logger = silentLogger();
    const credentials = await createClientCredentials({ params: { N: 1024, r: 8, p: 1 } });
    client = credentials;
    await createIdentity(storage, {
      method: "client_secret",
      binding: { clientId: credentials.clientId },
      grants: ["a.test"],
      secretHash: credentials.secretHash,
    });
    const legacySwitch = createLegacySwitch({ store: storage.kv, clock, logger });
    authenticate = createAuthenticate(
      [
        createApiKeyAuthenticator({ keys: [{ name: "web", key: KEY, grants: ["web.test"] }], logger }),
        createClientSecretAuthenticator({ store: storage.identities, legacySwitch, logger }),
        // An issuer nobody listens for: its key set can never be fetched.
        createJwtAuthenticator({
          issuers: [{ issuerUrl: "http://127.0.0.1:9/", audience: "certfleet", fetchTimeoutMs: 500 }],
          fetch,
          clock,
          logger,
        }),
      ],
      {
        limiter: createFailureLimiter({ clock, maxFailures: 3, windowMs: 60_000 }),
        audit: (e) => storage.audit.appendAudit(e),
        logger,
      },
    );
  });
  afterAll(() => storage.close());

  const apiKey = (key: string, remoteAddress: string) =>
    authRequest({ authorization: `APIKey ${key}` }, { remoteAddress });
  const basic = (secret: string, remoteAddress: string) =>
    authRequest(
      { authorization: "Basic " + Buffer.from(`${client.clientId}:${secret}`).toString("base64") },
      { remoteAddress },
    );

  it("returns the principal and audits auth.allow", async () => {
    const principal = await authenticate(apiKey(KEY, "10.0.0.1"), signal);
    expect(principal.id).toBe("apikey:web");
    const [event] = await storage.audit.listAudit({ limit: 1, type: "auth.allow" });
    expect(event).toMatchObject({
      type: "auth.allow",
      outcome: "allow",
      method: "api_key",
      actor: "apikey:web",
      remoteAddress: "10.0.0.1",
    });
  });

  it("throws a generic 401 and audits the internal reason", async () => {
    await expectAuthFailure(
      authenticate(apiKey("wrong-key-0123456789", "10.0.0.2"), signal),
      "api_key_unknown",
    );
    const [event] = await storage.audit.listAudit({ limit: 1, type: "auth.deny" });
    expect(event).toMatchObject({
      outcome: "deny",
      method: "api_key",
      reason: "api_key_unknown",
      remoteAddress: "10.0.0.2",
    });
  });

  it("rate-limits a source address after repeated failures, even for a valid key", async () => {
    for (let i = 0; i < 2; i++)
      await expectAuthFailure(
        authenticate(apiKey("wrong-key-0123456789", "10.0.0.2"), signal),
        "api_key_unknown",
      );
    const error = await expectCode(authenticate(apiKey(KEY, "10.0.0.2"), signal), "auth_rate_limited");
    expect((error as RateLimitedError).status).toBe(429);
    expect((error as RateLimitedError).retryAfter).toBeGreaterThan(0);
    expect((await authenticate(apiKey(KEY, "10.0.0.3"), signal)).id).toBe("apikey:web");
    clock.advance(61_000);
    expect((await authenticate(apiKey(KEY, "10.0.0.2"), signal)).id).toBe("apikey:web");
  });

  it("rate-limits one identity across addresses, before its secret is checked", async () => {
    for (let i = 0; i < 3; i++)
      await expectAuthFailure(
        authenticate(basic("wrong-secret", `10.1.0.${i}`), signal),
        "client_secret_wrong",
      );
    await expectCode(authenticate(basic(client.clientSecret, "10.1.0.99"), signal), "auth_rate_limited");
    const [event] = await storage.audit.listAudit({ limit: 1, type: "auth.deny" });
    expect(event?.reason).toMatch(/^rate_limited/);
    clock.advance(61_000);
    expect((await authenticate(basic(client.clientSecret, "10.1.0.99"), signal)).method).toBe(
      "client_secret",
    );
  });

  it("does not count requests without credentials", async () => {
    for (let i = 0; i < 5; i++)
      await expectAuthFailure(
        authenticate(authRequest({}, { remoteAddress: "10.2.0.1" }), signal),
        "no_credentials",
      );
    expect((await authenticate(apiKey(KEY, "10.2.0.1"), signal)).id).toBe("apikey:web");
  });

  it("reports an unreachable identity provider as 503, not as a bad credential", async () => {
    const token = `${base64url({ alg: "ES256", kid: "k" })}.${base64url({ iss: "http://127.0.0.1:9/", sub: "x" })}.c2ln`;
    const error = await expectCode(
      authenticate(authRequest({ authorization: `Bearer ${token}` }), signal),
      "identity_provider_unavailable",
    );
    expect((error as { status: number }).status).toBe(503);
  });
});

describe("authentication chain: what counts as a guess, and what the 401 says", () => {
  let storage: Storage;
  let issuer: JwksIssuer;
  let authenticate: ReturnType<typeof createAuthenticate>;
  let identityId: string;
  const clock = createManualClock(new Date());

  beforeAll(async () => {
    storage = await openStorage();
    issuer = await startJwksIssuer();
    const logger = silentLogger();
    identityId = (
      await createIdentity(storage, {
        method: "jwt",
        binding: { issuer: issuer.issuerUrl, subject: "bot" },
        grants: ["a.test"],
      })
    ).id;
    authenticate = createAuthenticate(
      [
        createApiKeyAuthenticator({ keys: [{ name: "web", key: KEY, grants: ["web.test"] }], logger }),
        createJwtAuthenticator({
          issuers: [{ issuerUrl: issuer.issuerUrl, audience: "certfleet", clockToleranceSeconds: 0 }],
          fetch,
          clock,
          logger,
          store: storage.identities,
        }),
      ],
      {
        limiter: createFailureLimiter({ clock, maxFailures: 3, windowMs: 60_000 }),
        audit: async () => {},
        logger,
      },
    );
  });
  afterAll(async () => {
    await issuer.close();
    await storage.close();
  });

  const token = (claims: Record<string, unknown>) =>
    issuer.sign({ sub: "bot", aud: "certfleet", ...claims }, { now: clock.now() });

  it("a well-signed expired token is token_expired (a fresh token may help) and never blocks the address", async () => {
    const expired = await token({ exp: Math.floor(clock.now().getTime() / 1000) - 60 });
    for (let i = 0; i < 12; i++) {
      const error = (await expectCode(
        authenticate(bearer(expired, "10.9.0.1"), signal),
        "token_expired",
      )) as CertfleetError;
      expect(error.status).toBe(401);
      expect(error.details).toEqual({ freshCredentialMayHelp: true });
      expect(failureReason(error)).toBe("jwt_expired");
    }
    // twelve expiries later the address still gets in, with a fresh token and with an API key
    expect((await authenticate(bearer(await token({}), "10.9.0.1"), signal)).id).toBe(identityId);
    expect((await authenticate(apiKeyFrom("10.9.0.1"), signal)).id).toBe("apikey:web");
  });

  it("a valid token for another identity than the request names is identity_mismatch: no retry helps", async () => {
    const request = authRequest(
      {
        authorization: `Bearer ${await token({})}`,
        "x-certfleet-identity": "00000000-0000-4000-8000-000000000000",
      },
      { remoteAddress: "10.9.0.2" },
    );
    for (let i = 0; i < 5; i++) {
      const error = (await expectCode(authenticate(request, signal), "identity_mismatch")) as CertfleetError;
      expect(error.details).toEqual({ freshCredentialMayHelp: false });
    }
    expect((await authenticate(apiKeyFrom("10.9.0.2"), signal)).id).toBe("apikey:web");
  });

  it("guesses still count: a bad signature or an unknown key blocks the address after the limit", async () => {
    const good = await token({});
    const [h, p] = good.split(".");
    const forged = `${h}.${p}.${Buffer.alloc(64, 1).toString("base64url")}`;
    const error = (await expectCode(
      authenticate(bearer(forged, "10.9.0.3"), signal),
      "unauthenticated",
    )) as CertfleetError;
    expect(error.details).toEqual({ freshCredentialMayHelp: true });
    await expectCode(authenticate(apiKeyFrom("10.9.0.3", "wrong-key-0123456789"), signal), "unauthenticated");
    await expectCode(authenticate(bearer(forged, "10.9.0.3"), signal), "unauthenticated");
    await expectCode(authenticate(apiKeyFrom("10.9.0.3"), signal), "auth_rate_limited");
  });

  function bearer(value: string, remoteAddress: string) {
    return authRequest({ authorization: `Bearer ${value}` }, { remoteAddress });
  }
  function apiKeyFrom(remoteAddress: string, key = KEY) {
    return authRequest({ authorization: `APIKey ${key}` }, { remoteAddress });
  }
});
