import { randomBytes } from "node:crypto";
import { ValidationError } from "../core/errors.js";
import type { SshCaKey } from "./ca-key.js";
import { parseSshPublicKeyBlob, type SshPublicKey } from "./public-key.js";
import { SshReader, SshWriter } from "./wire.js";

/**
 * OpenSSH certificates (PROTOCOL.certkeys, "-cert-v01@openssh.com"), encoded and decoded here.
 *
 * Why not sshpk (installed, and it does read and write OpenSSH certificates): it signs RSA
 * certificates with SHA-1 `ssh-rsa`, which OpenSSH 8.8+ refuses for CA signatures, it writes
 * critical options and extensions in the order given where OpenSSH requires them sorted and unique,
 * and it models principals as its own Identity objects (host/user) that would turn a principal such
 * as `*` into a wildcard. The format itself is a dozen RFC 4251 fields, so the encoder is small; it is
 * checked against `ssh-keygen -s` / `ssh-keygen -L` and a real sshd in test/ssh/.
 */

export type SshCertificateType = "user" | "host";
export const SSH_CERTIFICATE_TYPES = ["user", "host"] as const;

/** The extensions `ssh-keygen -s` gives a user certificate by default. */
export const DEFAULT_USER_EXTENSIONS = [
  "permit-X11-forwarding",
  "permit-agent-forwarding",
  "permit-port-forwarding",
  "permit-pty",
  "permit-user-rc",
] as const;
export const KNOWN_EXTENSIONS = [...DEFAULT_USER_EXTENSIONS, "no-touch-required"] as const;
export const KNOWN_CRITICAL_OPTIONS = ["force-command", "source-address", "verify-required"] as const;

export interface CertificateFields {
  key: SshPublicKey;
  type: SshCertificateType;
  /** Non-zero unsigned 64-bit. */
  serial: bigint;
  keyId: string;
  principals: readonly string[];
  validAfter: Date;
  validBefore: Date;
  /** Name → value (`verify-required` has no value: ""). */
  criticalOptions: Readonly<Record<string, string>>;
  /** Flag extensions (no data). User certificates only. */
  extensions: readonly string[];
}

export interface DecodedCertificate extends Omit<CertificateFields, "key"> {
  certType: string;
  key: SshPublicKey;
  nonce: Buffer;
  signatureKey: SshPublicKey;
  /** The signature blob (algorithm + signature). */
  signature: Buffer;
  /** The signed part of the blob. */
  signedData: Buffer;
  blob: Buffer;
}

const TYPE_CODES: Record<SshCertificateType, number> = { user: 1, host: 2 };

export function certTypeName(keyType: string): string {
  // "sk-ssh-ed25519@openssh.com" → "sk-ssh-ed25519-cert-v01@openssh.com"
  return keyType.endsWith("@openssh.com")
    ? keyType.replace(/@openssh\.com$/, "-cert-v01@openssh.com")
    : `${keyType}-cert-v01@openssh.com`;
}

/** A fresh random serial: 64 bits, never 0 (KRLs cannot revoke serial 0). */
export function randomSshSerial(): bigint {
  for (;;) {
    const serial = randomBytes(8).readBigUInt64BE(0);
    if (serial !== 0n) return serial;
  }
}

/** Encode and sign a certificate with a fresh random nonce; returns the wire blob. */
export function signCertificate(fields: CertificateFields, ca: SshCaKey): Buffer {
  const body = encodeCertificateBody(fields, randomBytes(32), ca.publicBlob);
  return Buffer.concat([body, new SshWriter().string(ca.sign(body)).toBuffer()]);
}

/** The signed part of a certificate: every field up to and including the signature key. */
export function encodeCertificateBody(
  fields: CertificateFields,
  nonce: Buffer,
  caPublicBlob: Buffer,
): Buffer {
  const toSeconds = (d: Date) => BigInt(Math.floor(d.getTime() / 1000));
  const principals = new SshWriter();
  for (const p of fields.principals) principals.string(p);
  const critical = new SshWriter();
  for (const name of Object.keys(fields.criticalOptions).sort()) {
    const value = fields.criticalOptions[name]!;
    critical.string(name).string(value === "" ? Buffer.alloc(0) : new SshWriter().string(value).toBuffer());
  }
  const extensions = new SshWriter();
  for (const name of [...new Set(fields.extensions)].sort()) extensions.string(name).string(Buffer.alloc(0));

  return new SshWriter()
    .string(certTypeName(fields.key.type))
    .string(nonce)
    .raw(fields.key.fields)
    .uint64(fields.serial)
    .uint32(TYPE_CODES[fields.type])
    .string(fields.keyId)
    .string(principals.toBuffer())
    .uint64(toSeconds(fields.validAfter))
    .uint64(toSeconds(fields.validBefore))
    .string(critical.toBuffer())
    .string(extensions.toBuffer())
    .string(Buffer.alloc(0))
    .string(caPublicBlob)
    .toBuffer();
}

