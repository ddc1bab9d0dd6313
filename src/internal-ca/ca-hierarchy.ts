import { X509Certificate as NodeX509Certificate, randomBytes, webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";
import type { Clock } from "../core/clock.js";
import { CertfleetError, throwIfAborted } from "../core/errors.js";
import { keyMatchesCertificate } from "../core/certificate-info.js";
import { generatePrivateKey, importSigningKey, type SigningKey } from "../core/keys.js";
import type { Logger } from "../core/logger.js";
import type { KeyValueStore } from "../storage/storage.js";
import { intermediateExtensions, rootExtensions } from "./certificate-profiles.js";

/**
 * The embedded CA's two-level hierarchy, kept in Storage under the namespace "internal-ca":
 *
 *   root-key / intermediate-key    PKCS#8 PEM, written with { secret: true }
 *   root-cert / intermediate-cert  PEM
 *
 * Each of the four values is created once, in that order, with { ifAbsent: true }, and every step
 * continues from the value that won rather than the one this process made. So replicas racing on an
 * empty store all end up with the same hierarchy, and a start that died half-way is finished by the
 * next one. A loaded hierarchy whose parts do not belong together fails loudly (`internal_ca_corrupt`).
 */

export const CA_NAMESPACE = "internal-ca";
const ROOT_KEY = "root-key";
const ROOT_CERT = "root-cert";
const INTERMEDIATE_KEY = "intermediate-key";
const INTERMEDIATE_CERT = "intermediate-cert";

const DAY_MS = 86_400_000;
export const ROOT_VALIDITY_DAYS = 3650;
export const INTERMEDIATE_VALIDITY_DAYS = 1825;
/** Certificates start this much in the past so that clients with a slow clock accept them at once. */
export const BACKDATE_MS = 60_000;

export interface CaHierarchy {
  rootPem: string;
  intermediatePem: string;
  intermediate: {
    cert: x509.X509Certificate;
    signingKey: SigningKey;
    /** Hex subjectKeyIdentifier: the authorityKeyIdentifier of everything it signs. */
    keyId: string;
  };
}

export interface HierarchyDeps {
  store: Pick<KeyValueStore, "getValue" | "putValue">;
  clock: Clock;
  logger: Logger;
  /** CN of the root; the intermediate is "<name> intermediate". */
  name: string;
}

export async function loadOrCreateHierarchy(deps: HierarchyDeps, signal?: AbortSignal): Promise<CaHierarchy> {
  const { store } = deps;
  const created: string[] = [];
  const once = async (key: string, secret: boolean, make: () => Promise<string>): Promise<string> => {
    throwIfAborted(signal);
    const existing = await store.getValue(CA_NAMESPACE, key, signal);
    if (existing !== undefined) return existing;
    const mine = await make();
    const winner = await store.putValue(CA_NAMESPACE, key, mine, { secret, ifAbsent: true }, signal);
    if (winner === mine) created.push(key);
    return winner;
  };

  const rootKeyPem = await once(ROOT_KEY, true, () => generatePrivateKey("ec384"));
  const rootPem = await once(ROOT_CERT, false, () => createRoot(deps, rootKeyPem));
  const intermediateKeyPem = await once(INTERMEDIATE_KEY, true, () => generatePrivateKey("ec256"));
  const intermediatePem = await once(INTERMEDIATE_CERT, false, () =>
    createIntermediate(deps, rootKeyPem, rootPem, intermediateKeyPem),
  );

  checkHierarchy(rootKeyPem, rootPem, intermediateKeyPem, intermediatePem, deps.clock);
  const cert = new x509.X509Certificate(intermediatePem);
  const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension);
  if (!ski) throw corrupt("the intermediate has no subjectKeyIdentifier");

  const rootFingerprint = new NodeX509Certificate(rootPem).fingerprint256;
  if (created.length > 0) deps.logger.info({ rootFingerprint, created }, "embedded CA: created CA material");
  else deps.logger.debug({ rootFingerprint }, "embedded CA: loaded");
  const remainingDays = (cert.notAfter.getTime() - deps.clock.now().getTime()) / DAY_MS;
  if (remainingDays < 90) {
    deps.logger.warn(
      { notAfter: cert.notAfter, remainingDays: Math.floor(remainingDays) },
      "embedded CA: the intermediate expires soon",
    );
  }

  return {
    rootPem,
    intermediatePem,
    intermediate: { cert, signingKey: await importSigningKey(intermediateKeyPem), keyId: ski.keyId },
  };
}

