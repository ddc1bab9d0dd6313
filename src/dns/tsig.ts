import { createHmac, timingSafeEqual } from "node:crypto";
import { canonicalName, listRecords, readName } from "./dns-wire.js";

/**
 * TSIG (RFC 8945): an HMAC over a DNS message and a few "TSIG variables", carried as the last record of
 * the additional section. We sign requests and verify responses (whose MAC also covers the request's
 * MAC, binding the answer to our question). HMAC-MD5 is not offered.
 */

export const TSIG_ALGORITHMS = {
  "hmac-sha1": "sha1",
  "hmac-sha224": "sha224",
  "hmac-sha256": "sha256",
  "hmac-sha384": "sha384",
  "hmac-sha512": "sha512",
} as const;

export type TsigAlgorithm = keyof typeof TSIG_ALGORITHMS;

export interface TsigKey {
  /** Key name as configured on the server, e.g. "certfleet-key" (no trailing dot needed). */
  name: string;
  algorithm: TsigAlgorithm;
  secret: Buffer;
}

/** RFC 8945 §5.2: the allowed clock difference we send, in seconds. */
export const DEFAULT_FUDGE_SECONDS = 300;

/** TSIG error field values (RFC 8945 §3 / IANA RCODE registry). */
export const TSIG_ERROR = { NOERROR: 0, BADSIG: 16, BADKEY: 17, BADTIME: 18, BADTRUNC: 22 } as const;

const TYPE_TSIG = 250;
const CLASS_ANY = 255;

/** Accepts "hmac-sha256", "HMAC-SHA256." (lego and BIND spell it with the trailing dot). */
export function parseTsigAlgorithm(input: string): TsigAlgorithm | undefined {
  const name = input.trim().toLowerCase().replace(/\.$/, "");
  return Object.hasOwn(TSIG_ALGORITHMS, name) ? (name as TsigAlgorithm) : undefined;
}

export interface TsigRecord {
  keyName: string;
  algorithm: string;
  /** Seconds since the epoch. */
  timeSigned: number;
  fudge: number;
  mac: Buffer;
  originalId: number;
  error: number;
  otherData: Buffer;
  /** Offset of the TSIG record in the message it was read from. */
  start: number;
}

function uint48(value: number): Buffer {
  const b = Buffer.alloc(6);
  b.writeUInt16BE(Math.floor(value / 2 ** 32) & 0xffff, 0);
  b.writeUInt32BE(value % 2 ** 32, 2);
  return b;
}

function u16(value: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(value, 0);
  return b;
}

/** The TSIG variables of RFC 8945 §4.3.3, in MAC-input order. */
function tsigVariables(v: {
  keyName: string;
  algorithm: string;
  timeSigned: number;
  fudge: number;
  error: number;
  otherData: Buffer;
}): Buffer {
  return Buffer.concat([
    canonicalName(v.keyName),
    u16(CLASS_ANY),
    Buffer.alloc(4), // TTL 0
    canonicalName(v.algorithm),
    uint48(v.timeSigned),
    u16(v.fudge),
    u16(v.error),
    u16(v.otherData.length),
    v.otherData,
  ]);
}

function computeMac(
  key: TsigKey,
  message: Buffer,
  v: { timeSigned: number; fudge: number; error: number; otherData: Buffer },
  requestMac?: Buffer,
): Buffer {
  const hmac = createHmac(TSIG_ALGORITHMS[key.algorithm], key.secret);
  if (requestMac) hmac.update(Buffer.concat([u16(requestMac.length), requestMac]));
  hmac.update(message);
  hmac.update(tsigVariables({ keyName: key.name, algorithm: key.algorithm, ...v }));
  return hmac.digest();
}

export interface SignOptions {
  /** Seconds since the epoch. */
  timeSigned: number;
  fudge?: number;
  /** Set when signing a response: the MAC of the request it answers. */
  requestMac?: Buffer;
  error?: number;
  otherData?: Buffer;
}

