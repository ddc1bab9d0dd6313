import { createPublicKey } from "node:crypto";
import { calculateJwkThumbprint, type JWK } from "jose";
import { ValidationError } from "../core/errors.js";
import { parseCsr } from "../core/keys.js";
import type { AcmeStore, KeyValueStore } from "../storage/storage.js";
import type { Issuer } from "./issuer.js";

/**
 * The public keys certfleet has asked a CA to certify, by RFC 7638 thumbprint (SHA-256), so no key is
 * both a certificate key and an ACME account key (RFC 8555 §11.1 and its mirror). A certificate's key
 * is handed to every machine that fetches the certificate; were it also an account key, each of them
 * could act as that account. Kept in the key/value store: one write per issuance, one read per new
 * account or key change. Keys certified before this record existed are not known.
 */
export interface IssuedKeys {
  /** Remember a key before the CA sees it (an order may be finalized and the process die). */
  note(thumbprint: string, issuerId: string, signal?: AbortSignal): Promise<void>;
  /** True when some issuer was asked to certify this key. */
  has(thumbprint: string, signal?: AbortSignal): Promise<boolean>;
}

export const ISSUED_KEYS_NAMESPACE = "certificate-public-keys";

export function createIssuedKeys(kv: Pick<KeyValueStore, "getValue" | "putValue">): IssuedKeys {
  return {
    async note(thumbprint, issuerId, signal) {
      await kv.putValue(ISSUED_KEYS_NAMESPACE, thumbprint, JSON.stringify({ issuer: issuerId }), {}, signal);
    },
    async has(thumbprint, signal) {
      return (await kv.getValue(ISSUED_KEYS_NAMESPACE, thumbprint, signal)) !== undefined;
    },
  };
}

/** RFC 7638 SHA-256 thumbprint of a PEM public key (the same value as an ACME account key's). */
export function publicKeyThumbprint(publicKeyPem: string): Promise<string> {
  return calculateJwkThumbprint(createPublicKey(publicKeyPem).export({ format: "jwk" }) as JWK, "sha256");
}

/**
 * Wrap an issuer so every CSR's key is noted before the CA sees it, and a CSR whose key is an ACME
 * account key (`isAccountKey`) is refused with `csr_account_key` (400) before anything is ordered.
 * Every other member of the issuer (renewal info, revocation, close) is the issuer's own.
 */
export function recordingIssuedKeys<T extends Issuer>(
  issuer: T,
  deps: {
    issuedKeys: IssuedKeys;
    isAccountKey?: (thumbprint: string, signal: AbortSignal) => Promise<boolean>;
  },
): T {
  const issue: Issuer["issue"] = async (request, signal) => {
    const thumbprint = await publicKeyThumbprint(parseCsr(request.csrPem).publicKeyPem);
    if (await deps.isAccountKey?.(thumbprint, signal)) {
      throw new ValidationError(
        "csr_account_key",
        "the CSR's public key is an ACME account key; use a separate certificate key",
      );
    }
    await deps.issuedKeys.note(thumbprint, issuer.id, signal);
    return issuer.issue(request, signal);
  };
  return new Proxy(issuer, {
    get: (target, property, receiver) =>
      property === "issue" ? issue : (Reflect.get(target, property, receiver) as unknown),
  });
}

/** Is this key an account key in any of these ACME server profiles? (for `recordingIssuedKeys`) */
export function isAcmeAccountKey(
  acme: Pick<AcmeStore, "findAccountByThumbprint">,
  profiles: readonly string[],
): (thumbprint: string, signal: AbortSignal) => Promise<boolean> {
  return async (thumbprint, signal) => {
    for (const profile of profiles)
      if (await acme.findAccountByThumbprint(profile, thumbprint, signal)) return true;
    return false;
  };
}
