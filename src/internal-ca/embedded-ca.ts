import {
  type KeyObject,
  X509Certificate as NodeX509Certificate,
  createPublicKey,
  webcrypto,
} from "node:crypto";
import { isIP } from "node:net";
import * as x509 from "@peculiar/x509";
import type { Clock } from "../core/clock.js";
import { CertfleetError, ValidationError, throwIfAborted } from "../core/errors.js";
import {
  MAX_COMMON_NAME_LENGTH,
  commonNameSubject,
  generatePrivateKey,
  isAcceptablePublicKey,
  parseCsr,
} from "../core/keys.js";
import type { Logger } from "../core/logger.js";
import { normalizeNames } from "../core/names.js";
import type {
  IssueRequest,
  IssuedCertificate,
  Issuer,
  RevocationReason,
  Revoker,
} from "../issuance/issuer.js";
import type { KeyValueStore } from "../storage/storage.js";
import { BACKDATE_MS, loadOrCreateHierarchy, randomSerial, toPem, type CaHierarchy } from "./ca-hierarchy.js";
import { leafExtensions, type LeafProfile } from "./certificate-profiles.js";
import { createRevocationList } from "./revocation-list.js";

/**
 * The embedded CA: certfleet's zero-configuration issuer. A private root (ECDSA P-384, 10 years) signs
 * one intermediate (ECDSA P-256, 5 years) that signs every leaf. Clients trust `rootPem`.
 *
 * Validity: leaves start one minute in the past (clock skew) and never outlive the intermediate.
 * Concurrency: all methods are safe to call concurrently. After start-up only revocations write (see
 * revocation-list.ts for how replicas share the revoked serials and the CRL without a lock).
 *
 * Error codes: csr_invalid / csr_weak_key / csr_unsupported_san (see core/keys.ts), csr_names_mismatch,
 * csr_key_type_mismatch, the core/names.ts codes for request names, ip_invalid, uri_invalid,
 * subject_invalid, key_invalid, key_weak, validity_invalid (all 400); internal_ca_corrupt and
 * internal_ca_expired (500) from start-up or when the intermediate has run out.
 */
export interface EmbeddedCa extends Issuer, Revoker {
  readonly id: string;
  /** PEM of the root clients should trust. */
  readonly rootPem: string;
  /** PEM of the intermediate, the chain sent with every leaf. */
  readonly intermediatePem: string;
  /**
   * Issue a TLS server certificate for a verified CSR that carries exactly `request.names` (in any order)
   * and a key of `request.keyType`. `replaces` is ignored (no ARI here).
   */
  issue(request: IssueRequest, signal: AbortSignal): Promise<IssuedCertificate>;
  /** A TLS client certificate (EKU clientAuth), e.g. an mTLS identity with a `spiffe://` URI SAN. */
  issueClientCertificate(request: ClientCertificateRequest, signal?: AbortSignal): Promise<ClientCertificate>;
  /**
   * A certificate + fresh ECDSA P-256 key for certfleet's own HTTPS listener. `names` may be single-label
   * host names such as `localhost`; `ips` are IPv4 / IPv6 literals.
   */
  issueServerCertificate(
    names: string[],
    ips: string[],
    options?: { validityDays?: number },
  ): Promise<ServerCertificate>;
  /**
   * Revoke a certificate this CA signed: it is listed in every CRL from now on (until it expires).
   * `certificate_invalid` / `certificate_not_issued_here` (400), `already_revoked` (409).
   */
  revoke(certPem: string, reason: RevocationReason, signal: AbortSignal): Promise<void>;
  /** The intermediate's current CRL, DER (thisUpdate at most a day old, nextUpdate 7 days later). */
  crl(signal?: AbortSignal): Promise<Uint8Array>;
}

