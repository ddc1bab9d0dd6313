import { describe, expect, it } from "vitest";
import { createJwtAuthenticator } from "../../src/auth/jwt/jwt-authenticator.js";
import { tokenScopes } from "../../src/auth/jwt/token-shape.js";
import { parseConfig } from "../../src/config/load.js";
import { resolveConfig } from "../../src/config/resolve.js";
import { systemClock } from "../../src/core/clock.js";
import { silentLogger } from "../../src/core/logger.js";
import { startJwksIssuer } from "../harness/jwks-issuer.js";

/**
 * How le-cert-server's `auth` shapes resolve: `auth.method` selects one of psk / jwt (the other block
 * is ignored with a warning naming it), the short JWT form grants every name unless told otherwise,
 * and scopes are read from the claims le-cert-server and Entra use.
 */
const resolve = (auth: Record<string, unknown>) => resolveConfig(parseConfig({ auth }), "/srv");
const KEY = "a-pre-shared-key-0123456789";

describe("auth.method", () => {
  it("method jwt: the psk block is not an API key, and the warning names auth.psk", () => {
    const c = resolve({
      method: "jwt",
      psk: { key: KEY },
      jwt: { issuerUrl: "https://idp.test", audience: "a" },
    });
    expect(c.auth.apiKeys).toEqual([]);
    expect(c.auth.jwtIssuers).toHaveLength(1);
    expect(c.warnings.map((w) => w.path)).toEqual(["auth.psk"]);
  });

  it("method psk: the JWT settings are not an issuer, and the warning names them", () => {
    const c = resolve({ method: "psk", psk: { key: KEY }, issuerUrl: "https://idp.test", audience: "a" });
    expect(c.auth.apiKeys.map((k) => k.name)).toEqual(["psk"]);
    expect(c.auth.jwtIssuers).toEqual([]);
    expect(c.warnings.map((w) => w.path)).toEqual(["auth.issuerUrl"]);
  });

  it("no method: both blocks apply (certfleet's own apiKeys / issuers always do)", () => {
    const c = resolve({ psk: { key: KEY }, issuerUrl: "https://idp.test", audience: "a" });
    expect(c.auth.apiKeys.map((k) => k.name)).toEqual(["psk"]);
    expect(c.auth.jwtIssuers).toHaveLength(1);
    expect(c.warnings).toEqual([]);
  });
});

describe("grants of the short JWT form", () => {
  it("grants every name without domainsClaim; not with one; not in auth.issuers unless asked", () => {
    expect(resolve({ issuerUrl: "https://idp.test", audience: "a" }).auth.jwtIssuers[0]!.grantAllNames).toBe(
      true,
    );
    expect(
      resolve({ issuerUrl: "https://idp.test", audience: "a", domainsClaim: "names" }).auth.jwtIssuers[0]!
        .grantAllNames,
    ).toBe(false);
    expect(
      resolve({ jwt: { issuerUrl: "https://idp.test", audience: "a", grantAllNames: false } }).auth
        .jwtIssuers[0]!.grantAllNames,
    ).toBe(false);
    expect(
      resolve({ issuers: [{ issuerUrl: "https://idp.test", audience: "a" }] }).auth.jwtIssuers[0]!
        .grantAllNames,
    ).toBeUndefined();
  });

  it("a token's principal: every name with grantAllNames, none without, the claim with domainsClaim", async () => {
    const idp = await startJwksIssuer();
    try {
      const principal = async (extra: Record<string, unknown>, claims: Record<string, unknown> = {}) => {
        const auth = createJwtAuthenticator({
          issuers: [{ issuerUrl: idp.issuerUrl, audience: "a", ...extra }],
          fetch,
          clock: systemClock,
          logger: silentLogger(),
        });
        const token = await idp.sign({ sub: "s", aud: "a", ...claims });
        return auth.authenticate(
          { headers: { authorization: `Bearer ${token}` }, remoteAddress: "127.0.0.1" },
          AbortSignal.timeout(5000),
        );
      };
      expect((await principal({ grantAllNames: true }))?.grants).toBe("all");
      expect((await principal({}))?.grants).toEqual([]);
      expect(
        (await principal({ grantAllNames: true, domainsClaim: "names" }, { names: ["a.example"] }))?.grants,
      ).toEqual(["a.example"]);
    } finally {
      await idp.close();
    }
  });
});

describe("scopes", () => {
  it("scope, scopes (list or string) and scp by default; roles only when named", () => {
    const payload = { scope: "a b", scopes: ["c"], scp: "d", roles: ["e"] };
    expect([...tokenScopes(payload)].sort()).toEqual(["a", "b", "c", "d"]);
    expect([...tokenScopes({ scopes: "x y" })].sort()).toEqual(["x", "y"]);
    expect([...tokenScopes(payload, ["scp", "roles"])].sort()).toEqual(["d", "e"]);
  });
});
