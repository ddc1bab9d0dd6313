import { stat } from "node:fs/promises";
import type { AuthConfigOf } from "../config/auth-config.js";
import type { CredentialDeps, CredentialSource } from "./credential-source.js";
import { requestToken, tokenField } from "./http-token.js";
import { readTokenFile } from "./token-file.js";
import { createTokenSource } from "./token-source.js";

export const DEFAULT_AZURE_FEDERATED_TOKEN_FILE = "/var/run/secrets/azure/tokens/azure-identity-token";
export const DEFAULT_AZURE_AUTHORITY_HOST = "https://login.microsoftonline.com/";

/**
 * Azure (cloud): an Entra ID access token for `resource`, presented as a bearer token.
 *
 * - Workload identity, when a federated token file exists (`token_file`, else
 *   `$AZURE_FEDERATED_TOKEN_FILE`, else the AKS default path): the file's token is exchanged at
 *   `{authority_host}/{tenant_id}/oauth2/v2.0/token` (client credentials with a JWT client assertion)
 *   for `{resource}/.default`.
 * - Managed identity otherwise: `GET {imds_endpoint}?api-version=2018-02-01&resource=…&client_id=…`
 *   with `Metadata: true`.
 *
 * A token file that was named explicitly (config or environment) must exist; only the default path may
 * be absent, which selects managed identity.
 */
export function createAzureJwtSource(
  config: AuthConfigOf<"azure_jwt">,
  uuid: string | undefined,
  deps: CredentialDeps,
): CredentialSource {
  const named = config.token_file ?? (deps.env.AZURE_FEDERATED_TOKEN_FILE || undefined);
  const authority = (
    config.authority_host ??
    (deps.env.AZURE_AUTHORITY_HOST || DEFAULT_AZURE_AUTHORITY_HOST)
  ).replace(/\/+$/, "");
  const tokenUrl = `${authority}/${encodeURIComponent(config.tenant_id)}/oauth2/v2.0/token`;
  const scope = config.resource.replace(/\/+$/, "") + "/.default";

  async function federatedTokenFile(): Promise<string | undefined> {
    if (named) return named;
    const exists = await stat(DEFAULT_AZURE_FEDERATED_TOKEN_FILE).then(
      (s) => s.isFile(),
      () => false,
    );
    return exists ? DEFAULT_AZURE_FEDERATED_TOKEN_FILE : undefined;
  }

  async function exchange(assertion: string, signal: AbortSignal): Promise<string> {
    const body = new URLSearchParams({
      grant_type: "client_credentials",
      client_id: config.client_id,
      scope,
      client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
      client_assertion: assertion,
    }).toString();
    const res = await requestToken(
      deps.fetch,
      "azure_jwt",
      tokenUrl,
      {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
        body,
      },
      signal,
    );
    return tokenField("azure_jwt", tokenUrl, res, "access_token");
  }

  async function managedIdentity(signal: AbortSignal): Promise<string> {
    const url = new URL(config.imds_endpoint);
    url.searchParams.set("api-version", "2018-02-01");
    url.searchParams.set("resource", config.resource);
    url.searchParams.set("client_id", config.client_id);
    const href = url.toString();
    const res = await requestToken(deps.fetch, "azure_jwt", href, { headers: { Metadata: "true" } }, signal);
    return tokenField("azure_jwt", href, res, "access_token");
  }

  return createTokenSource({
    method: "azure_jwt",
    uuid,
    clock: deps.clock,
    cache: true,
    fetchToken: async (signal) => {
      const file = await federatedTokenFile();
      if (file === undefined) return managedIdentity(signal);
      return exchange(await readTokenFile("azure_jwt", file, signal), signal);
    },
  });
}
