import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { CertfleetError } from "../core/errors.js";

/**
 * Encryption at rest for private keys and secret values: AES-256-GCM with a random 96-bit nonce per
 * value. The envelope is `v1:<base64 nonce>:<base64 ciphertext||tag>`, so the format can change later
 * without guessing. `context` is authenticated (AAD) but not stored: it names the row the value
 * belongs to, so a ciphertext copied into another row fails to open.
 */
export interface SecretBox {
  seal(plaintext: string, context: string): string;
  /** Throws CertfleetError `storage_decrypt_failed` on a wrong key, a moved value or a damaged envelope. */
  open(envelope: string, context: string): string;
}

export const MASTER_KEY_BYTES = 32;
const VERSION = "v1";
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

export function createSecretBox(key: Buffer): SecretBox {
  if (key.length !== MASTER_KEY_BYTES) {
    throw new CertfleetError(
      "storage_key_invalid",
      `the storage encryption key must be ${MASTER_KEY_BYTES} bytes`,
      {
        internal: `got ${key.length} bytes`,
      },
    );
  }
  const secretKey = Buffer.from(key); // our own copy: the caller may wipe theirs

  return {
    seal(plaintext, context) {
      const nonce = randomBytes(NONCE_BYTES);
      const cipher = createCipheriv("aes-256-gcm", secretKey, nonce, { authTagLength: TAG_BYTES });
      cipher.setAAD(Buffer.from(context, "utf8"));
      const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final(), cipher.getAuthTag()]);
      return `${VERSION}:${nonce.toString("base64")}:${body.toString("base64")}`;
    },

    open(envelope, context) {
      const [version, nonceText, bodyText, ...rest] = envelope.split(":");
      if (version !== VERSION || nonceText === undefined || bodyText === undefined || rest.length > 0) {
        throw decryptFailed("unknown envelope format");
      }
      const nonce = Buffer.from(nonceText, "base64");
      const body = Buffer.from(bodyText, "base64");
      if (nonce.length !== NONCE_BYTES || body.length < TAG_BYTES) throw decryptFailed("malformed envelope");
      try {
        const decipher = createDecipheriv("aes-256-gcm", secretKey, nonce, { authTagLength: TAG_BYTES });
        decipher.setAAD(Buffer.from(context, "utf8"));
        decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
        return Buffer.concat([
          decipher.update(body.subarray(0, body.length - TAG_BYTES)),
          decipher.final(),
        ]).toString("utf8");
      } catch (e) {
        throw decryptFailed("authentication failed: wrong key, or the value belongs to another row", e);
      }
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
