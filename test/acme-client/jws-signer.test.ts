import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { parseJws, verifyJwsSignature, decodePayload, headerJwk } from "../../src/acme-server/jws.js";
import { createAccountSigner } from "../../src/acme-client/jws-signer.js";
import { generatePrivateKey } from "../../src/core/keys.js";
import { calculateJwkThumbprint, flattenedVerify } from "jose";

// The client's JWS is checked by the ACME server's own verifier (src/acme-server/jws.ts): one JWS
// vocabulary for both sides.
describe("ACME client JWS signer", () => {
  for (const keyType of ["ec256", "ec384", "rsa2048"] as const) {
    it(`signs ${keyType} requests the ACME server's verifier accepts (kid and jwk forms)`, async () => {
      const signer = await createAccountSigner(await generatePrivateKey(keyType));
      expect(signer.alg).toBe({ ec256: "ES256", ec384: "ES384", rsa2048: "RS256" }[keyType]);

      const byKid = await signer.sign("https://ca.test/order", "nonce-1", "https://ca.test/acct/1", { a: 1 });
      const parsed = parseJws(byKid);
      expect(parsed.header).toMatchObject({
        alg: signer.alg,
        url: "https://ca.test/order",
        nonce: "nonce-1",
        kid: "https://ca.test/acct/1",
      });
      expect(parsed.header).not.toHaveProperty("jwk");
      const payload = await verifyJwsSignature(parsed.jws, parsed.header.alg, signer.jwk);
      expect(decodePayload(payload)).toEqual({ a: 1 });

      const byJwk = await signer.sign("https://ca.test/new-account", "nonce-2", undefined, undefined);
      const parsedJwk = parseJws(byJwk);
      expect(parsedJwk.header).not.toHaveProperty("kid");
      const jwk = headerJwk(parsedJwk.header);
      expect(await verifyJwsSignature(parsedJwk.jws, parsedJwk.header.alg, jwk)).toHaveLength(0);
      expect(signer.thumbprint).toBe(await calculateJwkThumbprint(jwk, "sha256"));
    });
  }

  it("adds an RFC 8555 §7.3.4 external account binding over the account key, without a nonce", async () => {
    const hmacKey = randomBytes(32).toString("base64url");
    const signer = await createAccountSigner(await generatePrivateKey("ec256"));
    const jws = await signer.sign(
      "https://ca.test/new-acct",
      "n",
      undefined,
      { termsOfServiceAgreed: true },
      { kid: "kid-1", hmacKey },
    );
    const outer = parseJws(jws);
    const body = decodePayload(await verifyJwsSignature(outer.jws, outer.header.alg, signer.jwk)) as {
      externalAccountBinding: { protected: string; payload: string; signature: string };
      termsOfServiceAgreed: boolean;
    };
    expect(body.termsOfServiceAgreed).toBe(true);
    const inner = await flattenedVerify(body.externalAccountBinding, Buffer.from(hmacKey, "base64url"), {
      algorithms: ["HS256"],
    });
    expect(inner.protectedHeader).toEqual({ alg: "HS256", kid: "kid-1", url: "https://ca.test/new-acct" });
    expect(JSON.parse(new TextDecoder().decode(inner.payload))).toEqual(signer.jwk);
    await expect(
      flattenedVerify(body.externalAccountBinding, randomBytes(32), { algorithms: ["HS256"] }),
    ).rejects.toThrow();
  });

  it("refuses a key it cannot sign with", async () => {
    await expect(createAccountSigner("not a key")).rejects.toMatchObject({ code: "key_invalid" });
  });
});
