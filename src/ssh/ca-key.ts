import { createPrivateKey, createPublicKey, generateKeyPair, sign, type KeyObject } from "node:crypto";
import { promisify } from "node:util";
import { sshBlobOfKey, sshFingerprint, sshPublicKeyLine } from "./public-key.js";
import { SshWriter } from "./wire.js";

/**
 * An SSH CA key: a node:crypto private key that signs certificate bodies the way OpenSSH verifies them.
 * Signature algorithms are pinned per key type (PROTOCOL.certkeys, RFC 8709, RFC 5656, RFC 8332):
 * Ed25519 → `ssh-ed25519`; ECDSA P-256/384/521 → `ecdsa-sha2-nistp*` over SHA-256/384/512 with the
 * (r, s) pair as two mpints; RSA → `rsa-sha2-512`, never SHA-1 `ssh-rsa`, which OpenSSH 8.8 and later
 * refuse for CA signatures by default.
 */

export const SSH_CA_KEY_TYPES = ["ed25519", "ecdsa-p256", "ecdsa-p384", "rsa-3072", "rsa-4096"] as const;
export type SshCaKeyType = (typeof SSH_CA_KEY_TYPES)[number];

export interface SshCaKey {
  /** Wire blob of the CA's public key (what certificates carry as "signature key"). */
  readonly publicBlob: Buffer;
  /** `<type> <base64> <comment>`. */
  readonly publicLine: string;
  readonly fingerprint: string;
  /** The signature blob (`string algorithm, string signature`) over `data`. */
  sign(data: Buffer): Buffer;
}

export async function generateSshCaKeyPem(type: SshCaKeyType): Promise<string> {
  const gen = promisify(generateKeyPair);
  const pair =
    type === "ed25519"
      ? await gen("ed25519")
      : type === "ecdsa-p256" || type === "ecdsa-p384"
        ? await gen("ec", { namedCurve: type === "ecdsa-p256" ? "P-256" : "P-384" })
        : await gen("rsa", { modulusLength: type === "rsa-3072" ? 3072 : 4096 });
  return pair.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
}

export function loadSshCaKey(privateKeyPem: string, comment: string): SshCaKey {
  const privateKey = createPrivateKey(privateKeyPem);
  const publicBlob = sshBlobOfKey(createPublicKey(privateKey));
  const signer = signerFor(privateKey);
  return {
    publicBlob,
    publicLine: sshPublicKeyLine(publicBlob, comment),
    fingerprint: sshFingerprint(publicBlob),
    sign: signer,
  };
}

function signerFor(key: KeyObject): (data: Buffer) => Buffer {
  const type = key.asymmetricKeyType;
  if (type === "ed25519") {
    return (data) =>
      new SshWriter()
        .string("ssh-ed25519")
        .string(sign(null, data, key))
        .toBuffer();
  }
  if (type === "rsa") {
    return (data) =>
      new SshWriter()
        .string("rsa-sha2-512")
        .string(sign("sha512", data, key))
        .toBuffer();
  }
  if (type === "ec") {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    const [name, hash] =
      curve === "prime256v1"
        ? ["ecdsa-sha2-nistp256", "sha256"]
        : curve === "secp384r1"
          ? ["ecdsa-sha2-nistp384", "sha384"]
          : curve === "secp521r1"
            ? ["ecdsa-sha2-nistp521", "sha512"]
            : [undefined, undefined];
    if (!name) throw new Error(`unsupported EC curve ${curve}`);
    return (data) => {
      const sig = sign(hash, data, { key, dsaEncoding: "ieee-p1363" });
      const half = sig.length / 2;
      const inner = new SshWriter().mpint(sig.subarray(0, half)).mpint(sig.subarray(half)).toBuffer();
      return new SshWriter().string(name).string(inner).toBuffer();
    };
  }
  throw new Error(`unsupported SSH CA key type ${type}`);
}
