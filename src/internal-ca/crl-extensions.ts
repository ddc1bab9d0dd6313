import * as x509 from "@peculiar/x509";

/**
 * The two CRL-related extensions @peculiar/x509 has no class for, DER-encoded by hand (both are a few
 * bytes of fixed structure; RFC 5280 §5.2.3 and §4.2.1.13).
 */

const CRL_NUMBER_OID = "2.5.29.20";
const CRL_DISTRIBUTION_POINTS_OID = "2.5.29.31";

/** cRLNumber: a non-critical, monotonically increasing INTEGER. */
export function crlNumberExtension(value: bigint): x509.Extension {
  return new x509.Extension(CRL_NUMBER_OID, false, derInteger(value));
}

/** cRLDistributionPoints with one point whose fullName is a single URI (non-critical). */
export function crlDistributionPointExtension(uri: string): x509.Extension {
  const name = tlv(0x86, Buffer.from(uri, "ascii")); // [6] uniformResourceIdentifier IA5String
  const fullName = tlv(0xa0, name); // DistributionPointName.fullName [0] GeneralNames
  const distributionPoint = tlv(0xa0, fullName); // DistributionPoint.distributionPoint [0]
  return new x509.Extension(CRL_DISTRIBUTION_POINTS_OID, false, tlv(0x30, tlv(0x30, distributionPoint)));
}

function derInteger(value: bigint): Buffer {
  if (value < 0n) throw new RangeError("a CRL number is never negative");
  let hex = value.toString(16);
  if (hex.length % 2) hex = "0" + hex;
  let bytes = Buffer.from(hex, "hex");
  if (bytes[0]! & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return tlv(0x02, bytes);
}

function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  let length: Buffer;
  if (n < 0x80) length = Buffer.from([n]);
  else if (n < 0x100) length = Buffer.from([0x81, n]);
  else if (n < 0x10000) length = Buffer.from([0x82, n >> 8, n & 0xff]);
  else throw new RangeError("DER value too long");
  return Buffer.concat([Buffer.from([tag]), length, content]);
}