export function certificateLine(blob: Buffer, comment?: string): string {
  const type = new SshReader(blob, "certificate").text();
  return `${type} ${blob.toString("base64")}${comment ? ` ${comment}` : ""}`;
}

/** Decode a `*-cert-v01@openssh.com` line. Checks the structure, not the signature. */
export function parseCertificateLine(line: string): DecodedCertificate {
  const parts = line.trim().split(/[ \t]+/);
  if (parts.length < 2 || !parts[0]!.endsWith("-cert-v01@openssh.com")) {
    throw new ValidationError("ssh_certificate_invalid", "expected an OpenSSH certificate line");
  }
  const blob = Buffer.from(parts[1]!, "base64");
  const decoded = decodeCertificate(blob);
  if (decoded.certType !== parts[0]) {
    throw new ValidationError("ssh_certificate_invalid", "the certificate type does not match the blob");
  }
  return decoded;
}

export function decodeCertificate(blob: Buffer): DecodedCertificate {
  try {
    const r = new SshReader(blob, "certificate");
    const certType = r.text();
    const keyType = certType.replace(/-cert-v01@openssh\.com$/, "");
    const plainType = keyType.startsWith("sk-") ? `${keyType}@openssh.com` : keyType;
    const nonce = r.string();
    const fieldsStart = blobOffset(blob, r);
    // read the key's fields by re-parsing them as a plain key blob
    skipKeyFields(plainType, r);
    const fields = blob.subarray(fieldsStart, blobOffset(blob, r));
    const key = parseSshPublicKeyBlob(Buffer.concat([new SshWriter().string(plainType).toBuffer(), fields]));
    const serial = r.uint64();
    const typeCode = r.uint32();
    const type = typeCode === 1 ? "user" : typeCode === 2 ? "host" : undefined;
    if (!type) throw new Error(`unknown certificate type ${typeCode}`);
    const keyId = r.text();
    const principals: string[] = [];
    const pr = new SshReader(r.string(), "principals");
    while (!pr.atEnd) principals.push(pr.text());
    const validAfter = secondsToDate(r.uint64());
    const validBefore = secondsToDate(r.uint64());
    const criticalOptions: Record<string, string> = {};
    const cr = new SshReader(r.string(), "critical options");
    while (!cr.atEnd) {
      const name = cr.text();
      const data = cr.string();
      criticalOptions[name] = data.length === 0 ? "" : new SshReader(data, name).text();
    }
    const extensions: string[] = [];
    const er = new SshReader(r.string(), "extensions");
    while (!er.atEnd) {
      extensions.push(er.text());
      er.string();
    }
    r.string(); // reserved
    const signatureKey = parseSshPublicKeyBlob(r.string());
    const signedData = blob.subarray(0, blobOffset(blob, r));
    const signature = r.string();
    r.end();
    return {
      certType,
      key,
      nonce,
      serial,
      type,
      keyId,
      principals,
      validAfter,
      validBefore,
      criticalOptions,
      extensions,
      signatureKey,
      signature,
      signedData,
      blob,
    };
  } catch (e) {
    if (e instanceof ValidationError && e.code !== "ssh_format_invalid") throw e;
    throw new ValidationError(
      "ssh_certificate_invalid",
      `not a valid OpenSSH certificate: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
}

function blobOffset(blob: Buffer, r: SshReader): number {
  return blob.length - r.remaining;
}

/** Skip over the key fields of `type` (their layout depends on the type). */
function skipKeyFields(type: string, r: SshReader): void {
  switch (type) {
    case "ssh-ed25519":
      r.string();
      return;
    case "sk-ssh-ed25519@openssh.com":
      r.string();
      r.string();
      return;
    case "ssh-rsa":
      r.string();
      r.string();
      return;
    case "sk-ecdsa-sha2-nistp256@openssh.com":
      r.string();
      r.string();
      r.string();
      return;
    default:
      if (type.startsWith("ecdsa-sha2-")) {
        r.string();
        r.string();
        return;
      }
      throw new ValidationError(
        "ssh_key_unsupported",
        `unsupported certificate key type ${type.slice(0, 60)}`,
      );
  }
}

function secondsToDate(s: bigint): Date {
  // 0xffffffffffffffff means "forever"; clamp to what a Date holds
  const max = 8_640_000_000_000n;
  return new Date(Number(s > max ? max : s) * 1000);
}
