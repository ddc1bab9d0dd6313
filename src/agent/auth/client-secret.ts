import type { AuthConfigOf } from "../config/auth-config.js";
import { identityHeaders, type CredentialDeps, type CredentialSource } from "./credential-source.js";

/** Client id and secret (legacy): `Authorization: Basic base64(client_id:client_secret)` plus the UUID. */
export function createClientSecretSource(
  config: AuthConfigOf<"client_secret">,
  uuid: string | undefined,
  _deps: CredentialDeps,
): CredentialSource {
  const basic = Buffer.from(`${config.client_id}:${config.client_secret}`, "utf8").toString("base64");
  return {
    method: "client_secret",
    get: async () => ({ headers: { authorization: `Basic ${basic}`, ...identityHeaders(uuid) } }),
    refused: () => false,
  };
}
