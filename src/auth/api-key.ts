import { createHash, timingSafeEqual } from "node:crypto";
import { ConfigError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import type { SshGrant } from "../ssh/ssh-grant.js";
import { AuthFailure } from "./auth-failure.js";
import type { Authenticator, AuthRequest, Principal } from "./authenticator.js";
import { credentialsFor } from "./authorization-header.js";
import { apiKeyDigest, hashApiKey, isApiKeyHash } from "./secrets.js";

/**
 * `Authorization: APIKey <key>`: named keys from configuration, each with its own grants. Keys live in
 * memory only as SHA-256 digests; a presented key is hashed and compared against every configured
 * digest in constant time (no early exit). A key without a grant list may obtain every name — what a
 * single-key le-cert-server deployment expects — and `unrestrictedApiKeys` lists those so the server
 * can warn at start-up.
 */

export const API_KEY_METHOD = "api_key";
/** Longer values are refused before hashing. */
const MAX_KEY_LENGTH = 1024;

export interface ApiKeyConfig {
  /** Shown in logs and the audit trail; the principal id is `apikey:<name>`. */
  name: string;
  /** The key itself (hashed at start-up, never kept). */
  key?: string;
  /** `sha256:<hex>` of the key. */
  hash?: string;
  /** Config-file spelling of `hash` (auth.apiKeys[].keyHash). */
  keyHash?: string;
  /** Name patterns; omitted = all names. */
  grants?: string[];
  admin?: boolean;
  /** SSH certificate grant (auth.apiKeys[].sshPrincipals …); absent = no SSH certificates. */
  ssh?: SshGrant | undefined;
}

export interface ApiKeyAuthenticatorDeps {
  keys: readonly ApiKeyConfig[];
  logger: Logger;
}

interface StoredKey {
  digest: Buffer;
  principal: Principal;
}

/** Names of the keys that may obtain every name (no grant list, or a grant of `*`). */
export function unrestrictedApiKeys(keys: readonly ApiKeyConfig[]): string[] {
  return keys.filter((k) => k.grants === undefined || k.grants.includes("*")).map((k) => k.name);
}

function storedKeys(keys: readonly ApiKeyConfig[]): StoredKey[] {
  const issues: { path: string; message: string }[] = [];
  const names = new Set<string>();
  const digests = new Set<string>();
  const out: StoredKey[] = [];
  keys.forEach((k, i) => {
    const path = `auth.apiKeys[${i}]`;
    const hash = k.hash ?? k.keyHash ?? (k.key !== undefined ? hashApiKey(k.key) : undefined);
    if (names.has(k.name))
      issues.push({ path: `${path}.name`, message: `duplicate API key name "${k.name}"` });
    names.add(k.name);
    if (hash === undefined || !isApiKeyHash(hash)) {
      issues.push({ path, message: "give either `key` or `keyHash` (sha256:<64 hex digits>)" });
      return;
    }
    if (k.key !== undefined && k.key.length < 16)
      issues.push({ path: `${path}.key`, message: "an API key needs at least 16 characters" });
    if (digests.has(hash)) issues.push({ path, message: `key "${k.name}" is the same key as another entry` });
    digests.add(hash);
    out.push({
      digest: apiKeyDigest(hash),
      principal: {
        id: `apikey:${k.name}`,
        name: k.name,
        method: API_KEY_METHOD,
        grants: k.grants === undefined ? "all" : Object.freeze([...k.grants]),
        admin: k.admin ?? false,
        ...(k.ssh ? { ssh: k.ssh } : {}),
      },
    });
  });
  if (issues.length > 0) throw new ConfigError(issues);
  return out;
}

export function createApiKeyAuthenticator(deps: ApiKeyAuthenticatorDeps): Authenticator {
  const keys = storedKeys(deps.keys);
  const logger = deps.logger.child({ component: "auth.api_key" });
  logger.debug({ keys: keys.length }, "API keys loaded");

  return {
    method: API_KEY_METHOD,
    async authenticate(request: AuthRequest): Promise<Principal | undefined> {
      const key = credentialsFor(request.headers, "APIKey");
      if (key === undefined) return undefined;
      if (key.length === 0 || key.length > MAX_KEY_LENGTH) throw new AuthFailure("api_key_malformed");
      const presented = createHash("sha256").update(key, "utf8").digest();
      let match: Principal | undefined;
      for (const stored of keys) {
        // Every digest is compared, so the time taken does not depend on which key matched.
        if (timingSafeEqual(presented, stored.digest) && match === undefined) match = stored.principal;
      }
      if (!match) throw new AuthFailure("api_key_unknown");
      return match;
    },
  } satisfies Authenticator;
}
