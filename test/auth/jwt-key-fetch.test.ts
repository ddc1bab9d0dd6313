import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJwtAuthenticator } from "../../src/auth/jwt/jwt-authenticator.js";
import { createManualClock } from "../../src/core/clock.js";
import { silentLogger } from "../../src/core/logger.js";
import { startJwksIssuer, type JwksIssuer } from "../harness/jwks-issuer.js";
import { bearer, expectCode, signal } from "./helpers.js";

/** Fetching keys: timeouts, size caps, and riding out a provider outage with the cached set. */
describe("JWT key fetching", () => {
  let hostile: Server;
  let hostileUrl: string;
  let issuer: JwksIssuer;

  beforeAll(async () => {
    hostile = createServer((req, res) => {
      if (req.url === "/slow/.well-known/openid-configuration") return; // never answers
      if (req.url === "/huge/.well-known/openid-configuration") {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(
          JSON.stringify({
            issuer: `${hostileUrl}/huge`,
            jwks_uri: `${hostileUrl}/huge/jwks`,
            pad: "x".repeat(300_000),
          }),
        );
        return;
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => hostile.listen(0, "127.0.0.1", resolve));
    hostileUrl = `http://127.0.0.1:${(hostile.address() as AddressInfo).port}`;
    issuer = await startJwksIssuer();
  });
  afterAll(async () => {
    hostile.closeAllConnections();
    await new Promise<void>((resolve) => hostile.close(() => resolve()));
    await issuer?.close();
  });

  const tokenFor = (iss: string) => issuer.sign({ iss, sub: "a", aud: "certfleet" });

  it("gives up on a provider that never answers, within the fetch timeout", async () => {
    const authenticator = createJwtAuthenticator({
      issuers: [{ issuerUrl: `${hostileUrl}/slow`, audience: "certfleet", fetchTimeoutMs: 300 }],
      fetch,
      clock: createManualClock(new Date()),
      logger: silentLogger(),
    });
    const started = Date.now();
    await expectCode(
      authenticator.authenticate(bearer(await tokenFor(`${hostileUrl}/slow`)), signal),
      "identity_provider_unavailable",
    );
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it("refuses an oversized discovery document", async () => {
    const authenticator = createJwtAuthenticator({
      issuers: [{ issuerUrl: `${hostileUrl}/huge`, audience: "certfleet" }],
      fetch,
      clock: createManualClock(new Date()),
      logger: silentLogger(),
    });
    await expectCode(
      authenticator.authenticate(bearer(await tokenFor(`${hostileUrl}/huge`)), signal),
      "identity_provider_unavailable",
    );
  });

  it("keeps using the cached key set while the provider is down, within the stale limit", async () => {
    const clock = createManualClock(new Date());
    const authenticator = createJwtAuthenticator({
      issuers: [
        {
          issuerUrl: issuer.issuerUrl,
          audience: "certfleet",
          jwksCacheMaxAgeSeconds: 60,
          jwksCooldownSeconds: 5,
          fetchTimeoutMs: 500,
        },
      ],
      fetch,
      clock,
      logger: silentLogger(),
    });
    expect(await authenticator.warmUp(signal)).toEqual([]);
    const token = await tokenFor(issuer.issuerUrl);
    await issuer.close(); // provider outage
    clock.advance(120_000); // past maxAge: a refresh is attempted and fails
    expect(await authenticator.authenticate(bearer(token), signal)).toBeDefined();
    clock.advance(2 * 60 * 60_000); // past the stale limit as well
    await expectCode(authenticator.authenticate(bearer(token), signal), "identity_provider_unavailable");
  });
});
