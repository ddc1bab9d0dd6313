import { createHash, X509Certificate } from "node:crypto";
import { BlockList, isIP } from "node:net";
import * as x509 from "@peculiar/x509";
import type { Clock } from "../core/clock.js";
import { splitPemChain } from "../core/certificate-info.js";
import { ConfigError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import type { IdentityStore } from "../storage/storage.js";
import { AuthFailure } from "./auth-failure.js";
import type { Authenticator, AuthRequest, Principal } from "./authenticator.js";
import { singleHeader } from "./authorization-header.js";
import { certificateBindingKeys, type CertificateIdentity } from "./binding.js";
import { checkIdentity, findIdentityByKeys, principalOfRecord } from "./identity-lookup.js";
import type { LegacySwitch } from "./legacy-switch.js";

/**
 * X.509 client certificates (legacy method). The certificate comes from:
 *
 * - the TLS listener (`AuthRequest.peerCertificate`, the listener did mTLS), or
 * - a header set by a TLS-terminating proxy (default `X-SSL-Client-Cert`, the URL-encoded PEM of nginx's
 *   `$ssl_client_escaped_cert`) — believed only when the connection comes from a configured trusted
 *   proxy address; from anywhere else the header is refused as an attack.
 *
 * Either way it is verified here again, as a path: the leaf, then the intermediates the client presented
 * (sent in the TLS handshake, or further PEM blocks after the leaf in the forwarded header), up to a
 * certificate in the configured bundle. Each bundle certificate is a trust anchor, so a bundle holding
 * only the root accepts a leaf from an intermediate the client sends along, and a bundle holding an
 * intermediate accepts what it issues directly. Every certificate on the path is within its validity,
 * signed by the next one, and every issuer is a CA; the path is at most MAX_PATH_DEPTH long. The leaf
 * is not a CA itself, and is allowed for client authentication when it has an EKU. The identity
 * record is then found by binding key: SHA-256 fingerprint first, then SAN URIs, SAN DNS names,
 * subject CN (binding.ts). The organisation's legacy switch is checked before anything else.
 */

export const CERTIFICATE_METHOD = "certificate";
export const DEFAULT_FORWARDED_CERT_HEADER = "x-ssl-client-cert";
const MAX_FORWARDED_BYTES = 64 * 1024;
/** Intermediates between a leaf and its anchor, at most (more is refused, not searched). */
export const MAX_PATH_DEPTH = 4;
const EKU_CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";
const EKU_ANY = "2.5.29.37.0";

export interface ClientCertificateAuthenticatorDeps {
  /** PEM bundle of the CAs that issue client certificates. */
  caBundlePem: string;
  /** Proxy addresses (CIDR or single IPs) whose forwarded certificate header is believed. */
  trustedProxies?: readonly string[];
  /** Header carrying the forwarded certificate (default `x-ssl-client-cert`). */
  forwardedHeader?: string;
  store: Pick<IdentityStore, "findIdentityByBinding">;
  legacySwitch: LegacySwitch;
  clock: Clock;
  logger: Logger;
}

/** A BlockList (used as an allow list) of CIDRs / addresses; throws ConfigError on a bad entry. */
export function addressList(cidrs: readonly string[], path = "trustedProxies"): BlockList {
  const list = new BlockList();
  cidrs.forEach((entry, i) => {
    const [address, prefix] = entry.split("/") as [string, string | undefined];
    const family = isIP(address);
    const bits = prefix === undefined ? (family === 6 ? 128 : 32) : Number(prefix);
    if (family === 0 || !Number.isInteger(bits) || bits < 0 || bits > (family === 6 ? 128 : 32)) {
      throw new ConfigError([{ path: `${path}[${i}]`, message: `"${entry}" is not an IP address or CIDR` }]);
    }
    list.addSubnet(address, bits, family === 6 ? "ipv6" : "ipv4");
  });
  return list;
}

export function isAddressIn(list: BlockList, remoteAddress: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(remoteAddress);
  const address = mapped ? mapped[1]! : remoteAddress;
  const family = isIP(address);
  if (family === 0) return false;
  return list.check(address, family === 6 ? "ipv6" : "ipv4");
}

function loadAnchors(bundlePem: string): X509Certificate[] {
  const blocks = splitPemChain(bundlePem);
  if (blocks.length === 0)
    throw new ConfigError([{ path: "caBundle", message: "no certificate in the client CA bundle" }]);
  return blocks.map((pem, i) => {
    try {
      return new X509Certificate(pem);
    } catch (e) {
      throw new ConfigError([
        { path: `caBundle[${i}]`, message: e instanceof Error ? e.message : String(e) },
      ]);
    }
  });
}

/** The names a certificate can be bound by. */
export function certificateIdentity(der: Buffer): CertificateIdentity {
  const cert = new x509.X509Certificate(der);
  const dnsNames: string[] = [];
  const uris: string[] = [];
  try {
    const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
    for (const name of san?.names.items ?? []) {
      if (name.type === "dns") dnsNames.push(name.value.toLowerCase());
      else if (name.type === "url") uris.push(name.value);
    }
  } catch {
    // A SAN with name forms we cannot read binds by fingerprint / CN only.
  }
  return {
    fingerprint: createHash("sha256").update(der).digest("hex"),
    commonNames: cert.subjectName.getField("CN"),
    dnsNames,
    uris,
  };
}

export function createClientCertificateAuthenticator(
  deps: ClientCertificateAuthenticatorDeps,
): Authenticator {
  const anchors = loadAnchors(deps.caBundlePem);
  const proxies = addressList(deps.trustedProxies ?? []);
  const header = (deps.forwardedHeader ?? DEFAULT_FORWARDED_CERT_HEADER).toLowerCase();
  const logger = deps.logger.child({ component: "auth.certificate" });

  /** The presented leaf and the intermediates sent along with it (DER). */
  function presented(request: AuthRequest): { leaf: Buffer; intermediates: Buffer[] } | undefined {
    if (request.peerCertificate && request.peerCertificate.length > 0)
      return { leaf: request.peerCertificate, intermediates: [...(request.peerChain ?? [])] };
    const forwarded = singleHeader(request.headers, header);
    if (forwarded === undefined || forwarded.trim() === "") return undefined;
    if (!isAddressIn(proxies, request.remoteAddress)) {
      throw new AuthFailure(
        "forwarded_certificate_untrusted_source",
        `${header} from ${request.remoteAddress}, not a trusted proxy`,
      );
    }
    if (forwarded.length > MAX_FORWARDED_BYTES)
      throw new AuthFailure("certificate_malformed", "forwarded certificate too large");
    let pem: string;
    try {
      pem = decodeURIComponent(forwarded);
    } catch {
      throw new AuthFailure("certificate_malformed", "forwarded certificate is not URL-encoded");
    }
    const blocks = splitPemChain(pem);
    if (blocks.length === 0)
      throw new AuthFailure("certificate_malformed", "forwarded header holds no PEM certificate");
    if (blocks.length > MAX_PATH_DEPTH + 1)
      throw new AuthFailure("certificate_malformed", "forwarded chain too long");
    try {
      const [leaf, ...rest] = blocks.map((b) => new X509Certificate(b).raw);
      return { leaf: leaf!, intermediates: rest };
    } catch (e) {
      throw new AuthFailure("certificate_malformed", e instanceof Error ? e.message : String(e));
    }
  }

  const validAt = (cert: X509Certificate, now: number) =>
    now >= new Date(cert.validFrom).getTime() && now <= new Date(cert.validTo).getTime();
  const signedBy = (cert: X509Certificate, issuer: X509Certificate) =>
    issuer.ca && cert.checkIssued(issuer) && cert.verify(issuer.publicKey);

  /**
   * Walk from the leaf up: an anchor that signed the current certificate ends the path; otherwise one
   * presented intermediate that signed it (a CA, valid now, not used before) becomes the current one.
   */
  function verifyPath(leaf: X509Certificate, intermediates: readonly Buffer[], now: number): void {
    const pool: X509Certificate[] = [];
    for (const der of intermediates.slice(0, MAX_PATH_DEPTH * 2)) {
      try {
        pool.push(new X509Certificate(der));
      } catch {
        // an unreadable extra certificate cannot be on a valid path
      }
    }
    let current = leaf;
    for (let depth = 0; depth <= MAX_PATH_DEPTH; depth++) {
      if (anchors.some((ca) => validAt(ca, now) && signedBy(current, ca))) return;
      const next = pool.findIndex((ca) => validAt(ca, now) && signedBy(current, ca));
      if (next < 0) break;
      current = pool.splice(next, 1)[0]!;
    }
    throw new AuthFailure(
      "certificate_untrusted",
      `no path from ${leaf.subject.replace(/\n/g, ", ")} through ${intermediates.length} presented intermediate(s) to a trusted client CA`,
    );
  }

  function verify(der: Buffer, intermediates: readonly Buffer[]): void {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(der);
    } catch (e) {
      throw new AuthFailure("certificate_malformed", e instanceof Error ? e.message : String(e));
    }
    const now = deps.clock.now().getTime();
    if (now < new Date(cert.validFrom).getTime())
      throw new AuthFailure("certificate_not_yet_valid", cert.validFrom);
    if (now > new Date(cert.validTo).getTime()) throw new AuthFailure("certificate_expired", cert.validTo);
    if (cert.ca) throw new AuthFailure("certificate_is_ca", cert.subject);
    const eku = cert.keyUsage;
    if (eku !== undefined && !eku.includes(EKU_CLIENT_AUTH) && !eku.includes(EKU_ANY)) {
      throw new AuthFailure("certificate_not_client_auth", "extended key usage lacks clientAuth");
    }
    verifyPath(cert, intermediates, now);
  }

  return {
    method: CERTIFICATE_METHOD,
    async authenticate(request: AuthRequest, signal: AbortSignal): Promise<Principal | undefined> {
      const chain = presented(request);
      if (chain === undefined) return undefined;
      const der = chain.leaf;
      await deps.legacySwitch.assertEnabled("certificate", signal);
      verify(der, chain.intermediates);
      const identity = certificateIdentity(der);
      const record = await findIdentityByKeys(deps.store, certificateBindingKeys(identity), signal);
      if (!record)
        throw new AuthFailure(
          "identity_unknown",
          `no identity bound to certificate sha256=${identity.fingerprint}`,
        );
      if (record.method !== CERTIFICATE_METHOD)
        throw new AuthFailure("identity_method_mismatch", `${record.id} uses ${record.method}`);
      checkIdentity(record, request);
      logger.debug({ identity: record.id }, "client certificate accepted");
      return principalOfRecord(record, CERTIFICATE_METHOD);
    },
  };
}