export interface ClientCertificateRequest {
  /** Subject CN, at most 64 characters. */
  subjectCn: string;
  dnsNames?: string[];
  /** URI SANs, e.g. `spiffe://example.org/agent/42`. */
  uris?: string[];
  /** SPKI PEM of the holder's key. Without it the CA generates an ECDSA P-256 key and returns it. */
  publicKeyPem?: string;
  /** May be fractional (short-lived test certificates). */
  validityDays: number;
}

export interface ClientCertificate {
  certPem: string;
  chainPem: string;
  /** Only when the CA generated the key (no `publicKeyPem` in the request). */
  privateKeyPem?: string;
}

export interface ServerCertificate {
  certPem: string;
  chainPem: string;
  privateKeyPem: string;
}

export interface EmbeddedCaOptions {
  /** Issuer id as configured; default "embedded". */
  id?: string | undefined;
  /** CN of the root CA; default "certfleet embedded CA". Only used when the CA is first created. */
  name?: string | undefined;
  /** Lifetime of certificates from `issue`; default 30. */
  leafValidityDays?: number | undefined;
  /** Lifetime in seconds instead of days (takes precedence), for short-lived certificates. */
  leafValiditySeconds?: number | undefined;
  /** Default lifetime of `issueServerCertificate` certificates; default 90. */
  serverValidityDays?: number | undefined;
  /** Written into new leaves as their CRL distribution point (where `crl()` is served). */
  crlUrl?: string | undefined;
}

export interface EmbeddedCaDeps {
  store: Pick<KeyValueStore, "getValue" | "putValue">;
  clock: Clock;
  logger: Logger;
  options: EmbeddedCaOptions;
}