/** Append a TSIG record to `message` (which must not already carry one). Returns the signed message and its MAC. */
export function signMessage(
  message: Buffer,
  key: TsigKey,
  options: SignOptions,
): { signed: Buffer; mac: Buffer } {
  const v = {
    timeSigned: options.timeSigned,
    fudge: options.fudge ?? DEFAULT_FUDGE_SECONDS,
    error: options.error ?? 0,
    otherData: options.otherData ?? Buffer.alloc(0),
  };
  const mac = computeMac(key, message, v, options.requestMac);
  const rdata = Buffer.concat([
    canonicalName(key.algorithm),
    uint48(v.timeSigned),
    u16(v.fudge),
    u16(mac.length),
    mac,
    u16(message.readUInt16BE(0)), // original ID
    u16(v.error),
    u16(v.otherData.length),
    v.otherData,
  ]);
  const head = Buffer.alloc(10);
  head.writeUInt16BE(TYPE_TSIG, 0);
  head.writeUInt16BE(CLASS_ANY, 2);
  head.writeUInt32BE(0, 4);
  head.writeUInt16BE(rdata.length, 8);
  const signed = Buffer.concat([message, canonicalName(key.name), head, rdata]);
  signed.writeUInt16BE(message.readUInt16BE(10) + 1, 10);
  return { signed, mac };
}

/** The TSIG record of a message, if its last additional record is one. Throws RangeError on malformed input. */
export function readTsig(message: Buffer): TsigRecord | undefined {
  const records = listRecords(message);
  const last = records[records.length - 1];
  if (!last || last.section !== "additional" || message.readUInt16BE(last.typeOffset) !== TYPE_TSIG)
    return undefined;
  let at = last.typeOffset + 10;
  const algorithm = readName(message, at);
  // Algorithm names are never compressed (RFC 8945 §4.2), so the wire length is the label walk.
  while (message[at] !== 0) at += 1 + message[at]!;
  at += 1;
  const timeSigned = message.readUInt16BE(at) * 2 ** 32 + message.readUInt32BE(at + 2);
  const fudge = message.readUInt16BE(at + 6);
  const macSize = message.readUInt16BE(at + 8);
  const mac = message.subarray(at + 10, at + 10 + macSize);
  at += 10 + macSize;
  const originalId = message.readUInt16BE(at);
  const error = message.readUInt16BE(at + 2);
  const otherLen = message.readUInt16BE(at + 4);
  const otherData = message.subarray(at + 6, at + 6 + otherLen);
  if (at + 6 + otherLen !== last.end) throw new RangeError("malformed TSIG rdata");
  return {
    keyName: readName(message, last.start),
    algorithm,
    timeSigned,
    fudge,
    mac: Buffer.from(mac),
    originalId,
    error,
    otherData: Buffer.from(otherData),
    start: last.start,
  };
}

export type TsigVerifyStatus = "ok" | "unsigned" | "badkey" | "badsig" | "badtrunc" | "badtime";

export interface VerifyOptions {
  /** Seconds since the epoch, to check Time Signed ± fudge. */
  now: number;
  /** When verifying a response: the MAC our request carried. */
  requestMac?: Buffer;
}

/**
 * Check a message's TSIG with `key`. "unsigned" means no TSIG record, or one with an empty MAC (how a
 * server answers BADSIG / BADKEY); the record, when present, is returned so its `error` can be read.
 */
export function verifyMessage(
  message: Buffer,
  key: TsigKey,
  options: VerifyOptions,
): { status: TsigVerifyStatus; tsig?: TsigRecord } {
  const tsig = readTsig(message);
  if (!tsig) return { status: "unsigned" };
  if (tsig.mac.length === 0) return { status: "unsigned", tsig };
  if (
    tsig.keyName !== key.name.toLowerCase().replace(/\.$/, "") ||
    parseTsigAlgorithm(tsig.algorithm) !== key.algorithm
  ) {
    return { status: "badkey", tsig };
  }
  // The MAC input is the message without its TSIG record, ARCOUNT one lower, and the original ID.
  const stripped = Buffer.from(message.subarray(0, tsig.start));
  stripped.writeUInt16BE(message.readUInt16BE(10) - 1, 10);
  stripped.writeUInt16BE(tsig.originalId, 0);
  const expected = computeMac(key, stripped, tsig, options.requestMac);
  // RFC 8945 §5.2.2.1: a truncated MAC must keep at least half the hash and at least 10 bytes.
  const minimum = Math.max(10, Math.ceil(expected.length / 2));
  if (tsig.mac.length > expected.length || tsig.mac.length < minimum) return { status: "badtrunc", tsig };
  if (!timingSafeEqual(tsig.mac, expected.subarray(0, tsig.mac.length))) return { status: "badsig", tsig };
  if (Math.abs(options.now - tsig.timeSigned) > tsig.fudge) return { status: "badtime", tsig };
  return { status: "ok", tsig };
}