async function createRoot(deps: HierarchyDeps, rootKeyPem: string): Promise<string> {
  const key = await importSigningKey(rootKeyPem);
  const spki = await webcrypto.subtle.exportKey("spki", key.keys.publicKey);
  const now = deps.clock.now().getTime();
  const name: x509.JsonName = [{ CN: [deps.name] }];
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject: name,
      issuer: name,
      notBefore: new Date(now - BACKDATE_MS),
      notAfter: new Date(now + ROOT_VALIDITY_DAYS * DAY_MS),
      publicKey: spki,
      signingKey: key.keys.privateKey,
      signingAlgorithm: key.signingAlgorithm,
      extensions: await rootExtensions(spki),
    },
    webcrypto,
  );
  return toPem(cert);
}

async function createIntermediate(
  deps: HierarchyDeps,
  rootKeyPem: string,
  rootPem: string,
  intermediateKeyPem: string,
): Promise<string> {
  const rootKey = await importSigningKey(rootKeyPem);
  const root = new x509.X509Certificate(rootPem);
  const rootKeyId = root.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
  if (!rootKeyId) throw corrupt("the root has no subjectKeyIdentifier");
  const spki = await webcrypto.subtle.exportKey(
    "spki",
    (await importSigningKey(intermediateKeyPem)).keys.publicKey,
  );
  const now = deps.clock.now().getTime();
  const notAfter = Math.min(now + INTERMEDIATE_VALIDITY_DAYS * DAY_MS, root.notAfter.getTime());
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject: [{ CN: [`${deps.name} intermediate`] }],
      issuer: root.subjectName,
      notBefore: new Date(now - BACKDATE_MS),
      notAfter: new Date(notAfter),
      publicKey: spki,
      signingKey: rootKey.keys.privateKey,
      signingAlgorithm: rootKey.signingAlgorithm,
      extensions: await intermediateExtensions(spki, rootKeyId),
    },
    webcrypto,
  );
  return toPem(cert);
}

/** Keys belong to their certificates, the root signed the intermediate, and the intermediate still works. */
function checkHierarchy(
  rootKeyPem: string,
  rootPem: string,
  intermediateKeyPem: string,
  intermediatePem: string,
  clock: Clock,
): void {
  let root: NodeX509Certificate;
  let intermediate: NodeX509Certificate;
  try {
    root = new NodeX509Certificate(rootPem);
    intermediate = new NodeX509Certificate(intermediatePem);
    if (!keyMatchesCertificate(rootKeyPem, rootPem))
      throw corrupt("the stored root key does not match the root certificate");
    if (!keyMatchesCertificate(intermediateKeyPem, intermediatePem)) {
      throw corrupt("the stored intermediate key does not match the intermediate certificate");
    }
  } catch (e) {
    throw e instanceof CertfleetError ? e : corrupt(e instanceof Error ? e.message : String(e));
  }
  if (!intermediate.checkIssued(root) || !intermediate.verify(root.publicKey)) {
    throw corrupt("the stored intermediate was not issued by the stored root");
  }
  if (new Date(intermediate.validTo).getTime() <= clock.now().getTime()) {
    throw new CertfleetError(
      "internal_ca_expired",
      "the embedded CA's intermediate certificate has expired",
      {
        status: 500,
        internal: `intermediate notAfter ${intermediate.validTo}`,
      },
    );
  }
}

function corrupt(internal: string): CertfleetError {
  return new CertfleetError("internal_ca_corrupt", "the embedded CA's stored material is inconsistent", {
    status: 500,
    internal,
  });
}

/** 128 random bits; @peculiar/x509 encodes it as a positive DER INTEGER. */
export function randomSerial(): string {
  return randomBytes(16).toString("hex");
}

export function toPem(cert: x509.X509Certificate): string {
  return cert.toString("pem").trim() + "\n";
}
