import type { JWTPayload } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJwtAuthenticator } from "../../src/auth/jwt/jwt-authenticator.js";
import { createVerifiedTokens, tokenDigest } from "../../src/auth/jwt/verified-tokens.js";
import { createManualClock } from "../../src/core/clock.js";
import { silentLogger } from "../../src/core/logger.js";
import { startJwksIssuer, type JwksIssuer } from "../harness/jwks-issuer.js";
import { bearer, expectAuthFailure, signal } from "./helpers.js";

describe("verified-token memory", () => {
  const setA = {};
  const setB = {};
  const payload = (exp: number): JWTPayload => ({ sub: "s", exp });

  it("answers only for the same digest, before exp and the age bound, with the same key set", () => {
    const memory = createVerifiedTokens<string>({ maxEntries: 10, maxAgeMs: 60_000 });
    const t0 = 1_000_000_000;
    memory.remember("d1", { payload: payload(t0 / 1000 + 3600), issuer: "i", keySet: setA }, t0);
    expect(memory.get("d1", () => setA, t0 + 1)?.payload.sub).toBe("s");
    expect(memory.get("d2", () => setA, t0 + 1)).toBeUndefined();
    expect(memory.get("d1", () => setA, t0 + 60_000)).toBeUndefined(); // the age bound
    memory.remember("d1", { payload: payload(t0 / 1000 + 10), issuer: "i", keySet: setA }, t0);
    expect(memory.get("d1", () => setA, t0 + 10_000)).toBeUndefined(); // exp
    memory.remember("d1", { payload: payload(t0 / 1000 + 3600), issuer: "i", keySet: setA }, t0);
    expect(memory.get("d1", () => setB, t0 + 1)).toBeUndefined(); // the set was replaced
    expect(memory.get("d1", () => setA, t0 + 1)).toBeUndefined(); // and the entry is gone for good
    expect(memory.get("d1", () => undefined, t0 + 1)).toBeUndefined();
  });

  it("keeps at most maxEntries, dropping the oldest", () => {
    const memory = createVerifiedTokens<string>({ maxEntries: 2, maxAgeMs: 60_000 });
    const t0 = 1_000_000_000;
    for (const d of ["a", "b", "c"])
      memory.remember(d, { payload: payload(t0 / 1000 + 3600), issuer: "i", keySet: setA }, t0);
    expect(memory.get("a", () => setA, t0)).toBeUndefined();
    expect(memory.get("b", () => setA, t0)).toBeDefined();
    expect(memory.get("c", () => setA, t0)).toBeDefined();
  });

  it("keys by SHA-256, not by the token", () => {
    expect(tokenDigest("a.b.c")).toBe("hF4wRIgJ4ryJWOsCW_x5UjXROwd6U9DDq70jhRcNybg");
  });
});

/** The authenticator with a JWKS issuer: the memory never outlives the key that verified a token. */
describe("JWT authenticator remembering verified tokens", () => {
  let issuer: JwksIssuer;
  const clock = createManualClock(new Date());
  const now = () => Math.floor(clock.now().getTime() / 1000);

  beforeAll(async () => {
    issuer = await startJwksIssuer({ algs: [] });
  });
  afterAll(async () => {
    await issuer?.close();
  });

  const authenticator = () =>
    createJwtAuthenticator({
      issuers: [
        {
          issuerUrl: issuer.issuerUrl,
          audience: "certfleet",
          jwksCooldownSeconds: 1,
          jwksCacheMaxAgeSeconds: 600,
        },
      ],
      fetch,
      clock,
      logger: silentLogger(),
    });

  it("refuses a remembered token at once when a refetch shows its key left the set", async () => {
    const auth = authenticator();
    const oldKid = await issuer.addKey("ES256", "old");
    const token = await issuer.sign({ sub: "agent-1", aud: "certfleet", exp: now() + 3600 }, { kid: oldKid });
    expect(await auth.authenticate(bearer(token), signal)).toMatchObject({ name: "agent-1" });
    expect(await auth.authenticate(bearer(token), signal)).toMatchObject({ name: "agent-1" }); // remembered

    // rotate: the old key leaves the set, and a token with the new kid makes the server refetch it
    issuer.removeKey(oldKid);
    const newKid = await issuer.addKey("ES256", "new");
    clock.advance(2000);
    const fresh = await issuer.sign({ sub: "agent-2", aud: "certfleet", exp: now() + 3600 }, { kid: newKid });
    expect(await auth.authenticate(bearer(fresh), signal)).toMatchObject({ name: "agent-2" });

    // well within the token's exp and the memory's 5 minutes, yet refused: its key is gone
    await expectAuthFailure(auth.authenticate(bearer(token), signal), "jwt_key_unknown");
    expect(await auth.authenticate(bearer(fresh), signal)).toMatchObject({ name: "agent-2" });
  });

  it("never honours a token past its exp, nor a token that differs by one byte", async () => {
    const auth = authenticator();
    const kid = await issuer.addKey("ES256", "short");
    const token = await issuer.sign({ sub: "agent-3", aud: "certfleet", exp: now() + 40 }, { kid });
    expect(await auth.authenticate(bearer(token), signal)).toMatchObject({ name: "agent-3" });
    expect(await auth.authenticate(bearer(token), signal)).toMatchObject({ name: "agent-3" });

    const [h, p, s] = token.split(".");
    const flipped = `${h}.${p}.${s!.slice(0, -2)}${s!.endsWith("AA") ? "BB" : "AA"}`;
    await expectAuthFailure(auth.authenticate(bearer(flipped), signal), "jwt_signature_invalid");

    clock.advance(75_000); // past exp and the 30 s clock tolerance
    await expectAuthFailure(auth.authenticate(bearer(token), signal), "jwt_expired");
  });
});
