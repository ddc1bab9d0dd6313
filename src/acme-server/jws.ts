import { verify, type KeyObject } from "node:crypto";
import type { JWK } from "jose";
import {
  ACCOUNT_ALGORITHMS,
  algorithmFitsKey,
  canonicalPublicJwk,
  isAccountAlgorithm,
  keyObject,
  type AccountAlgorithm,
} from "./jwk.js";
import { problem } from "./problems.js";

/**
 * Flattened JWS (RFC 7515 §7.2.2) as ACME uses it (RFC 8555 §6.2): exactly `protected`, `payload` and
 * `signature`, no unprotected header, no `signatures` array (one signature only), an algorithm from
 * the allowlist that fits the key, no `crit`. This module checks the envelope and the signature;
 * request-auth.ts adds what depends on the request (url, nonce, account).
 */
export interface FlattenedJws {
  protected: string;
  payload: string;
  signature: string;
}

export interface ProtectedHeader {
  alg: AccountAlgorithm;
  url: string;
  nonce?: unknown;
  kid?: string;
  jwk?: JWK;
  [key: string]: unknown;
}

const B64URL = /^[A-Za-z0-9_-]*$/;

/**
 * The envelope alone: an object with exactly `protected`, `payload`, `signature` (base64url strings)
 * and a protected header that is a JSON object. `what` names it in error messages.
 *
 * An empty signature is NOT refused here: the caller checks the algorithm first (so `alg: none` with
 * no signature is `badSignatureAlgorithm`, RFC 8555 §6.2) and then calls `requireSignature`.
 */
export function parseJwsEnvelope(
  input: unknown,
  what = "the request body",
): { jws: FlattenedJws; header: Record<string, unknown> } {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw problem("malformed", `${what} must be a flattened JWS object`);
  }
  const obj = input as Record<string, unknown>;
  if ("signatures" in obj)
    throw problem(
      "malformed",
      `${what}: exactly one signature is allowed (use the flattened JWS serialization)`,
    );
  if ("header" in obj) throw problem("malformed", `${what}: the JWS must not have an unprotected header`);
  const keys = Object.keys(obj);
  if (keys.length !== 3 || !["protected", "payload", "signature"].every((k) => typeof obj[k] === "string")) {
    throw problem(
      "malformed",
      `${what}: the JWS must have exactly the members protected, payload and signature`,
    );
  }
  const jws = obj as unknown as FlattenedJws;
  if (!B64URL.test(jws.protected) || !B64URL.test(jws.payload) || !B64URL.test(jws.signature)) {
    throw problem("malformed", `${what}: the JWS members must be base64url`);
  }
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(jws.protected, "base64url").toString("utf8"));
  } catch {
    header = undefined;
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    throw problem("malformed", `${what}: the protected header is not a JSON object`);
  }
  return { jws, header: header as Record<string, unknown> };
}

/** After the algorithm check: a JWS without a signature is `malformed`. */
export function requireSignature(jws: FlattenedJws, what = "the request body"): void {
  if (jws.signature === "") throw problem("malformed", `${what}: the JWS has no signature`);
}

/**
 * Parse and check a request JWS, in this order: envelope, algorithm allowlist, signature present, no
 * `crit`/`b64`, a `url`. The algorithm comes before anything about the signature itself.
 */
export function parseJws(input: unknown, what?: string): { jws: FlattenedJws; header: ProtectedHeader } {
  const { jws, header } = parseJwsEnvelope(input, what);
  if (!isAccountAlgorithm(header.alg)) {
    throw problem(
      "badSignatureAlgorithm",
      `the JWS algorithm must be one of ${ACCOUNT_ALGORITHMS.join(", ")}`,
      {
        internal: `alg ${JSON.stringify(header.alg)}`,
        extra: { algorithms: [...ACCOUNT_ALGORITHMS] },
      },
    );
  }
  requireSignature(jws, what);
  if ("crit" in header || "b64" in header)
    throw problem("malformed", "the JWS uses header parameters this server does not support");
  if (typeof header.url !== "string") throw problem("malformed", "the protected header has no url");
  if ("kid" in header && typeof header.kid !== "string") throw problem("malformed", "kid must be a string");
  return { jws, header: header as ProtectedHeader };
}

/** Node's verify parameters per account algorithm: digest and ECDSA signature encoding (JWS uses r‖s). */
const NATIVE: Record<AccountAlgorithm, { digest: string | null; p1363: boolean }> = {
  RS256: { digest: "sha256", p1363: false },
  ES256: { digest: "sha256", p1363: true },
  ES384: { digest: "sha384", p1363: true },
  EdDSA: { digest: null, p1363: false },
};

/** Public keys of recent signers, by canonical JWK (accounts sign many requests in a row). */
const KEY_CACHE_MAX = 1000;
const keyCache = new Map<string, KeyObject>();

function cachedKeyObject(jwk: JWK): KeyObject {
  const id = JSON.stringify(jwk);
  let key = keyCache.get(id);
  if (key === undefined) {
    key = keyObject(jwk);
    if (keyCache.size >= KEY_CACHE_MAX) keyCache.delete(keyCache.keys().next().value!);
    keyCache.set(id, key);
  }
  return key;
}

/**
 * Verify the signature with `jwk` and return the payload bytes. Throws `badSignatureAlgorithm` when
 * the algorithm does not fit the key and `malformed` when the signature does not verify. Node's native
 * `crypto.verify` over `protected.payload` (RFC 7515 §5.2), with the key object kept per account key.
 */
export async function verifyJwsSignature(
  jws: FlattenedJws,
  alg: AccountAlgorithm,
  jwk: JWK,
): Promise<Uint8Array> {
  if (!algorithmFitsKey(alg, jwk)) {
    throw problem("badSignatureAlgorithm", `the JWS algorithm ${alg} does not fit the key`, {
      extra: { algorithms: [...ACCOUNT_ALGORITHMS] },
    });
  }
  const { digest, p1363 } = NATIVE[alg];
  const signingInput = Buffer.from(`${jws.protected}.${jws.payload}`, "ascii");
  const signature = Buffer.from(jws.signature, "base64url");
  let valid: boolean;
  let reason = "signature mismatch";
  try {
    const key = cachedKeyObject(jwk);
    valid = verify(digest, signingInput, p1363 ? { key, dsaEncoding: "ieee-p1363" } : key, signature);
  } catch (e) {
    valid = false;
    reason = e instanceof Error ? e.message : String(e);
  }
  if (!valid) throw problem("malformed", "the JWS signature is invalid", { internal: reason });
  return Buffer.from(jws.payload, "base64url");
}

/** The JWK of a `jwk` header, canonical; `badPublicKey` / `malformed` when unusable. */
export function headerJwk(header: ProtectedHeader): JWK {
  return canonicalPublicJwk(header.jwk);
}

/** A payload as JSON; `undefined` for the empty payload of POST-as-GET. */
export function decodePayload(payload: Uint8Array): unknown {
  if (payload.length === 0) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(payload));
  } catch {
    throw problem("malformed", "the JWS payload is not JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw problem("malformed", "the JWS payload must be a JSON object");
  }
  return value;
}
