import type { KeyObject } from "node:crypto";
import { createPrivateKey, createPublicKey, generateKeyPair, verify, webcrypto } from "node:crypto";
import { CertificationRequest } from "@peculiar/asn1-csr";
import { AsnConvert } from "@peculiar/asn1-schema";
import * as x509 from "@peculiar/x509";
import { ValidationError } from "./errors.js";
import type { KeyType } from "./key-types.js";

/**
 * Private keys and PKCS#10 requests. Keys are PKCS#8 PEM strings everywhere in certfleet; the
 * WebCrypto form @peculiar/x509 signs with is derived on demand and never stored.
 *
 * Error codes (ValidationError, 400): csr_invalid, csr_unsupported_san, csr_weak_key, key_invalid.
 */

/** Longest CSR we parse; real ones with 100 names stay far below this. */
export const MAX_CSR_PEM_LENGTH = 64 * 1024;
/** X.520 upper bound for a commonName; longer first names go in the SAN only (as public CAs do). */
export const MAX_COMMON_NAME_LENGTH = 64;

/** Generate a fresh private key as PKCS#8 PEM. */
export function generatePrivateKey(type: KeyType): Promise<string> {
  const privateKeyEncoding = { type: "pkcs8", format: "pem" } as const;
  const publicKeyEncoding = { type: "spki", format: "pem" } as const;
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, _publicKey: string, privateKey: string) =>
      err ? reject(err) : resolve(privateKey);
    switch (type) {
      case "ec256":
      case "ec384": {
        const namedCurve = type === "ec256" ? "P-256" : "P-384";
        return generateKeyPair("ec", { namedCurve, publicKeyEncoding, privateKeyEncoding }, done);
      }
      case "rsa2048":
      case "rsa3072":
      case "rsa4096": {
        const modulusLength = Number(type.slice(3));
        return generateKeyPair(
          "rsa",
          { modulusLength, publicExponent: 0x10001, publicKeyEncoding, privateKeyEncoding },
          done,
        );
      }
      default:
        return reject(new ValidationError("key_type_invalid", "unknown key type", { keyType: String(type) }));
    }
  });
}

/**
 * What certfleet calls this public key: one of KEY_TYPES, or "unknown" for an acceptable key of
 * another size (e.g. RSA 8192) or an algorithm we do not issue for. Accepts a KeyObject or a PEM
 * (public key, private key or certificate).
 */
export function keyTypeOfPublicKey(key: KeyObject | string): KeyType | "unknown" {
  const k = toPublicKeyObject(key);
  const details = k.asymmetricKeyDetails ?? {};
  if (k.asymmetricKeyType === "ec") {
    if (details.namedCurve === "prime256v1") return "ec256";
    if (details.namedCurve === "secp384r1") return "ec384";
  }
  if (k.asymmetricKeyType === "rsa") {
    const bits = details.modulusLength;
    if (bits === 2048) return "rsa2048";
    if (bits === 3072) return "rsa3072";
    if (bits === 4096) return "rsa4096";
  }
  return "unknown";
}

/**
 * Strong enough to certify: RSA (rsaEncryption) with at least 2048 bits, or ECDSA on P-256 / P-384.
 * Everything else (short RSA, other curves, DSA, Ed25519, RSA-PSS-only keys) is refused.
 */
export function isAcceptablePublicKey(key: KeyObject | string): boolean {
  const k = toPublicKeyObject(key);
  const details = k.asymmetricKeyDetails ?? {};
  if (k.asymmetricKeyType === "rsa") return (details.modulusLength ?? 0) >= 2048;
  if (k.asymmetricKeyType === "ec")
    return details.namedCurve === "prime256v1" || details.namedCurve === "secp384r1";
  return false;
}

/** A private key in the WebCrypto form @peculiar/x509 signs with, plus the matching signature algorithm. */
export interface SigningKey {
  keys: webcrypto.CryptoKeyPair;
  /** ECDSA with SHA-256 (P-256) / SHA-384 (P-384), or RSASSA-PKCS1-v1_5 with SHA-256. */
  signingAlgorithm: webcrypto.EcdsaParams | webcrypto.Algorithm;
  keyType: KeyType | "unknown";
}

/**
 * Import a PKCS#8 PEM private key for signing. The private half is not extractable. Throws
 * ValidationError `key_invalid` for anything that is not an acceptable RSA or P-256/P-384 key.
 */
