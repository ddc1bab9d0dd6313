import type { AuthConfigOf } from "../config/auth-config.js";
import type { CredentialDeps, CredentialSource } from "./credential-source.js";
import { challengePathFromHeader, defaultHimdsTokenDir, readChallengeFile } from "./himds-challenge.js";
import { expectOk, requestToken, tokenField } from "./http-token.js";
import { createTokenSource } from "./token-source.js";

/**
 * Azure Arc (on-premises): a managed identity token from the Arc agent's local HIMDS endpoint, by its
 * two-step challenge:
 *
 * 1. `GET {endpoint}?api-version=2019-11-01&resource=…` with `Metadata: true` → 401 with
 *    `WWW-Authenticate: Basic realm=<challenge file>`;
 * 2. read that file — only if himds-challenge.ts allows it (a `.key` file in `token_dir`);
 * 3. repeat the request with `Authorization: Basic <file contents>` → `{"access_token": …}`.
 */
export function createAzureArcSource(
  config: AuthConfigOf<"azure_arc">,
  uuid: string | undefined,
  deps: CredentialDeps,
): CredentialSource {
  const url = new URL(
    config.himds_endpoint ?? `http://127.0.0.1:${config.himds_port}/metadata/identity/oauth2/token`,
  );
  url.searchParams.set("api-version", "2019-11-01");
  url.searchParams.set("resource", config.resource);
  const href = url.toString();
  const tokenDir = config.token_dir ?? defaultHimdsTokenDir(deps.platform, deps.env);

  return createTokenSource({
    method: "azure_arc",
    uuid,
    clock: deps.clock,
    cache: true,
    fetchToken: async (signal) => {
      const first = await requestToken(
        deps.fetch,
        "azure_arc",
        href,
        { headers: { Metadata: "true" } },
        signal,
      );
      if (first.status !== 401) return tokenField("azure_arc", href, first, "access_token");
      const challenge = challengePathFromHeader(first.headers.get("www-authenticate"));
      const secret = await readChallengeFile(challenge, tokenDir, deps.platform);
      const second = await requestToken(
        deps.fetch,
        "azure_arc",
        href,
        { headers: { Metadata: "true", authorization: `Basic ${secret}` } },
        signal,
      );
      expectOk("azure_arc", href, second);
      return tokenField("azure_arc", href, second, "access_token");
    },
  });
}
