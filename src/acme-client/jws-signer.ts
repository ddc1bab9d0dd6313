import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { FlattenedSign, calculateJwkThumbprint, type JWK } from "jose";
import { ValidationError } from "../core/errors.js";
import { algorithmFitsKey, canonicalPublicJwk, type AccountAlgorithm } from "../acme-server/jwk.js";
import type { FlattenedJws } from "../acme-server/jws.js";

/**
 * The signing half of RFC 8555 §6.2 for certfleet's ACME client. It shares the ACME server's JWS
 * vocabulary (src/acme-server/jws.ts, jwk.ts): the same flattened JWS shape, the same account
 * algorithms, the same canonical (RFC 7638 members only) public JWK and the same "algorithm fits the
 * key" rule — so what the client signs is exactly what the server accepts, and a test checks one
 * against the other. jose does the signing.
 */
export interface AccountSigner {
  readonly alg: AccountAlgorithm;
  /** Canonical public JWK (what goes in a `jwk` header and into the EAB payload). */
  readonly jwk: JWK;
  /** RFC 7638 SHA-256 thumbprint, base64url: the second half of every key authorization (§8.1). */
  readonly thumbprint: string;
  /**
   * Sign `payload` (undefined = the empty payload of POST-as-GET) for `url` with `nonce`, identified by
   * `kid` (the account URL) or, when `kid` is undefined, by the public `jwk` (newAccount, revokeCert by
   * certificate key).
   */
  sign(
    url: string,
    nonce: string,
    kid: string | undefined,
    payload: unknown,
    eab?: ExternalAccountBinding,
  ): Promise<FlattenedJws>;
}

/** RFC 8555 §7.3.4 external account binding: a MAC key id and its base64url HMAC key. */
export interface ExternalAccountBinding {
  kid: string;
  hmacKey: string;
}

/** The JWS algorithm of an account key: ES256 (P-256), ES384 (P-384), RS256 (RSA), EdDSA (Ed25519). */
function algorithmOf(jwk: JWK): AccountAlgorithm {
  for (const alg of ["ES256", "ES384", "RS256", "EdDSA"] as const) if (algorithmFitsKey(alg, jwk)) return alg;
  throw new ValidationError("key_invalid", "the ACME account key is not usable for JWS");
}

/** Build the signer for a PKCS#8 PEM account key. Throws ValidationError `key_invalid`. */
export async function createAccountSigner(privateKeyPem: string): Promise<AccountSigner> {
  let privateKey: KeyObject;
  let jwk: JWK;
  try {
    privateKey = createPrivateKey(privateKeyPem);
    jwk = canonicalPublicJwk(createPublicKey(privateKey).export({ format: "jwk" }));
  } catch (e) {
    throw new ValidationError("key_invalid", "the ACME account key cannot be read", {
      reason: e instanceof Error ? e.message : String(e),
    });
  }
  const alg = algorithmOf(jwk);
  const thumbprint = await calculateJwkThumbprint(jwk, "sha256");
  const encoder = new TextEncoder();

  return {
    alg,
    jwk,
    thumbprint,
    async sign(url, nonce, kid, payload, eab) {
      let body = payload;
      if (eab) {
        const binding = await eabJws(eab, url, jwk);
        body = { ...(payload as Record<string, unknown>), externalAccountBinding: binding };
      }
      const bytes = body === undefined ? new Uint8Array() : encoder.encode(JSON.stringify(body));
      const header = kid === undefined ? { alg, nonce, url, jwk } : { alg, nonce, url, kid };
      const jws = await new FlattenedSign(bytes).setProtectedHeader(header).sign(privateKey);
      return { protected: jws.protected!, payload: jws.payload, signature: jws.signature };
    },
  };
}

/**
 * The EAB inner JWS: HS256 over the account's public JWK, with the MAC key id and the newAccount URL
 * in its protected header and no nonce (§7.3.4).
 */
async function eabJws(eab: ExternalAccountBinding, url: string, jwk: JWK): Promise<FlattenedJws> {
  const jws = await new FlattenedSign(new TextEncoder().encode(JSON.stringify(jwk)))
    .setProtectedHeader({ alg: "HS256", kid: eab.kid, url })
    .sign(Buffer.from(eab.hmacKey, "base64url"));
  return { protected: jws.protected!, payload: jws.payload, signature: jws.signature };
}
