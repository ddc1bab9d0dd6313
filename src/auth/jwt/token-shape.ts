import { decodeJwt, decodeProtectedHeader, type JWTPayload, type ProtectedHeaderParameters } from "jose";
import { AuthFailure } from "../auth-failure.js";

/**
 * Cheap checks on a bearer token before anything is looked up or verified: size, the compact JWS shape
 * (three base64url segments, a non-empty signature), a JSON header and payload, and header fields that
 * would make us look for keys somewhere the configuration did not say (`jku`, `jwk`, `x5u`). The
 * result is UNVERIFIED: it only selects the issuer whose rules then verify the token.
 */

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
/** Printable ASCII, bounded: a kid is only ever compared, but it is also logged. */
const KID = /^[\x20-\x7e]{1,256}$/;

export interface UnverifiedToken {
  header: ProtectedHeaderParameters;
  payload: JWTPayload;
  /** False when the signature segment is empty (`alg: none`, or a stripped signature). */
  signed: boolean;
}

export function inspectToken(token: string, maxBytes: number): UnverifiedToken {
  if (Buffer.byteLength(token, "utf8") > maxBytes)
    throw new AuthFailure("jwt_too_large", `${token.length} bytes > ${maxBytes}`);
  if (!COMPACT_JWS.test(token)) {
    throw new AuthFailure(
      "jwt_malformed",
      token.split(".").length === 5 ? "an encrypted JWT (JWE) is not accepted" : "not a compact JWS",
    );
  }
  let header: ProtectedHeaderParameters;
  let payload: JWTPayload;
  try {
    header = decodeProtectedHeader(token);
    payload = decodeJwt(token);
  } catch (e) {
    throw new AuthFailure("jwt_malformed", e instanceof Error ? e.message : String(e));
  }
  if (typeof header.alg !== "string") throw new AuthFailure("jwt_malformed", "header has no alg");
  for (const field of ["jku", "jwk", "x5u"] as const) {
    if (header[field] !== undefined)
      throw new AuthFailure("jwt_header_key_reference", `header carries ${field}`);
  }
  if (header.kid !== undefined && (typeof header.kid !== "string" || !KID.test(header.kid))) {
    throw new AuthFailure("jwt_kid_invalid", "kid is not a short printable string");
  }
  return { header, payload, signed: !token.endsWith(".") };
}

/**
 * Scopes granted by a token, read from `claims` (default `scope`, `scopes`, `scp`), each an array of
 * strings or one space-separated string.
 */
export function tokenScopes(
  payload: JWTPayload,
  claims: readonly string[] = ["scope", "scopes", "scp"],
): Set<string> {
  const scopes = new Set<string>();
  const add = (value: unknown) => {
    if (typeof value === "string")
      value
        .split(" ")
        .filter(Boolean)
        .forEach((s) => scopes.add(s));
    else if (Array.isArray(value))
      value.filter((s): s is string => typeof s === "string").forEach((s) => scopes.add(s));
  };
  for (const claim of claims) add(payload[claim]);
  return scopes;
}

/** Name grants carried in a claim: an array of strings, or one string separated by spaces or commas. */
export function claimGrants(value: unknown): string[] {
  const raw = typeof value === "string" ? value.split(/[\s,]+/) : Array.isArray(value) ? value : [];
  return raw
    .filter((v): v is string => typeof v === "string" && v.length > 0 && v.length <= 253)
    .map((v) => v.toLowerCase());
}
