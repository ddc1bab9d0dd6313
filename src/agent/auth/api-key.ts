import { readFile } from "node:fs/promises";
import { AgentAuthError } from "../agent-errors.js";
import type { AuthConfigOf } from "../config/auth-config.js";
import { identityHeaders, type CredentialDeps, type CredentialSource } from "./credential-source.js";

/** `Authorization: APIKey <key>`, the key inline or from `api_key_file` (re-read on every use). */
export function createApiKeySource(
  config: AuthConfigOf<"api_key">,
  uuid: string | undefined,
  _deps: CredentialDeps,
): CredentialSource {
  return {
    method: "api_key",
    async get(signal) {
      let key = config.api_key;
      if (key === undefined) {
        try {
          key = (await readFile(config.api_key_file!, { encoding: "utf8", signal })).trim();
        } catch (e) {
          if (signal.aborted) throw e;
          throw new AgentAuthError(
            "api_key",
            "auth_key_file_unreadable",
            `cannot read ${config.api_key_file}`,
            {
              internal: (e as NodeJS.ErrnoException).code ?? String(e),
            },
          );
        }
      }
      if (!key) throw new AgentAuthError("api_key", "auth_key_missing", "the API key is empty");
      return { headers: { authorization: `APIKey ${key}`, ...identityHeaders(uuid) } };
    },
    refused: () => false,
  };
}
