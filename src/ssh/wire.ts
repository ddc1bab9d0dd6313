import { CertfleetError } from "../core/errors.js";

/**
 * The SSH wire types of RFC 4251 §5 (byte, boolean, uint32, uint64, string, mpint, name-list), which
 * every OpenSSH blob here is made of: public keys, certificates (PROTOCOL.certkeys), signatures,
 * KRLs (PROTOCOL.krl) and the agent protocol. The reader refuses to read past the end and reports a
 * malformed blob as `ssh_format_invalid` (400), so untrusted input never throws anything else.
 */

export class SshWriter {
  private readonly parts: Buffer[] = [];

  byte(v: number): this {
    this.parts.push(Buffer.from([v & 0xff]));
    return this;
  }

  boolean(v: boolean): this {
    return this.byte(v ? 1 : 0);
  }

  uint32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v >>> 0);
    this.parts.push(b);
    return this;
  }

  uint64(v: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt.asUintN(64, v));
    this.parts.push(b);
    return this;
  }

  /** A length-prefixed byte string (or UTF-8 text). */
  string(v: Uint8Array | string): this {
    const data = typeof v === "string" ? Buffer.from(v, "utf8") : Buffer.from(v);
    this.uint32(data.length);
    this.parts.push(data);
    return this;
  }

  /** A non-negative multiple-precision integer given as unsigned big-endian bytes. */
  mpint(unsigned: Uint8Array): this {
    let start = 0;
    while (start < unsigned.length && unsigned[start] === 0) start++;
    let body = Buffer.from(unsigned.subarray(start));
    if (body.length > 0 && (body[0]! & 0x80) !== 0) body = Buffer.concat([Buffer.from([0]), body]);
    return this.string(body);
  }

  raw(v: Uint8Array): this {
    this.parts.push(Buffer.from(v));
    return this;
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.parts);
  }
}

export class SshReader {
  private offset = 0;
  constructor(
    private readonly buf: Buffer,
    /** Names the structure in error messages, e.g. "certificate". */
    private readonly what: string,
  ) {}

  get remaining(): number {
    return this.buf.length - this.offset;
  }

  get atEnd(): boolean {
    return this.offset >= this.buf.length;
  }

  private take(n: number): Buffer {
    if (n < 0 || this.offset + n > this.buf.length) throw formatError(`${this.what} is truncated`);
    const out = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  byte(): number {
    return this.take(1)[0]!;
  }

  uint32(): number {
    return this.take(4).readUInt32BE(0);
  }

  uint64(): bigint {
    return this.take(8).readBigUInt64BE(0);
  }

  string(): Buffer {
    return this.take(this.uint32());
  }

  /** A string that must be valid UTF-8 text. */
  text(): string {
    const raw = this.string();
    const text = raw.toString("utf8");
    if (!Buffer.from(text, "utf8").equals(raw))
      throw formatError(`${this.what} holds text that is not UTF-8`);
    return text;
  }

  /** An mpint as unsigned big-endian bytes (negative values are refused). */
  mpint(): Buffer {
    const raw = this.string();
    if (raw.length > 0 && (raw[0]! & 0x80) !== 0) throw formatError(`${this.what} holds a negative mpint`);
    let start = 0;
    while (start < raw.length && raw[start] === 0) start++;
    return raw.subarray(start);
  }

  rest(): Buffer {
    return this.take(this.buf.length - this.offset);
  }

  /** Everything must have been read. */
  end(): void {
    if (!this.atEnd) throw formatError(`${this.what} has trailing data`);
  }
}

export function formatError(message: string): CertfleetError {
  return new CertfleetError("ssh_format_invalid", message, { status: 400 });
}