export async function importSigningKey(privateKeyPem: string): Promise<SigningKey> {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(privateKeyPem);
  } catch (e) {
    throw new ValidationError("key_invalid", "not a valid private key", { reason: errorText(e) });
  }
  const publicKey = createPublicKey(privateKey);
  if (!isAcceptablePublicKey(publicKey)) {
    throw new ValidationError(
      "key_invalid",
      "unsupported private key: use RSA >= 2048 bits or ECDSA P-256/P-384",
    );
  }
  const curve = publicKey.asymmetricKeyDetails?.namedCurve;
  const importAlgorithm =
    publicKey.asymmetricKeyType === "ec"
      ? { name: "ECDSA", namedCurve: curve === "secp384r1" ? "P-384" : "P-256" }
      : { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
  const hash = curve === "secp384r1" ? "SHA-384" : "SHA-256";
  const pkcs8 = privateKey.export({ type: "pkcs8", format: "der" });
  const spki = publicKey.export({ type: "spki", format: "der" });
  const keys: webcrypto.CryptoKeyPair = {
    privateKey: await webcrypto.subtle.importKey("pkcs8", pkcs8, importAlgorithm, false, ["sign"]),
    publicKey: await webcrypto.subtle.importKey("spki", spki, importAlgorithm, true, ["verify"]),
  };
  return {
    keys,
    signingAlgorithm:
      importAlgorithm.name === "ECDSA" ? { name: "ECDSA", hash } : { name: importAlgorithm.name },
    keyType: keyTypeOfPublicKey(publicKey),
  };
}

/**
 * Build a PEM PKCS#10 request signed with `privateKeyPem`: CN = names[0] (omitted when longer than 64
 * characters) and every name as a DNS subjectAltName. Names are used as given; normalise them first.
 */
export async function createCsr(privateKeyPem: string, names: readonly string[]): Promise<string> {
  if (names.length === 0) throw new ValidationError("domains_empty", "at least one domain is required");
  const { keys, signingAlgorithm } = await importSigningKey(privateKeyPem);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    {
      name: commonNameSubject(names[0]!),
      keys,
      signingAlgorithm,
      extensions: [new x509.SubjectAlternativeNameExtension(names.map((value) => ({ type: "dns", value })))],
    },
    webcrypto,
  );
  return csr.toString("pem") + "\n";
}

/** A subject holding only `CN=name`, or an empty subject when the name is too long for a CN. */
export function commonNameSubject(name: string): x509.JsonName {
  return name.length <= MAX_COMMON_NAME_LENGTH ? [{ CN: [name] }] : [];
}

export interface ParsedCsr {
  /** CN(s) then DNS SANs, lowercase, without duplicates, in that order. Not otherwise validated. */
  names: string[];
  /** SPKI PEM of the requester's key. */
  publicKeyPem: string;
  keyType: KeyType | "unknown";
}

/**
 * Parse a PEM PKCS#10 request and verify its self-signature (proof that the requester holds the key).
 * Throws ValidationError: `csr_invalid` (not exactly one well-formed request, an unsupported signature
 * algorithm — ECDSA or RSA PKCS#1 v1.5 with SHA-256/384/512 are accepted — or a signature that does not
 * verify), `csr_weak_key` (RSA < 2048 bits, curves other than P-256/P-384, other algorithms),
 * `csr_unsupported_san` (any IP, email, URI or other non-DNS subjectAltName).
 * Other extensions a CSR asks for are ignored: issuers decide a certificate's extensions themselves.
 */
export function parseCsr(csrPem: string): ParsedCsr {
  const known = parsedCsrs.get(csrPem);
  if (known) return known;
  const parsed = parseCsrOnce(csrPem);
  if (parsedCsrs.size >= PARSED_CSR_MEMO) parsedCsrs.delete(parsedCsrs.keys().next().value!);
  parsedCsrs.set(csrPem, parsed);
  return parsed;
}

/**
 * One issuance hands the same CSR to several steps (ACME finalize, the issued-key record, the CA), and
 * a pure-JS parse costs about a millisecond: a request parsed and verified recently is answered from
 * this memo (the exact PEM text as key; failures are not remembered). Parsing is a pure function of
 * that text, so sharing the memo across callers cannot leak anything; results are frozen.
 */
const PARSED_CSR_MEMO = 256;
const parsedCsrs = new Map<string, ParsedCsr>();

