import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJwtAuthenticator } from "../../src/auth/jwt/jwt-authenticator.js";
import { createManualClock } from "../../src/core/clock.js";
import { silentLogger } from "../../src/core/logger.js";
import { startJwksIssuer, type JwksIssuer } from "../harness/jwks-issuer.js";
import { bearer, expectAuthFailure, signal } from "./helpers.js";

/** Verified tokens are remembered by hash: never past `exp`, at most 5 minutes, never for another token. */
describe("JWT verified-token cache", () => {
  let issuer: JwksIssuer;
  const start = new Date();
  const clock = createManualClock(start);
  const now = () => Math.floor(clock.now().getTime() / 1000);

  beforeAll(async () => {
    issuer = await startJwksIssuer({ algs: [] });
  });
  afterAll(async () => {
    await issuer?.close();
  });

  const authenticator = () =>
    createJwtAuthenticator({
      issuers: [{ issuerUrl: issuer.issuerUrl, audience: "certfleet", jwksCooldownSeconds: 1 }],
      fetch,
      clock,
      logger: silentLogger(),
    });

  it("skips the signature check for a token it verified, for at most 5 minutes", async () => {
    const auth = authenticator();
    const oldKid = await issuer.addKey("ES256", "old");
    const token = await issuer.sign({ sub: "agent-1", aud: "certfleet", exp: now() + 3600 }, { kid: oldKid });
    expect(await auth.authenticate(bearer(token), signal)).toMatchObject({ name: "agent-1" });

    // rotate: the old key leaves the set, and a token with the new kid makes the server refetch it
    issuer.removeKey(oldKid);
    const newKid = await issuer.addKey("ES256", "new");
    clock.advance(2000);
    const fresh = await issuer.sign({ sub: "agent-2", aud: "certfleet", exp: now() + 3600 }, { kid: newKid });
    expect(await auth.authenticate(bearer(fresh), signal)).toMatchObject({ name: "agent-2" });
    const jwksFetches = issuer.hits.jwks;

    // the remembered token still passes without its key (it was verified), a stranger's copy does not
    expect(await auth.authenticate(bearer(token), signal)).toMatchObject({ name: "agent-1" });
    expect(issuer.hits.jwks).toBe(jwksFetches);
    await expectAuthFailure(authenticator().authenticate(bearer(token), signal), "jwt_key_unknown");

    // past the cache's 5-minute bound the token is verified again, and its key is gone
    clock.advance(5 * 60_000);
    await expectAuthFailure(auth.authenticate(bearer(token), signal), "jwt_key_unknown");
  });

  it("never remembers a token past its exp, nor a token that differs by one byte", async () => {
    const auth = authenticator();
    const kid = await issuer.addKey("ES256", "short");
    const token = await issuer.sign({ sub: "agent-3", aud: "certfleet", exp: now() + 40 }, { kid });
    expect(await auth.authenticate(bearer(token), signal)).toMatchObject({ name: "agent-3" });

    const [h, p, s] = token.split(".");
    const flipped = `${h}.${p}.${s!.slice(0, -2)}${s!.endsWith("AA") ? "BB" : "AA"}`;
    await expectAuthFailure(auth.authenticate(bearer(flipped), signal), "jwt_signature_invalid");

    clock.advance(75_000); // past exp and the 30 s clock tolerance
    await expectAuthFailure(auth.authenticate(bearer(token), signal), "jwt_expired");
  });
});
