import { readFile } from "node:fs/promises";
import { keyMatchesCertificate, splitPemChain } from "../../core/certificate-info.js";
import { AgentAuthError, errorText } from "../agent-errors.js";
import type { AuthConfigOf } from "../config/auth-config.js";
import { identityHeaders, type CredentialDeps, type CredentialSource } from "./credential-source.js";

/**
 * X.509 client certificate (legacy): the TLS connection to the server presents `cert_path` with
 * `key_path` (mTLS); the private key never leaves the TLS handshake. Both files are read on every use,
 * so a rotated certificate is picked up, and checked to belong together before they are used.
 */
export function createClientCertificateSource(
  config: AuthConfigOf<"certificate">,
  uuid: string | undefined,
  _deps: CredentialDeps,
): CredentialSource {
  const read = async (path: string, signal: AbortSignal) => {
    try {
      return await readFile(path, { encoding: "utf8", signal });
    } catch (e) {
      if (signal.aborted) throw e;
      throw new AgentAuthError("certificate", "auth_client_certificate_unreadable", `cannot read ${path}`, {
        internal: (e as NodeJS.ErrnoException).code ?? String(e),
      });
    }
  };
  return {
    method: "certificate",
    async get(signal) {
      const certPem = await read(config.cert_path, signal);
      const keyPem = await read(config.key_path, signal);
      const leaf = splitPemChain(certPem)[0];
      let matches = false;
      try {
        matches = leaf !== undefined && keyMatchesCertificate(keyPem, leaf);
      } catch (e) {
        throw new AgentAuthError(
          "certificate",
          "auth_client_certificate_invalid",
          "the client certificate or key cannot be read",
          {
            internal: errorText(e),
          },
        );
      }
      if (!matches) {
        throw new AgentAuthError(
          "certificate",
          "auth_client_certificate_invalid",
          "key_path does not belong to cert_path",
        );
      }
      return { headers: identityHeaders(uuid), clientCertificate: { certPem, keyPem } };
    },
    refused: () => false,
  };
}
