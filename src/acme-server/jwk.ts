import { createPublicKey, type KeyObject } from "node:crypto";
import { calculateJwkThumbprint, type JWK } from "jose";
import { problem } from "./problems.js";

/**
 * Account keys. An account key arrives as a JWK in a JWS header; it is kept in a canonical form (the
 * RFC 7638 required members only) so thumbprints and comparisons are well defined.
 */

/** JWS algorithms an account may sign with, and the key each needs. Never `none`, never HMAC. */
export const ACCOUNT_ALGORITHMS = ["RS256", "ES256", "ES384", "EdDSA"] as const;
export type AccountAlgorithm = (typeof ACCOUNT_ALGORITHMS)[number];

export function isAccountAlgorithm(alg: unknown): alg is AccountAlgorithm {
  return typeof alg === "string" && (ACCOUNT_ALGORITHMS as readonly string[]).includes(alg);
}

const MIN_RSA_BITS = 2048;
const MAX_RSA_BITS = 8192;

/** The public JWK with only its required members. Throws `badPublicKey` for anything we do not accept. */
export function canonicalPublicJwk(input: unknown): JWK {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw problem("malformed", "the jwk header must be a JSON object");
  }
  const jwk = input as Record<string, unknown>;
  if ("d" in jwk || "p" in jwk || "k" in jwk) throw problem("badPublicKey", "the jwk must be a public key");
  const str = (k: string) => {
    const v = jwk[k];
    if (typeof v !== "string" || !/^[A-Za-z0-9_-]+$/.test(v))
      throw problem("badPublicKey", `the jwk member "${k}" is invalid`);
    return v;
  };
  let canonical: JWK;
  switch (jwk.kty) {
    case "RSA":
      canonical = { e: str("e"), kty: "RSA", n: str("n") };
      break;
    case "EC":
      if (jwk.crv !== "P-256" && jwk.crv !== "P-384")
        throw problem("badPublicKey", "EC account keys must use P-256 or P-384");
      canonical = { crv: jwk.crv, kty: "EC", x: str("x"), y: str("y") };
      break;
    case "OKP":
      if (jwk.crv !== "Ed25519") throw problem("badPublicKey", "OKP account keys must use Ed25519");
      canonical = { crv: "Ed25519", kty: "OKP", x: str("x") };
      break;
    default:
      throw problem("badPublicKey", "account keys must be RSA, EC (P-256/P-384) or Ed25519");
  }
  const key = keyObject(canonical);
  if (canonical.kty === "RSA") {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS || bits > MAX_RSA_BITS) {
      throw problem("badPublicKey", `RSA account keys must have ${MIN_RSA_BITS}-${MAX_RSA_BITS} bits`);
    }
  }
  return canonical;
}

/** Does `alg` belong to this key? (ES256 with a P-384 key is algorithm confusion.) */
export function algorithmFitsKey(alg: AccountAlgorithm, jwk: JWK): boolean {
  switch (alg) {
    case "RS256":
      return jwk.kty === "RSA";
    case "ES256":
      return jwk.kty === "EC" && jwk.crv === "P-256";
    case "ES384":
      return jwk.kty === "EC" && jwk.crv === "P-384";
    case "EdDSA":
      return jwk.kty === "OKP" && jwk.crv === "Ed25519";
  }
}

export function jwkThumbprint(jwk: JWK): Promise<string> {
  return calculateJwkThumbprint(jwk, "sha256");
}

export function keyObject(jwk: JWK): KeyObject {
  try {
    return createPublicKey({ key: jwk as never, format: "jwk" });
  } catch {
    throw problem("badPublicKey", "the jwk is not a valid public key");
  }
}

/** DER SubjectPublicKeyInfo of a JWK, to compare with a certificate's key. */
export function jwkSpki(jwk: JWK): Buffer {
  return keyObject(jwk).export({ type: "spki", format: "der" });
}