export const DEFAULT_CA_NAME = "certfleet embedded CA";
const DAY_SECONDS = 86_400;
const MAX_CA_NAME_LENGTH = MAX_COMMON_NAME_LENGTH - " intermediate".length;
const HOST_NAME =
  /^(\*\.)?[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

/** Load the CA from storage, creating it on first start (see ca-hierarchy.ts for the race handling). */
export async function createEmbeddedCa(deps: EmbeddedCaDeps, signal?: AbortSignal): Promise<EmbeddedCa> {
  const options = deps.options;
  const name = options.name ?? DEFAULT_CA_NAME;
  if (name.trim() === "" || name.length > MAX_CA_NAME_LENGTH) {
    throw new ValidationError("ca_name_invalid", `the CA name must be 1-${MAX_CA_NAME_LENGTH} characters`);
  }
  const leafValiditySeconds = options.leafValiditySeconds ?? (options.leafValidityDays ?? 30) * DAY_SECONDS;
  const serverValidityDays = options.serverValidityDays ?? 90;
  checkValidity(leafValiditySeconds / DAY_SECONDS);
  checkValidity(serverValidityDays);

  const hierarchy = await loadOrCreateHierarchy(
    { store: deps.store, clock: deps.clock, logger: deps.logger, name },
    signal,
  );
  if (options.crlUrl !== undefined && !/^https?:\/\/[^\s]+$/.test(options.crlUrl)) {
    throw new ValidationError("crl_url_invalid", "the CRL URL must be an absolute http(s) URL");
  }
  const sign = leafSigner(hierarchy, deps.clock, options.crlUrl);
  const logger = deps.logger.child({ issuer: options.id ?? "embedded" });
  const revocations = createRevocationList({ store: deps.store, hierarchy, clock: deps.clock, logger });
  const issuerCert = new NodeX509Certificate(hierarchy.intermediatePem);

  const ca: EmbeddedCa = {
    id: options.id ?? "embedded",
    rootPem: hierarchy.rootPem,
    intermediatePem: hierarchy.intermediatePem,

    async issue(request, signal) {
      throwIfAborted(signal);
      const names = normalizeNames(request.names);
      const csr = parseCsr(request.csrPem);
      if (!sameNames(names, csr.names)) {
        throw new ValidationError(
          "csr_names_mismatch",
          "the CSR does not carry exactly the requested names",
          {
            requested: names,
            inCsr: csr.names,
          },
        );
      }
      if (csr.keyType !== request.keyType) {
        throw new ValidationError(
          "csr_key_type_mismatch",
          `the CSR's key is not of type ${request.keyType}`,
          {
            requested: request.keyType,
            inCsr: csr.keyType,
          },
        );
      }
      throwIfAborted(signal);
      const certPem = await sign({
        subjectCn: names[0]!,
        publicKey: createPublicKey(csr.publicKeyPem),
        validitySeconds: leafValiditySeconds,
        profile: { usage: "serverAuth", dnsNames: names },
      });
      logger.debug({ names }, "embedded CA: issued");
      return { certPem, chainPem: hierarchy.intermediatePem };
    },

    async issueClientCertificate(request, signal) {
      throwIfAborted(signal);
      checkValidity(request.validityDays);
      const subjectCn = request.subjectCn;
      if (
        typeof subjectCn !== "string" ||
        subjectCn.trim() === "" ||
        subjectCn.length > MAX_COMMON_NAME_LENGTH
      ) {
        throw new ValidationError(
          "subject_invalid",
          `the subject CN must be 1-${MAX_COMMON_NAME_LENGTH} characters`,
        );
      }
      const dnsNames = (request.dnsNames ?? []).map(checkHostName);
      const uris = (request.uris ?? []).map(checkUri);
      let privateKeyPem: string | undefined;
      let publicKey: KeyObject;
      if (request.publicKeyPem === undefined) {
        privateKeyPem = await generatePrivateKey("ec256");
        publicKey = createPublicKey(privateKeyPem);
      } else {
        publicKey = readPublicKey(request.publicKeyPem);
      }
      const certPem = await sign({
        subjectCn,
        publicKey,
        validitySeconds: request.validityDays * DAY_SECONDS,
        profile: { usage: "clientAuth", dnsNames, uris },
      });
      logger.debug({ subjectCn, uris }, "embedded CA: issued a client certificate");
      return {
        certPem,
        chainPem: hierarchy.intermediatePem,
        ...(privateKeyPem === undefined ? {} : { privateKeyPem }),
      };
    },

    async issueServerCertificate(names, ips, opts = {}) {
      const validityDays = opts.validityDays ?? serverValidityDays;
      checkValidity(validityDays);
      const dnsNames = [...new Set(names.map(checkHostName))];
      const addresses = [...new Set(ips.map(checkIp))];
      if (dnsNames.length === 0 && addresses.length === 0) {
        throw new ValidationError("domains_empty", "at least one name or IP address is required");
      }
      const privateKeyPem = await generatePrivateKey("ec256");
      const certPem = await sign({
        subjectCn: dnsNames[0] ?? addresses[0]!,
        publicKey: createPublicKey(privateKeyPem),
        validitySeconds: validityDays * DAY_SECONDS,
        profile: { usage: "serverAuth", dnsNames, ips: addresses },
      });
      logger.info({ names: dnsNames, ips: addresses }, "embedded CA: issued the server's own certificate");
      return { certPem, chainPem: hierarchy.intermediatePem, privateKeyPem };
    },

    async revoke(certPem, reason, signal) {
      throwIfAborted(signal);
      let cert: NodeX509Certificate;
      try {
        cert = new NodeX509Certificate(certPem);
      } catch (e) {
        throw new ValidationError("certificate_invalid", "not a valid PEM certificate", {
          reason: e instanceof Error ? e.message : String(e),
        });
      }
      if (!cert.checkIssued(issuerCert) || !cert.verify(issuerCert.publicKey)) {
        throw new ValidationError("certificate_not_issued_here", "this CA did not issue the certificate");
      }
      await revocations.revoke(
        { serial: cert.serialNumber, reason, notAfter: new Date(cert.validTo) },
        signal,
      );
    },

    crl: (signal) => revocations.crl(signal),
  };
  return ca;
}

interface LeafRequest {
  subjectCn: string;
  publicKey: KeyObject;
  validitySeconds: number;
  profile: Omit<LeafProfile, "rsaKey" | "issuerKeyId" | "emptySubject" | "crlUrl">;
}

/** Sign leaves with the intermediate: random serial, backdated start, capped at the intermediate's end. */
function leafSigner(
  hierarchy: CaHierarchy,
  clock: Clock,
  crlUrl: string | undefined,
): (request: LeafRequest) => Promise<string> {
  const { cert: issuer, signingKey, keyId } = hierarchy.intermediate;
  return async (request) => {
    const now = clock.now().getTime();
    if (issuer.notAfter.getTime() <= now) {
      throw new CertfleetError(
        "internal_ca_expired",
        "the embedded CA's intermediate certificate has expired",
        { status: 500 },
      );
    }
    const spki = toArrayBuffer(request.publicKey.export({ type: "spki", format: "der" }));
    const subject = commonNameSubject(request.subjectCn);
    const cert = await x509.X509CertificateGenerator.create(
      {
        serialNumber: randomSerial(),
        subject,
        issuer: issuer.subjectName,
        // backdate for clock skew, but never by more than a tenth of a short-lived certificate's life
        notBefore: new Date(now - Math.min(BACKDATE_MS, request.validitySeconds * 100)),
        notAfter: new Date(Math.min(now + request.validitySeconds * 1000, issuer.notAfter.getTime())),
        publicKey: spki,
        signingKey: signingKey.keys.privateKey,
        signingAlgorithm: signingKey.signingAlgorithm,
        extensions: await leafExtensions(spki, {
          ...request.profile,
          rsaKey: request.publicKey.asymmetricKeyType === "rsa",
          issuerKeyId: keyId,
          emptySubject: subject.length === 0,
          ...(crlUrl ? { crlUrl } : {}),
        }),
      },
      webcrypto,
    );
    return toPem(cert);
  };
}

function sameNames(requested: readonly string[], inCsr: readonly string[]): boolean {
  const a = new Set(requested);
  const b = new Set(inCsr);
  return a.size === b.size && [...a].every((n) => b.has(n));
}

function checkValidity(days: number): void {
  if (typeof days !== "number" || !Number.isFinite(days) || days <= 0) {
    throw new ValidationError("validity_invalid", "the validity must be a positive number", {
      validity: days,
    });
  }
}

/** Host names for the server's own certificate and client certificates: lowercase, single labels allowed. */
function checkHostName(name: string): string {
  const n = typeof name === "string" ? name.trim().toLowerCase().replace(/\.$/, "") : "";
  if (n.length === 0 || n.length > 253 || !HOST_NAME.test(n)) {
    throw new ValidationError("domain_invalid", "not a valid host name", { domain: String(name) });
  }
  return n;
}

function checkIp(ip: string): string {
  const bare = typeof ip === "string" ? ip.replace(/^\[|\]$/g, "") : "";
  if (isIP(bare) === 0) throw new ValidationError("ip_invalid", "not a valid IP address", { ip: String(ip) });
  return bare;
}

function checkUri(uri: string): string {
  let parsed: URL | undefined;
  try {
    parsed = new URL(uri);
  } catch {
    parsed = undefined;
  }
  // eslint-disable-next-line no-control-regex
  if (!parsed || /[\s\x00-\x1f\x7f]/.test(uri) || uri.length > 2048) {
    throw new ValidationError("uri_invalid", "not a valid absolute URI", { uri: String(uri) });
  }
  return uri;
}

function readPublicKey(pem: string): KeyObject {
  let key: KeyObject;
  try {
    if (pem.includes("PRIVATE KEY")) throw new Error("a private key was sent as the public key");
    key = createPublicKey(pem);
  } catch {
    throw new ValidationError("key_invalid", "not a valid public key");
  }
  if (!isAcceptablePublicKey(key)) {
    throw new ValidationError(
      "key_weak",
      "the key is too weak or unsupported: use RSA >= 2048 bits or ECDSA P-256/P-384",
    );
  }
  return key;
}

function toArrayBuffer(buf: Buffer): ArrayBuffer {
  return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
}
