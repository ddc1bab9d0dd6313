import { AsnConvert } from "@peculiar/asn1-schema";
import { CRLNumber, id_ce_cRLNumber } from "@peculiar/asn1-x509";
import * as x509 from "@peculiar/x509";

/**
 * The CRL-related extensions the embedded CA writes (RFC 5280 §5.2.3 and §4.2.1.13), encoded by
 * @peculiar/asn1-x509 / @peculiar/x509 — no hand-made DER.
 */

/** cRLNumber: a non-critical, monotonically increasing INTEGER (up to 2^53 - 1: ours are milliseconds). */
export function crlNumberExtension(value: bigint): x509.Extension {
  if (value < 0n) throw new RangeError("a CRL number is never negative");
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError("CRL number too large");
  return new x509.Extension(id_ce_cRLNumber, false, AsnConvert.serialize(new CRLNumber(Number(value))));
}

/** cRLDistributionPoints with one point whose fullName is a single URI (non-critical). */
export function crlDistributionPointExtension(uri: string): x509.Extension {
  return new x509.CRLDistributionPointsExtension([uri], false);
}
