import { X509Certificate, createPrivateKey, createPublicKey } from "node:crypto";
import { ValidationError } from "./errors.js";

/** What certfleet needs to know about a certificate, read with Node's own X.509 parser. */
export interface CertificateInfo {
  notBefore: Date;
  notAfter: Date;
  /** Lowercase hex, no leading zeros stripped beyond what the DER has. */
  serial: string;
  /** DNS names from the subjectAltName extension, lowercase. */
  dnsNames: string[];
  subject: string;
  issuer: string;
  fingerprint256: string;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Split a PEM bundle into its certificate blocks (each ending with a newline). */
export function splitPemChain(pem: string): string[] {
  return (pem.match(PEM_CERT) ?? []).map((b) => b.trim() + "\n");
}

export function parseCertificate(pem: string): CertificateInfo {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch (e) {
    throw new ValidationError("certificate_invalid", "not a valid PEM certificate", {
      reason: e instanceof Error ? e.message : String(e),
    });
  }
  const dnsNames = (cert.subjectAltName ?? "")
    .split(/,\s*/)
    .filter((s) => s.startsWith("DNS:"))
    .map((s) => s.slice(4).toLowerCase());
  return {
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    serial: cert.serialNumber.toLowerCase(),
    dnsNames,
    subject: cert.subject,
    issuer: cert.issuer,
    fingerprint256: cert.fingerprint256,
  };
}

/** True when the private key belongs to the certificate's public key. */
export function keyMatchesCertificate(privateKeyPem: string, certPem: string): boolean {
  const cert = new X509Certificate(certPem);
  const fromKey = createPublicKey(createPrivateKey(privateKeyPem)).export({ type: "spki", format: "der" });
  const fromCert = cert.publicKey.export({ type: "spki", format: "der" });
  return fromKey.equals(fromCert);
}
