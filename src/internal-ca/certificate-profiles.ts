import { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { crlDistributionPointExtension } from "./crl-extensions.js";

/**
 * The extensions each kind of certificate the embedded CA makes carries. Kept apart from the signing
 * code so the profiles can be read (and reviewed against RFC 5280 / the CA/B Baseline Requirements) in
 * one place. CSR-requested extensions are never copied: the profile alone decides.
 */

const { KeyUsageFlags, ExtendedKeyUsage } = x509;

/** Root: CA, may sign one level of intermediates below it. */
export async function rootExtensions(spkiDer: ArrayBuffer): Promise<x509.Extension[]> {
  return [
    new x509.BasicConstraintsExtension(true, 1, true),
    new x509.KeyUsagesExtension(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign, true),
    await x509.SubjectKeyIdentifierExtension.create(spkiDer, false, webcrypto),
  ];
}

/** Intermediate: CA that may sign only end-entity certificates. */
export async function intermediateExtensions(
  spkiDer: ArrayBuffer,
  rootKeyId: string,
): Promise<x509.Extension[]> {
  return [
    new x509.BasicConstraintsExtension(true, 0, true),
    new x509.KeyUsagesExtension(
      KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign | KeyUsageFlags.digitalSignature,
      true,
    ),
    new x509.AuthorityKeyIdentifierExtension(rootKeyId, false),
    await x509.SubjectKeyIdentifierExtension.create(spkiDer, false, webcrypto),
  ];
}

export interface LeafProfile {
  usage: "serverAuth" | "clientAuth";
  /** RSA keys also get keyEncipherment (TLS 1.2 RSA key exchange). */
  rsaKey: boolean;
  dnsNames: readonly string[];
  ips?: readonly string[];
  uris?: readonly string[];
  issuerKeyId: string;
  /** No CN in the subject (e.g. a first name longer than 64 characters): the SAN becomes critical. */
  emptySubject: boolean;
  /** Where relying parties fetch the issuer's CRL (a cRLDistributionPoints extension), when published. */
  crlUrl?: string;
}

/** End entity: not a CA, one extended key usage, the subject's names in subjectAltName. */
export async function leafExtensions(spkiDer: ArrayBuffer, profile: LeafProfile): Promise<x509.Extension[]> {
  const keyUsage = KeyUsageFlags.digitalSignature | (profile.rsaKey ? KeyUsageFlags.keyEncipherment : 0);
  const eku = profile.usage === "serverAuth" ? ExtendedKeyUsage.serverAuth : ExtendedKeyUsage.clientAuth;
  const san: x509.JsonGeneralNames = [
    ...profile.dnsNames.map((value) => ({ type: "dns" as const, value })),
    ...(profile.ips ?? []).map((value) => ({ type: "ip" as const, value })),
    ...(profile.uris ?? []).map((value) => ({ type: "url" as const, value })),
  ];
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(keyUsage, true),
    new x509.ExtendedKeyUsageExtension([eku], false),
    new x509.AuthorityKeyIdentifierExtension(profile.issuerKeyId, false),
    await x509.SubjectKeyIdentifierExtension.create(spkiDer, false, webcrypto),
  ];
  // RFC 5280 4.2.1.6: with an empty subject the SAN is critical; an empty SAN is not allowed at all.
  if (san.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(san, profile.emptySubject));
  if (profile.crlUrl) extensions.push(crlDistributionPointExtension(profile.crlUrl));
  return extensions;
}
