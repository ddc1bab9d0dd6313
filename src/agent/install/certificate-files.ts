import { createHash } from "node:crypto";
import { splitPemChain } from "../../core/certificate-info.js";
import type { ResolvedCertificate } from "../config/load-agent-config.js";
import type { Ownership } from "./file-ownership.js";
import type { GenerationFile } from "./generation-store.js";

/**
 * What one certificate's generation holds, rendered from the material the server sent (or the local
 * key). Every generation has the four PEM files; `combined.pem` and `bundle.p12` exist when an output
 * asks for them. Files holding the private key get `key_mode`, the others `mode`.
 */
export interface CertificateMaterial {
  certPem: string;
  /** Issuer chain without the leaf (may be empty). */
  chainPem: string;
  keyPem: string;
}

export const FILES = {
  cert: "cert.pem",
  chain: "chain.pem",
  fullchain: "fullchain.pem",
  key: "key.pem",
  combined: "combined.pem",
  pkcs12: "bundle.p12",
  manifest: "manifest.json",
} as const;

export interface Manifest {
  fingerprint: string;
  serial: string;
  domains: string[];
  notBefore: string;
  notAfter: string;
  renewAt: string;
}

const ensureNewline = (pem: string) => (pem === "" || pem.endsWith("\n") ? pem : pem + "\n");

/**
 * A digest of everything that decides the files' content and attributes: when it is unchanged, nothing
 * is rewritten and the reload command does not run. (PKCS#12 output is randomised, so the inputs are
 * hashed, not the rendered bytes.)
 */
export function materialFingerprint(
  material: CertificateMaterial,
  cert: ResolvedCertificate,
  ownership: Ownership,
): string {
  const h = createHash("sha256");
  for (const part of [material.certPem, material.chainPem, material.keyPem]) h.update(part).update("\0");
  h.update(
    JSON.stringify({
      combined: cert.outputs.combined !== undefined,
      pkcs12: cert.outputs.pkcs12
        ? {
            password: createHash("sha256").update(cert.outputs.pkcs12.password).digest("hex"),
            name: cert.outputs.pkcs12.friendlyName,
          }
        : null,
      mode: cert.mode,
      keyMode: cert.keyMode,
      ownership,
    }),
  );
  return h.digest("hex");
}

export async function renderCertificateFiles(
  material: CertificateMaterial,
  cert: ResolvedCertificate,
  ownership: Ownership,
  manifest: Manifest,
): Promise<GenerationFile[]> {
  const leaf = ensureNewline(material.certPem);
  const chain = splitPemChain(material.chainPem).join("");
  const key = ensureNewline(material.keyPem);
  const publicAttrs = { mode: cert.mode, uid: ownership.uid, gid: ownership.gid };
  const secretAttrs = { mode: cert.keyMode, uid: ownership.uid, gid: ownership.gid };
  const files: GenerationFile[] = [
    { name: FILES.cert, data: leaf, attrs: publicAttrs },
    { name: FILES.chain, data: chain, attrs: publicAttrs },
    { name: FILES.fullchain, data: leaf + chain, attrs: publicAttrs },
    { name: FILES.key, data: key, attrs: secretAttrs },
  ];
  if (cert.outputs.combined)
    files.push({ name: FILES.combined, data: leaf + chain + key, attrs: secretAttrs });
  if (cert.outputs.pkcs12) {
    const { buildPkcs12 } = await import("./pkcs12.js"); // the PKCS#12 writer loads only when a PKCS#12 output exists
    const p12 = buildPkcs12({
      keyPem: key,
      certPems: [leaf, ...splitPemChain(chain)],
      password: cert.outputs.pkcs12.password,
      friendlyName: cert.outputs.pkcs12.friendlyName ?? cert.name,
    });
    files.push({ name: FILES.pkcs12, data: p12, attrs: secretAttrs });
  }
  files.push({
    name: FILES.manifest,
    data: JSON.stringify(manifest, null, 2) + "\n",
    attrs: { mode: 0o644, uid: ownership.uid, gid: ownership.gid },
  });
  return files;
}

/** The operator's configured paths and the generation file each one links to. */
export function configuredLinks(
  cert: ResolvedCertificate,
  currentPath: string,
): { path: string; target: string }[] {
  const links: { path: string; target: string }[] = [];
  const add = (path: string | undefined, file: string) => {
    if (path !== undefined) links.push({ path, target: `${currentPath}/${file}` });
  };
  const pem = cert.outputs.pem;
  add(pem?.cert, FILES.cert);
  add(pem?.chain, FILES.chain);
  add(pem?.fullchain, FILES.fullchain);
  add(pem?.key, FILES.key);
  add(cert.outputs.combined, FILES.combined);
  add(cert.outputs.pkcs12?.path, FILES.pkcs12);
  return links;
}
