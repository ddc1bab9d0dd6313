/**
 * Just enough DNS wire-format walking for what dns-packet does not do: find where each resource record
 * starts (to strip or patch one), and write names in canonical form (for TSIG's MAC input).
 */

export type WireSection = "question" | "answer" | "authority" | "additional";

export interface WireRecord {
  section: Exclude<WireSection, "question">;
  /** Offset of the record's owner name. */
  start: number;
  /** Offset of TYPE (just after the owner name). */
  typeOffset: number;
  /** Offset just past RDATA. */
  end: number;
}

/** Offset just past the (possibly compressed) name at `offset`. */
export function skipName(buf: Buffer, offset: number): number {
  let at = offset;
  for (;;) {
    if (at >= buf.length) throw new RangeError("dns message truncated inside a name");
    const len = buf[at]!;
    if (len === 0) return at + 1;
    if ((len & 0xc0) === 0xc0) return at + 2;
    if ((len & 0xc0) !== 0) throw new RangeError("dns message has an unknown label type");
    at += 1 + len;
  }
}

/** Every resource record in the message, in order, with its offsets. */
export function listRecords(buf: Buffer): WireRecord[] {
  if (buf.length < 12) throw new RangeError("dns message shorter than its header");
  const counts = [
    buf.readUInt16BE(4),
    buf.readUInt16BE(6),
    buf.readUInt16BE(8),
    buf.readUInt16BE(10),
  ] as const;
  let at = 12;
  for (let i = 0; i < counts[0]; i++) at = skipName(buf, at) + 4;
  const sections = ["answer", "authority", "additional"] as const;
  const out: WireRecord[] = [];
  for (let s = 0; s < 3; s++) {
    for (let i = 0; i < counts[s + 1]!; i++) {
      const start = at;
      const typeOffset = skipName(buf, at);
      if (typeOffset + 10 > buf.length) throw new RangeError("dns message truncated inside a record");
      const end = typeOffset + 10 + buf.readUInt16BE(typeOffset + 8);
      if (end > buf.length) throw new RangeError("dns message truncated inside rdata");
      out.push({ section: sections[s]!, start, typeOffset, end });
      at = end;
    }
  }
  return out;
}

/** Canonical (lowercase, uncompressed, absolute) wire form of a name, as DNSSEC and TSIG hash it. */
export function canonicalName(name: string): Buffer {
  const trimmed = name.replace(/\.$/, "").toLowerCase();
  const labels = trimmed === "" ? [] : trimmed.split(".");
  const parts: Buffer[] = [];
  for (const label of labels) {
    const bytes = Buffer.from(label, "ascii");
    if (bytes.length === 0 || bytes.length > 63) throw new RangeError(`invalid dns label in "${name}"`);
    parts.push(Buffer.from([bytes.length]), bytes);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

/** Read an uncompressed-or-compressed name at `offset` as dotted text (lowercase, no trailing dot). */
export function readName(buf: Buffer, offset: number): string {
  const labels: string[] = [];
  let at = offset;
  for (let jumps = 0; jumps < 64;) {
    const len = buf[at];
    if (len === undefined) throw new RangeError("dns message truncated inside a name");
    if (len === 0) return labels.join(".").toLowerCase();
    if ((len & 0xc0) === 0xc0) {
      at = buf.readUInt16BE(at) & 0x3fff;
      jumps++;
      continue;
    }
    labels.push(buf.toString("ascii", at + 1, at + 1 + len));
    at += 1 + len;
  }
  throw new RangeError("dns name has too many compression pointers");
}
