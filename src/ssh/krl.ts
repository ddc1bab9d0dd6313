import { createHash } from "node:crypto";
import { SshWriter } from "./wire.js";

/**
 * An OpenSSH key revocation list (PROTOCOL.krl) as sshd's `RevokedKeys` and `ssh-keygen -Q` read it:
 * the header, one certificates section per CA key (revoked serials as one sorted serial list, plus
 * revoked key ids), and one SHA-256 fingerprint section for revoked plain keys, sorted as the format
 * requires. KRLs are unsigned (OpenSSH ≥ 9.4 refuses signed ones); they are served over HTTPS.
 */

export interface KrlContent {
  /** Grows with every change (the revocation log's length). */
  version: bigint;
  generatedAt: Date;
  comment?: string;
  certificates: readonly { caPublicBlob: Buffer; serials: readonly bigint[]; keyIds?: readonly string[] }[];
  /** Plain public-key blobs revoked as keys (every certificate of them, from any CA). */
  keys: readonly Buffer[];
}

const MAGIC = 0x5353484b524c0a00n; // "SSHKRL\n\0"
const FORMAT_VERSION = 1;
const SECTION_CERTIFICATES = 1;
const SECTION_FINGERPRINT_SHA256 = 5;
const CERT_SERIAL_LIST = 0x20;
const CERT_KEY_ID = 0x23;

export function encodeKrl(content: KrlContent): Buffer {
  const w = new SshWriter()
    .uint64(MAGIC)
    .uint32(FORMAT_VERSION)
    .uint64(content.version)
    .uint64(BigInt(Math.floor(content.generatedAt.getTime() / 1000)))
    .uint64(0n)
    .string("")
    .string(content.comment ?? "");

  for (const section of content.certificates) {
    const serials = [...new Set(section.serials)]
      .filter((s) => s !== 0n)
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const keyIds = [...new Set(section.keyIds ?? [])].sort();
    if (serials.length === 0 && keyIds.length === 0) continue;
    const body = new SshWriter().string(section.caPublicBlob).string("");
    if (serials.length > 0) {
      const list = new SshWriter();
      for (const s of serials) list.uint64(s);
      body.byte(CERT_SERIAL_LIST).string(list.toBuffer());
    }
    if (keyIds.length > 0) {
      const list = new SshWriter();
      for (const id of keyIds) list.string(id);
      body.byte(CERT_KEY_ID).string(list.toBuffer());
    }
    w.byte(SECTION_CERTIFICATES).string(body.toBuffer());
  }

  const hashes = [...new Set(content.keys.map((k) => createHash("sha256").update(k).digest("hex")))].sort();
  if (hashes.length > 0) {
    const list = new SshWriter();
    for (const h of hashes) list.string(Buffer.from(h, "hex"));
    w.byte(SECTION_FINGERPRINT_SHA256).string(list.toBuffer());
  }
  return w.toBuffer();
}
