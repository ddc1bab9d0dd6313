import { UpstreamError } from "../../core/errors.js";
import { AuthFailure } from "../auth-failure.js";
import { fetchJson, type FetchLike } from "./fetch-json.js";

/**
 * OpenID Connect discovery, the one part this server needs: `jwks_uri`. The document is fetched from
 * `{issuerUrl}/.well-known/openid-configuration` (a trailing slash on the issuer is dropped first, as
 * OIDC Discovery §4 says) and its `issuer` must equal the configured issuer URL exactly (§4.3), so a
 * document served for another issuer cannot redirect key lookups. An https issuer may not name an
 * http jwks_uri.
 *
 * A document naming another issuer is refused as an authentication failure (the token cannot be
 * trusted: 401, audited); a document that is merely broken is an upstream failure (503).
 */

const MAX_DISCOVERY_BYTES = 256 * 1024;

export function discoveryUrl(issuerUrl: string): string {
  return issuerUrl.replace(/\/$/, "") + "/.well-known/openid-configuration";
}

function mismatch(issuerUrl: string, detail: string): UpstreamError {
  return new UpstreamError(
    "identity_provider_misconfigured",
    "the identity provider's discovery document is not acceptable",
    {
      status: 503,
      internal: `${discoveryUrl(issuerUrl)}: ${detail}`,
      retryAfter: 30,
    },
  );
}

/**
 * One line naming both values and the fix. The common case is a trailing slash: Auth0's issuer is
 * `https://<tenant>.auth0.com/` (tokens carry it as `iss`), while configs often omit the slash.
 */
function issuerMismatchAdvice(issuerUrl: string, issuer: unknown, named: string | undefined): string {
  const slashOnly = typeof issuer === "string" && issuer.replace(/\/$/, "") === issuerUrl.replace(/\/$/, "");
  if (slashOnly)
    return `issuerUrl is "${issuerUrl}" but the provider's discovery document (and so every token's iss) says "${issuer}": set issuerUrl to "${issuer}" exactly (Auth0 issuers end in "/")`;
  return `${discoveryUrl(issuerUrl)} names issuer ${named} (configured issuerUrl "${issuerUrl}")`;
}

/** Fetch discovery and return the validated `jwks_uri`. */
export async function discoverJwksUri(
  fetch: FetchLike,
  issuerUrl: string,
  options: { timeoutMs: number; signal?: AbortSignal },
): Promise<string> {
  const doc = await fetchJson(fetch, discoveryUrl(issuerUrl), { ...options, maxBytes: MAX_DISCOVERY_BYTES });
  if (typeof doc !== "object" || doc === null || Array.isArray(doc))
    throw mismatch(issuerUrl, "not a JSON object");
  const { issuer, jwks_uri: jwksUri } = doc as Record<string, unknown>;
  if (issuer !== issuerUrl) {
    const named = JSON.stringify(issuer)?.slice(0, 200);
    throw new AuthFailure("jwt_discovery_issuer_mismatch", issuerMismatchAdvice(issuerUrl, issuer, named));
  }
  if (typeof jwksUri !== "string") throw mismatch(issuerUrl, "no jwks_uri");
  let parsed: URL;
  try {
    parsed = new URL(jwksUri);
  } catch {
    throw mismatch(issuerUrl, "jwks_uri is not a URL");
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:")
    throw mismatch(issuerUrl, "jwks_uri is not http(s)");
  if (issuerUrl.startsWith("https:") && parsed.protocol !== "https:")
    throw mismatch(issuerUrl, "https issuer with a plain-http jwks_uri");
  return jwksUri;
}
