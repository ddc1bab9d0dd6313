import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJwtAuthenticator, type JwtAuthenticator } from "../../src/auth/jwt/jwt-authenticator.js";
import { resolveIssuers } from "../../src/auth/jwt/trusted-issuer.js";
import { createManualClock } from "../../src/core/clock.js";
import { ConfigError } from "../../src/core/errors.js";
import { silentLogger } from "../../src/core/logger.js";
import { hmacToken, rawToken, startJwksIssuer, type JwksIssuer } from "../harness/jwks-issuer.js";
import { bearer, expectAuthFailure, signal } from "./helpers.js";

/** The JWT attack suite: every hostile token is a 401 with a stable internal reason, and nothing breaks. */
describe("JWT attack suite", () => {
  let issuer: JwksIssuer;
  let impostor: JwksIssuer;
  let rsaKid: string;
  let authenticator: JwtAuthenticator;
  const now = () => Math.floor(Date.now() / 1000);
  const claims = () => ({
    iss: issuer.issuerUrl,
    sub: "agent-1",
    aud: "certfleet",
    iat: now(),
    exp: now() + 300,
  });

  beforeAll(async () => {
    issuer = await startJwksIssuer({ algs: ["ES256"] });
    rsaKid = await issuer.addKey("RS256", "rsa-key");
    impostor = await startJwksIssuer({ algs: [] });
    await impostor.addKey("RS256", "rsa-key"); // same kid, different key material
    authenticator = createJwtAuthenticator({
      issuers: [{ issuerUrl: issuer.issuerUrl, audience: "certfleet", jwksCooldownSeconds: 30 }],
      fetch,
      clock: createManualClock(new Date()),
      logger: silentLogger(),
    });
  });
  afterAll(async () => {
    await issuer?.close();
    await impostor?.close();
  });

  const reject = (token: string, reason: string) =>
    expectAuthFailure(authenticator.authenticate(bearer(token), signal), reason);

  it("accepts a well-formed token (control)", async () => {
    const principal = await authenticator.authenticate(
      bearer(await issuer.sign({ sub: "agent-1", aud: "certfleet" })),
      signal,
    );
    expect(principal).toMatchObject({ id: `jwt:${issuer.issuerUrl}#agent-1`, method: "jwt", grants: [] });
    expect(
      await authenticator.authenticate(
        bearer(await issuer.sign({ sub: "agent-1", aud: "certfleet" }, { kid: rsaKid })),
        signal,
      ),
    ).toBeDefined();
  });

  it('alg "none"', async () => {
    await reject(rawToken({ alg: "none", typ: "JWT" }, claims()), "jwt_alg_not_allowed");
    await reject(rawToken({ alg: "NONE", typ: "JWT" }, claims()), "jwt_alg_not_allowed");
  });

  it("HS256 signed with the issuer's RSA public key", async () => {
    const pem = issuer.publicKeyPem(rsaKid);
    await reject(hmacToken({ alg: "HS256", kid: rsaKid, typ: "JWT" }, claims(), pem), "jwt_alg_not_allowed");
  });

  it("stripped or forged signature", async () => {
    const token = await issuer.sign({ sub: "agent-1", aud: "certfleet" });
    await reject(token.slice(0, token.lastIndexOf(".") + 1), "jwt_signature_missing");
    const [h, , s] = token.split(".");
    const forgedPayload = Buffer.from(JSON.stringify({ ...claims(), sub: "admin" })).toString("base64url");
    await reject(`${h}.${forgedPayload}.${s}`, "jwt_signature_invalid");
  });

  it("wrong or untrusted issuer", async () => {
    await reject(
      await issuer.sign({ iss: "https://evil.example", sub: "agent-1", aud: "certfleet" }),
      "jwt_issuer_untrusted",
    );
    await reject(rawToken({ alg: "ES256" }, { sub: "x", aud: "certfleet" }, "c2ln"), "jwt_issuer_untrusted");
    // Another issuer's key claiming the trusted iss, even with a kid that exists in the trusted set.
    await reject(
      await impostor.sign({ iss: issuer.issuerUrl, sub: "agent-1", aud: "certfleet" }, { kid: "rsa-key" }),
      "jwt_signature_invalid",
    );
  });

  it("kid injection", async () => {
    const before = issuer.hits.jwks;
    for (const kid of [
      "../../../../etc/passwd",
      "' OR '1'='1' --",
      "key-1-es256\u0000",
      "%00",
      "http://evil/jwks",
    ]) {
      const token = await issuer.sign({ sub: "agent-1", aud: "certfleet" }, { header: { kid } });
      await reject(token, /^[\x20-\x7e]+$/.test(kid) ? "jwt_key_unknown" : "jwt_kid_invalid");
    }
    await reject(
      await issuer.sign({ sub: "agent-1", aud: "certfleet" }, { header: { kid: "k".repeat(2000) } }),
      "jwt_kid_invalid",
    );
    await reject(
      await issuer.sign({ sub: "agent-1", aud: "certfleet" }, { header: { kid: 42 } }),
      "jwt_kid_invalid",
    );
    // Unknown kids refetch the key set at most once per cooldown.
    expect(issuer.hits.jwks - before).toBeLessThanOrEqual(1);
  });

  it("key references in the header (jku, jwk, x5u) are refused, never followed", async () => {
    await reject(
      await issuer.sign({ sub: "a", aud: "certfleet" }, { header: { jku: "http://127.0.0.1:1/jwks" } }),
      "jwt_header_key_reference",
    );
    await reject(
      await issuer.sign({ sub: "a", aud: "certfleet" }, { header: { x5u: "http://127.0.0.1:1/cert" } }),
      "jwt_header_key_reference",
    );
  });

  it("oversized token", async () => {
    await reject(
      await issuer.sign({ sub: "agent-1", aud: "certfleet", padding: "x".repeat(9000) }),
      "jwt_too_large",
    );
    await reject("a".repeat(100_000), "jwt_too_large");
  });

  it("malformed base64 and JSON", async () => {
    await reject("eyJhbGciOiJFUzI1NiJ9.%%%%.c2ln", "jwt_malformed");
    await reject("not-a-jwt", "jwt_malformed");
    await reject("a.b.c.d.e", "jwt_malformed");
    await reject(
      `${Buffer.from("{not json").toString("base64url")}.${Buffer.from("{}").toString("base64url")}.c2ln`,
      "jwt_malformed",
    );
    await reject(`eyJhbGciOiJFUzI1NiJ9.${Buffer.from("[1,2]").toString("base64url")}.c2ln`, "jwt_malformed");
  });

  it("nbf in the future, missing exp, expired", async () => {
    await reject(
      await issuer.sign({ sub: "agent-1", aud: "certfleet", nbf: now() + 120 }),
      "jwt_not_yet_valid",
    );
    await reject(
      await issuer.sign({ sub: "agent-1", aud: "certfleet", exp: undefined }),
      "jwt_claim_missing",
    );
    await reject(await issuer.sign({ sub: "agent-1", aud: "certfleet", exp: now() - 60 }), "jwt_expired");
    await reject(await issuer.sign({ sub: "agent-1", aud: "someone-else" }), "jwt_audience_mismatch");
  });

  it("a discovery document naming another issuer is refused", async () => {
    const spoofed = await startJwksIssuer();
    try {
      spoofed.setDiscoveryIssuer("https://login.example.com/");
      const victim = createJwtAuthenticator({
        issuers: [{ issuerUrl: spoofed.issuerUrl, audience: "certfleet" }],
        fetch,
        clock: createManualClock(new Date()),
        logger: silentLogger(),
      });
      const token = await spoofed.sign({ sub: "agent-1", aud: "certfleet" });
      await expectAuthFailure(victim.authenticate(bearer(token), signal), "jwt_discovery_issuer_mismatch");
      await expectAuthFailure(victim.authenticate(bearer(token), signal), "jwt_discovery_issuer_mismatch");
      expect(spoofed.hits.jwks).toBe(0);
    } finally {
      await spoofed.close();
    }
  });

  it("still accepts good tokens after the whole suite", async () => {
    expect(
      await authenticator.authenticate(
        bearer(await issuer.sign({ sub: "agent-1", aud: "certfleet" })),
        signal,
      ),
    ).toBeDefined();
  });

  it("refuses none, HMAC and unknown algorithms at configuration time", () => {
    for (const algorithms of [["none"], ["HS256"], ["RS256", "hs512"], ["XYZ"], []]) {
      expect(() => resolveIssuers([{ issuerUrl: "https://idp.example", audience: "a", algorithms }])).toThrow(
        ConfigError,
      );
    }
    expect(() => resolveIssuers([{ issuerUrl: "https://idp.example", audience: [] }])).toThrow(ConfigError);
    expect(resolveIssuers([{ issuerUrl: "https://idp.example", audience: "a" }])[0]?.algorithms).toEqual([
      "RS256",
      "ES256",
      "PS256",
      "EdDSA",
    ]);
  });
});
