import { AsnConvert } from "@peculiar/asn1-schema";
import { Certificate } from "@peculiar/asn1-x509";
import { X509Certificate as PeculiarCertificate, AuthorityKeyIdentifierExtension } from "@peculiar/x509";
import { z } from "zod";
import { ValidationError } from "../core/errors.js";
import type { RenewalInfo } from "../issuance/issuer.js";

/**
 * ACME Renewal Information (RFC 9773): the certificate identifier and the renewalInfo response.
 *
 * The identifier is base64url(AKI keyIdentifier) "." base64url(serial), where the serial is the DER
 * INTEGER's content bytes exactly as encoded — a leading 0x00 that keeps a serial positive stays.
 * Parsers that return the serial as a number (Node's X509Certificate, @peculiar/x509's
 * `serialNumber`) drop that byte, so the serial's bytes are taken from @peculiar/asn1-x509's
 * structure, which keeps the INTEGER's content as encoded.
 */

/**
 * RFC 9773 certificate identifier of a PEM certificate. Throws ValidationError `certificate_invalid`
 * for unparsable input and `ari_cert_id_unavailable` when it has no authorityKeyIdentifier keyId.
 */
export function ariCertId(certPem: string): string {
  let cert: PeculiarCertificate;
  try {
    cert = new PeculiarCertificate(certPem);
  } catch (e) {
    throw new ValidationError("certificate_invalid", "not a valid PEM certificate", {
      reason: e instanceof Error ? e.message : String(e),
    });
  }
  const keyId = cert.getExtension(AuthorityKeyIdentifierExtension)?.keyId;
  if (!keyId) {
    throw new ValidationError("ari_cert_id_unavailable", "the certificate has no authority key identifier");
  }
  const serial = derSerialBytes(new Uint8Array(cert.rawData));
  return `${Buffer.from(keyId, "hex").toString("base64url")}.${Buffer.from(serial).toString("base64url")}`;
}

/** Content bytes of tbsCertificate.serialNumber, as encoded (@peculiar/asn1-x509 keeps them raw). */
function derSerialBytes(der: Uint8Array): Uint8Array {
  try {
    return new Uint8Array(AsnConvert.parse(der, Certificate).tbsCertificate.serialNumber);
  } catch {
    throw new ValidationError("certificate_invalid", "malformed certificate DER");
  }
}

const isoDate = z
  .string()
  .refine((s) => !Number.isNaN(Date.parse(s)), "not a date")
  .transform((s) => new Date(s));

/** The renewalInfo response body (RFC 9773 §4.2). Unknown fields are ignored. */
export const renewalInfoResponseSchema = z
  .object({
    suggestedWindow: z.object({ start: isoDate, end: isoDate }),
    explanationURL: z.url().optional(),
  })
  .refine((r) => r.suggestedWindow.end.getTime() > r.suggestedWindow.start.getTime(), {
    message: "suggestedWindow.end must be after start",
  });

/** Parse a renewalInfo body; undefined when it does not follow RFC 9773. */
export function parseRenewalInfo(
  certId: string,
  body: unknown,
  retryAfterSeconds: number | undefined,
): RenewalInfo | undefined {
  const parsed = renewalInfoResponseSchema.safeParse(body);
  if (!parsed.success) return undefined;
  const { suggestedWindow, explanationURL } = parsed.data;
  return {
    certId,
    windowStart: suggestedWindow.start,
    windowEnd: suggestedWindow.end,
    ...(explanationURL ? { explanationUrl: explanationURL } : {}),
    ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}),
  };
}
