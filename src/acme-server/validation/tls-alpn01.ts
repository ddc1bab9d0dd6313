import { createHash } from "node:crypto";
import { connect } from "node:tls";
import * as x509 from "@peculiar/x509";
import type { AcmeProfileConfig } from "../config.js";
import { problem } from "../problems.js";
import { checkedAddress } from "./dial.js";
import type { ValidationDns } from "./dns-lookup.js";
import type { ChallengeToValidate } from "./validator.js";

/**
 * TLS-ALPN-01 (RFC 8737): a TLS handshake to the checked address on the configured port with SNI =
 * the domain and ALPN "acme-tls/1". The server must pick acme-tls/1 and present a certificate whose
 * only subjectAltName is the domain and whose critical id-pe-acmeIdentifier extension holds
 * SHA-256(key authorization). The certificate's chain is not checked (§3).
 */
const ACME_IDENTIFIER_OID = "1.3.6.1.5.5.7.1.31";
const ALPN = "acme-tls/1";

export async function validateTlsAlpn01(
  challenge: ChallengeToValidate,
  profile: AcmeProfileConfig,
  dns: ValidationDns,
  signal: AbortSignal,
): Promise<void> {
  const address = await checkedAddress(dns, challenge.domain, profile.allowPrivateAddresses, signal);
  const der = await handshake(address, profile.ports.tlsAlpn01, challenge.domain, signal);
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(der);
  } catch {
    throw problem("tls", "the TLS-ALPN-01 certificate cannot be parsed");
  }
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const names = san?.names.items ?? [];
  if (names.length !== 1 || names[0]!.type !== "dns" || names[0]!.value.toLowerCase() !== challenge.domain) {
    throw problem("unauthorized", "the TLS-ALPN-01 certificate must name exactly the domain");
  }
  const ext = cert.extensions.find((e) => e.type === ACME_IDENTIFIER_OID);
  if (!ext || !ext.critical)
    throw problem("unauthorized", "the TLS-ALPN-01 certificate lacks a critical acmeIdentifier extension");
  const expected = Buffer.concat([
    Buffer.from([0x04, 0x20]),
    createHash("sha256").update(challenge.keyAuthorization).digest(),
  ]);
  if (!Buffer.from(ext.value).equals(expected))
    throw problem("incorrectResponse", "the acmeIdentifier does not match the challenge");
}

function handshake(address: string, port: number, servername: string, signal: AbortSignal): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const socket = connect({
      host: address,
      port,
      servername,
      ALPNProtocols: [ALPN],
      rejectUnauthorized: false,
    });
    const onAbort = () => socket.destroy(new Error("aborted"));
    signal.addEventListener("abort", onAbort, { once: true });
    const finish = (fn: () => void) => {
      signal.removeEventListener("abort", onAbort);
      socket.destroy();
      fn();
    };
    socket.once("secureConnect", () => {
      if (socket.alpnProtocol !== ALPN) {
        return finish(() => reject(problem("tls", "the server did not negotiate acme-tls/1")));
      }
      const peer = socket.getPeerX509Certificate();
      finish(() => (peer ? resolve(peer.raw) : reject(problem("tls", "the server sent no certificate"))));
    });
    socket.once("error", (e) =>
      finish(() => reject(problem("tls", `TLS connection to ${servername} failed`, { internal: e.message }))),
    );
  });
}
