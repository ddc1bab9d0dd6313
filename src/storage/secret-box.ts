import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { CertfleetError } from "../core/errors.js";

/**
 * Encryption at rest for private keys and secret values: AES-256-GCM with a random 96-bit nonce per
 * value. `context` is authenticated (AAD) but not stored: it names the row the value belongs to, so a
 * ciphertext copied into another row fails to open.
 *
 * The envelope is `v2:<key id>:<base64 nonce>:<base64 ciphertext||tag>`; the key id (a short hash of
 * the key, not secret) says which master key sealed it, so a box can hold the current key plus
 * previous ones while values are re-encrypted under a new key (`certfleet storage rotate-key`).
 * `v1:<nonce>:<body>` envelopes from before key ids are still opened, with whichever key fits.
 */
export interface SecretBox {
  seal(plaintext: string, context: string): string;
  /** Throws CertfleetError `storage_decrypt_failed` on a wrong key, a moved value or a damaged envelope. */
  open(envelope: string, context: string): string;
  /** True when `envelope` is sealed under the current key (re-encryption skips it). */
  isCurrent(envelope: string): boolean;
  /** The current key's id, as it appears in envelopes. */
  readonly keyId: string;
}

export const MASTER_KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/** Public, short, stable: which key sealed a value. */
export function masterKeyId(key: Buffer): string {
  return createHash("sha256").update("certfleet master key id").update(key).digest("base64url").slice(0, 11);
}

export function createSecretBox(key: Buffer, previousKeys: readonly Buffer[] = []): SecretBox {
  for (const k of [key, ...previousKeys]) {
    if (k.length !== MASTER_KEY_BYTES) {
      throw new CertfleetError(
        "storage_key_invalid",
        `the storage encryption key must be ${MASTER_KEY_BYTES} bytes`,
        { internal: `got ${k.length} bytes` },
      );
    }
  }
  // our own copies: the caller may wipe theirs
  const current = { id: masterKeyId(key), key: Buffer.from(key) };
  const keys = new Map([[current.id, current.key]]);
  for (const k of previousKeys) if (!keys.has(masterKeyId(k))) keys.set(masterKeyId(k), Buffer.from(k));

  function decrypt(secretKey: Buffer, nonce: Buffer, body: Buffer, context: string): string {
    const decipher = createDecipheriv("aes-256-gcm", secretKey, nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(context, "utf8"));
    decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
    return Buffer.concat([
      decipher.update(body.subarray(0, body.length - TAG_BYTES)),
      decipher.final(),
    ]).toString("utf8");
  }

  function parse(envelope: string): { keyId?: string; nonce: Buffer; body: Buffer } {
    const parts = envelope.split(":");
    let keyId: string | undefined;
    let nonceText: string | undefined;
    let bodyText: string | undefined;
    if (parts[0] === "v2" && parts.length === 4) [, keyId, nonceText, bodyText] = parts;
    else if (parts[0] === "v1" && parts.length === 3) [, nonceText, bodyText] = parts;
    else throw decryptFailed("unknown envelope format");
    const nonce = Buffer.from(nonceText!, "base64");
    const body = Buffer.from(bodyText!, "base64");
    if (nonce.length !== NONCE_BYTES || body.length < TAG_BYTES) throw decryptFailed("malformed envelope");
    return { keyId, nonce, body };
  }

  return {
    keyId: current.id,

    seal(plaintext, context) {
      const nonce = randomBytes(NONCE_BYTES);
      const cipher = createCipheriv("aes-256-gcm", current.key, nonce, { authTagLength: TAG_BYTES });
      cipher.setAAD(Buffer.from(context, "utf8"));
      const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final(), cipher.getAuthTag()]);
      return `v2:${current.id}:${nonce.toString("base64")}:${body.toString("base64")}`;
    },

    open(envelope, context) {
      const { keyId, nonce, body } = parse(envelope);
      if (keyId !== undefined) {
        const secretKey = keys.get(keyId);
        if (!secretKey)
          throw decryptFailed(
            `sealed under master key ${keyId}, which is not configured (current: ${current.id})`,
          );
        try {
          return decrypt(secretKey, nonce, body, context);
        } catch (e) {
          throw decryptFailed("authentication failed: the value belongs to another row, or was altered", e);
        }
      }
      for (const secretKey of keys.values()) {
        try {
          return decrypt(secretKey, nonce, body, context);
        } catch {
          // a v1 envelope names no key: try the next one
        }
      }
      throw decryptFailed("authentication failed: wrong key, or the value belongs to another row");
    },

    isCurrent(envelope) {
      return envelope.startsWith(`v2:${current.id}:`);
    },
  };
}

function decryptFailed(reason: string, cause?: unknown): CertfleetError {
  return new CertfleetError("storage_decrypt_failed", "a stored secret could not be decrypted", {
    status: 500,
    internal: reason,
    cause,
  });
}
