import { X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import { keyMatchesCertificate } from "../../../src/core/certificate-info.js";

/**
 * What "valid files on disk" means in these tests: the certificate and key at the configured paths
 * parse, belong together, name the expected DNS names, and the chain verifies the leaf up to `caPem`.
 */
export async function readPair(certPath: string, keyPath: string) {
  const certPem = await readFile(certPath, "utf8");
  const keyPem = await readFile(keyPath, "utf8");
  const leaf = new X509Certificate(certPem);
  return {
    certPem,
    keyPem,
    leaf,
    matches: keyMatchesCertificate(keyPem, certPem),
    names: (leaf.subjectAltName ?? "")
      .split(/,\s*/)
      .filter((s) => s.startsWith("DNS:"))
      .map((s) => s.slice(4))
      .sort(),
  };
}

/** The fullchain's leaf is signed by the next certificate, which is signed by the root. */
export function chainVerifies(fullchainPem: string, rootPem: string): boolean {
  const blocks = fullchainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  const certs = blocks.map((b) => new X509Certificate(b));
  const root = new X509Certificate(rootPem);
  const all = [...certs, root];
  for (let i = 0; i < certs.length; i++) {
    const issuer = all.slice(i + 1).find((c) => certs[i]!.checkIssued(c));
    if (!issuer || !certs[i]!.verify(issuer.publicKey)) return false;
  }
  return certs.length > 0;
}
