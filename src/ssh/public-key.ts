import { createHash, createPublicKey, type KeyObject } from "node:crypto";
import { ValidationError } from "../core/errors.js";
import { SshReader, SshWriter } from "./wire.js";

/**
 * OpenSSH public keys: the `authorized_keys` line (`<type> <base64 blob> [comment]`) and the wire blob
 * inside it. `parseSshPublicKey` accepts what a user's `ssh-keygen` makes and certfleet will certify —
 * Ed25519, ECDSA P-256/384/521, RSA of at least 2048 bits, and the FIDO security-key forms
 * (`sk-ssh-ed25519@openssh.com`, `sk-ecdsa-sha2-nistp256@openssh.com`) — and refuses DSA, short RSA
 * keys, certificates and anything malformed with a 400 (`ssh_public_key_invalid`, `ssh_key_weak`,
 * `ssh_key_unsupported`). Key material is checked by importing it into node:crypto (points on the
 * curve, sane RSA parameters) except for security keys, whose blob carries an application string too.
 */

export type SshKeyType =
  | "ssh-ed25519"
  | "ecdsa-sha2-nistp256"
  | "ecdsa-sha2-nistp384"
  | "ecdsa-sha2-nistp521"
  | "ssh-rsa"
  | "sk-ssh-ed25519@openssh.com"
  | "sk-ecdsa-sha2-nistp256@openssh.com";

export interface SshPublicKey {
  type: SshKeyType;
  /** The whole wire blob (`string type` + the key's fields). */
  blob: Buffer;
  /** The key's fields after the type name: what a certificate embeds after its nonce. */
  fields: Buffer;
  comment: string;
  /** `SHA256:<base64, no padding>` as `ssh-keygen -l` prints it. */
  fingerprint: string;
}

const MAX_LINE = 16 * 1024;
export const MIN_RSA_BITS = 2048;

const CURVES: Record<string, { name: string; crv: string; coordinate: number }> = {
  "ecdsa-sha2-nistp256": { name: "nistp256", crv: "P-256", coordinate: 32 },
  "ecdsa-sha2-nistp384": { name: "nistp384", crv: "P-384", coordinate: 48 },
  "ecdsa-sha2-nistp521": { name: "nistp521", crv: "P-521", coordinate: 66 },
};

export function parseSshPublicKey(line: string): SshPublicKey {
  if (line.length > MAX_LINE) throw invalid("the public key is too long");
  const parts = line.trim().split(/[ \t]+/);
  if (parts.length < 2 || !/^[A-Za-z0-9+/]+={0,2}$/.test(parts[1]!)) {
    throw invalid('expected one OpenSSH public-key line: "<type> <base64> [comment]"');
  }
  const blob = Buffer.from(parts[1]!, "base64");
  const key = parseSshPublicKeyBlob(blob);
  if (key.type !== parts[0]) throw invalid(`the key type "${parts[0]}" does not match the key inside`);
  return { ...key, comment: parts.slice(2).join(" ") };
}

export function parseSshPublicKeyBlob(blob: Buffer): SshPublicKey {
  try {
    const reader = new SshReader(blob, "public key");
    const type = reader.text();
    if (type.includes("-cert-v01@openssh.com")) throw invalid("send the public key, not a certificate");
    const fieldsStart = 4 + Buffer.byteLength(type);
    checkKeyMaterial(type, reader);
    reader.end();
    return {
      type: type as SshKeyType,
      blob,
      fields: blob.subarray(fieldsStart),
      comment: "",
      fingerprint: sshFingerprint(blob),
    };
  } catch (e) {
    if (e instanceof ValidationError) throw e;
    throw invalid(e instanceof Error ? e.message : String(e));
  }
}

function checkKeyMaterial(type: string, reader: SshReader): void {
  switch (type) {
    case "ssh-ed25519": {
      const pk = reader.string();
      if (pk.length !== 32) throw invalid("an Ed25519 key has 32 bytes");
      createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: pk.toString("base64url") }, format: "jwk" });
      return;
    }
    case "sk-ssh-ed25519@openssh.com": {
      if (reader.string().length !== 32) throw invalid("an Ed25519 key has 32 bytes");
      reader.text(); // application, e.g. "ssh:"
      return;
    }
    case "sk-ecdsa-sha2-nistp256@openssh.com": {
      ecdsaPublicKey("ecdsa-sha2-nistp256", reader);
      reader.text();
      return;
    }
    case "ssh-rsa": {
      const e = reader.mpint();
      const n = reader.mpint();
      const key = createPublicKey({
        key: { kty: "RSA", e: e.toString("base64url"), n: n.toString("base64url") },
        format: "jwk",
      });
      const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
      if (bits < MIN_RSA_BITS) {
        throw new ValidationError(
          "ssh_key_weak",
          `RSA keys need at least ${MIN_RSA_BITS} bits (got ${bits})`,
        );
      }
      return;
    }
    default:
      if (type in CURVES) {
        ecdsaPublicKey(type, reader);
        return;
      }
      throw new ValidationError(
        "ssh_key_unsupported",
        `unsupported key type "${type.slice(0, 60)}" (use ssh-ed25519, ecdsa-sha2-nistp256/384/521 or ssh-rsa)`,
      );
  }
}

function ecdsaPublicKey(type: string, reader: SshReader): KeyObject {
  const curve = CURVES[type]!;
  if (reader.text() !== curve.name) throw invalid(`the curve inside does not match ${type}`);
  const q = reader.string();
  if (q.length !== 1 + 2 * curve.coordinate || q[0] !== 4) throw invalid("expected an uncompressed EC point");
  return createPublicKey({
    key: {
      kty: "EC",
      crv: curve.crv,
      x: q.subarray(1, 1 + curve.coordinate).toString("base64url"),
      y: q.subarray(1 + curve.coordinate).toString("base64url"),
    },
    format: "jwk",
  });
}

/** The SSH wire blob of a node:crypto public key (Ed25519, ECDSA P-256/384/521, RSA). */
export function sshBlobOfKey(key: KeyObject): Buffer {
  const jwk = key.export({ format: "jwk" });
  const w = new SshWriter();
  if (jwk.kty === "OKP" && jwk.crv === "Ed25519") {
    w.string("ssh-ed25519").string(Buffer.from(jwk.x!, "base64url"));
  } else if (jwk.kty === "EC") {
    const entry = Object.entries(CURVES).find(([, c]) => c.crv === jwk.crv);
    if (!entry) throw new Error(`unsupported curve ${jwk.crv}`);
    const point = Buffer.concat([
      Buffer.from([4]),
      Buffer.from(jwk.x!, "base64url"),
      Buffer.from(jwk.y!, "base64url"),
    ]);
    w.string(entry[0]).string(entry[1].name).string(point);
  } else if (jwk.kty === "RSA") {
    w.string("ssh-rsa").mpint(Buffer.from(jwk.e!, "base64url")).mpint(Buffer.from(jwk.n!, "base64url"));
  } else {
    throw new Error(`unsupported key type ${jwk.kty}`);
  }
  return w.toBuffer();
}

/** `<type> <base64>[ comment]`, the authorized_keys / .pub form of a blob. */
export function sshPublicKeyLine(blob: Buffer, comment?: string): string {
  const type = new SshReader(blob, "public key").text();
  return `${type} ${blob.toString("base64")}${comment ? ` ${comment}` : ""}`;
}

export function sshFingerprint(blob: Buffer): string {
  return "SHA256:" + createHash("sha256").update(blob).digest("base64").replace(/=+$/, "");
}

function invalid(message: string): ValidationError {
  return new ValidationError("ssh_public_key_invalid", message);
}
