import type { AuthConfigOf } from "../config/auth-config.js";
import type { CredentialDeps, CredentialSource } from "./credential-source.js";
import { requestToken, tokenField } from "./http-token.js";
import { createTokenSource } from "./token-source.js";

/**
 * Generic OIDC JWT: `GET token_endpoint?resource=…&client_id=…` (each only when configured) answers
 * `{"access_token": "…"}`; that token is presented as a bearer token.
 */
export function createOidcJwtSource(
  config: AuthConfigOf<"oidc_jwt">,
  uuid: string | undefined,
  deps: CredentialDeps,
): CredentialSource {
  const url = new URL(config.token_endpoint);
  if (config.resource !== undefined) url.searchParams.set("resource", config.resource);
  if (config.client_id !== undefined) url.searchParams.set("client_id", config.client_id);
  const href = url.toString();
  return createTokenSource({
    method: "oidc_jwt",
    uuid,
    clock: deps.clock,
    cache: true,
    fetchToken: async (signal) => {
      const res = await requestToken(
        deps.fetch,
        "oidc_jwt",
        href,
        { headers: { accept: "application/json" } },
        signal,
      );
      return tokenField("oidc_jwt", href, res, "access_token");
    },
  });
}
