import { AgentAuthError } from "../agent-errors.js";
import type { AuthConfigOf } from "../config/auth-config.js";
import type { CredentialDeps, CredentialSource } from "./credential-source.js";
import { expectOk, requestToken } from "./http-token.js";
import { createTokenSource } from "./token-source.js";

/**
 * Google Cloud: an identity token for `audience` from the metadata server
 * (`{metadata_url}/instance/service-accounts/{service_account}/identity?audience=…&format=full`, header
 * `Metadata-Flavor: Google`), answered as the bare JWT.
 */
export function createGcpSource(
  config: AuthConfigOf<"gcp">,
  uuid: string | undefined,
  deps: CredentialDeps,
): CredentialSource {
  const base = config.metadata_url.replace(/\/+$/, "");
  const url = new URL(
    `${base}/instance/service-accounts/${encodeURIComponent(config.service_account)}/identity`,
  );
  url.searchParams.set("audience", config.audience);
  url.searchParams.set("format", "full");
  const href = url.toString();
  return createTokenSource({
    method: "gcp",
    uuid,
    clock: deps.clock,
    cache: true,
    fetchToken: async (signal) => {
      const res = await requestToken(
        deps.fetch,
        "gcp",
        href,
        { headers: { "Metadata-Flavor": "Google" } },
        signal,
      );
      expectOk("gcp", href, res);
      const token = res.body.trim();
      // The real metadata server always says who it is; anything else on that address is not it.
      if (res.headers.get("metadata-flavor") !== "Google" || token.split(".").length !== 3) {
        throw new AgentAuthError(
          "gcp",
          "auth_endpoint_answer_invalid",
          "the metadata server's answer is not an identity token",
          {
            internal: href,
          },
        );
      }
      return token;
    },
  });
}