function parseCsrOnce(csrPem: string): ParsedCsr {
  const der = csrDer(csrPem);
  const parts = splitSignedDer(der);
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(der);
  } catch (e) {
    throw new ValidationError("csr_invalid", "the CSR cannot be parsed", { reason: errorText(e) });
  }

  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: "der", type: "spki" });
  } catch (e) {
    throw new ValidationError("csr_invalid", "the CSR's public key cannot be read", { reason: errorText(e) });
  }
  if (!isAcceptablePublicKey(publicKey)) {
    throw new ValidationError(
      "csr_weak_key",
      "the CSR's key is too weak or unsupported: use RSA >= 2048 bits or ECDSA P-256/P-384",
      {
        algorithm: publicKey.asymmetricKeyType,
      },
    );
  }

  const algorithm = SIGNATURE_ALGORITHMS[parts.signatureOid];
  if (!algorithm || algorithm.key !== publicKey.asymmetricKeyType) {
    throw new ValidationError("csr_invalid", "the CSR's signature algorithm is not supported", {
      oid: parts.signatureOid,
    });
  }
  let signatureValid = false;
  try {
    signatureValid = verify(
      algorithm.hash,
      parts.tbs,
      { key: publicKey, dsaEncoding: "der" },
      parts.signature,
    );
  } catch {
    signatureValid = false;
  }
  if (!signatureValid) throw new ValidationError("csr_invalid", "the CSR's signature does not verify");

  return Object.freeze({
    names: Object.freeze(csrNames(csr)) as string[],
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
    keyType: keyTypeOfPublicKey(publicKey),
  });
}

/** Signature algorithms accepted on a CSR, by OID. */
const SIGNATURE_ALGORITHMS: Record<string, { key: "ec" | "rsa"; hash: string }> = {
  "1.2.840.10045.4.3.2": { key: "ec", hash: "sha256" },
  "1.2.840.10045.4.3.3": { key: "ec", hash: "sha384" },
  "1.2.840.10045.4.3.4": { key: "ec", hash: "sha512" },
  "1.2.840.113549.1.1.11": { key: "rsa", hash: "sha256" },
  "1.2.840.113549.1.1.12": { key: "rsa", hash: "sha384" },
  "1.2.840.113549.1.1.13": { key: "rsa", hash: "sha512" },
};

function csrNames(csr: x509.Pkcs10CertificateRequest): string[] {
  const names: string[] = csr.subjectName.getField("CN").map((cn) => cn.toLowerCase());
  for (const ext of csr.extensions) {
    if (ext.type !== "2.5.29.17") continue;
    const san = new x509.SubjectAlternativeNameExtension(ext.rawData);
    for (const item of san.names.items) {
      if (item.type !== "dns") {
        throw new ValidationError("csr_unsupported_san", "the CSR may only name DNS names", {
          type: item.type,
        });
      }
      names.push(item.value.toLowerCase());
    }
  }
  return [...new Set(names)];
}

const CSR_PEM =
  /-----BEGIN (NEW )?CERTIFICATE REQUEST-----([A-Za-z0-9+/=\s]+)-----END (NEW )?CERTIFICATE REQUEST-----/g;

/** Exactly one PEM block whose DER is one complete SEQUENCE with nothing after it. */
function csrDer(csrPem: string): Buffer {
  if (typeof csrPem !== "string" || csrPem.length > MAX_CSR_PEM_LENGTH) {
    throw new ValidationError("csr_invalid", "the CSR is missing or too large");
  }
  const blocks = [...csrPem.matchAll(CSR_PEM)];
  if (blocks.length !== 1)
    throw new ValidationError("csr_invalid", "expected exactly one PEM CERTIFICATE REQUEST block");
  return Buffer.from(blocks[0]![2]!.replace(/\s+/g, ""), "base64");
}

/**
 * Split a PKCS#10 request into the exact signed bytes, the signature algorithm OID and the signature,
 * with @peculiar/asn1-csr. The request must be one DER structure with nothing after it: encoding the
 * parsed request again must give back exactly the input.
 */
function splitSignedDer(der: Buffer): { tbs: Buffer; signatureOid: string; signature: Buffer } {
  let request: CertificationRequest;
  try {
    request = AsnConvert.parse(der, CertificationRequest);
  } catch (e) {
    throw new ValidationError("csr_invalid", "the CSR is not well-formed DER", { reason: errorText(e) });
  }
  const tbs = request.certificationRequestInfoRaw;
  let canonical = false;
  try {
    canonical = tbs !== undefined && Buffer.from(AsnConvert.serialize(request)).equals(der);
  } catch {
    canonical = false;
  }
  if (!tbs || !canonical) throw new ValidationError("csr_invalid", "the CSR is not a single DER structure");
  return {
    tbs: Buffer.from(tbs),
    signatureOid: request.signatureAlgorithm.algorithm,
    signature: Buffer.from(request.signature),
  };
}

function toPublicKeyObject(key: KeyObject | string): KeyObject {
  if (typeof key !== "string") return key.type === "private" ? createPublicKey(key) : key;
  try {
    return createPublicKey(key);
  } catch (e) {
    throw new ValidationError("key_invalid", "not a valid public key", { reason: errorText(e) });
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
