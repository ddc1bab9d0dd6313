import { ConfigError } from "../../core/errors.js";
import { spiffeTrustDomain, WORKLOAD_KINDS, type WorkloadKind } from "../binding.js";

/**
 * A trusted JWT issuer as configured, and its checked, defaulted form. Everything a token is checked
 * against comes from here (server configuration), never from the token or the client: the issuer,
 * the audience, the algorithms, where keys are fetched from.
 */
export interface TrustedIssuer {
  /**
   * Exact `iss` value; discovery at `{issuerUrl}/.well-known/openid-configuration`, whose `issuer` must
   * equal it. Optional only for `kind: "spiffe"` (JWT-SVIDs need not carry `iss`).
   */
  issuerUrl?: string;
  /** Accepted `aud` value(s): the token must name at least one. */
  audience: string | string[];
  /** Scopes that must all be present, read from the `scopeClaims`. */
  requiredScopes?: string[];
  /**
   * Claims scopes are read from, each an array or a space-separated string. Default `scope`, `scopes`,
   * `scp` (OAuth, le-cert-server, Entra delegated); Entra app-only tokens carry `roles` instead.
   */
  scopeClaims?: string[];
  /** Allowed JWS algorithms. Default RS256, ES256, PS256, EdDSA. `none` and HS* are refused. */
  algorithms?: string[];
  /** Allowed clock skew for exp / nbf / iat (default 30 s). */
  clockToleranceSeconds?: number;
  /** Longest token accepted, in bytes (default 8192). */
  maxTokenBytes?: number;
  /** Claim listing the names this token may obtain (array, or space/comma-separated string). */
  domainsClaim?: string;
  /** Claim naming the SSH principals a token may get certificates for (exact names; src/ssh/ssh-config.ts). */
  sshPrincipalsClaim?: string;
  /** Certificate types that claim grants (default user). */
  sshCertificateTypes?: ("user" | "host")[];
  /**
   * A valid token with no `domainsClaim` and no matching identity record may obtain every name
   * (le-cert-server's rule). Default false: such a token obtains nothing.
   */
  grantAllNames?: boolean;
  /** JWKS URL; skips discovery. */
  jwksUri?: string;
  /** Which claims bind identity records (default "oidc": iss + sub). */
  kind?: WorkloadKind;
  /** spiffe: the trust domain whose SVIDs this entry verifies (e.g. "example.org"). */
  trustDomain?: string;
  /** spiffe: a SPIFFE bundle (JWKS) file; re-read on refresh. */
  bundleFile?: string;
  /** spiffe: a SPIFFE bundle endpoint URL (https_web profile). */
  bundleEndpointUrl?: string;
  /** How long fetched keys are used before a refresh (default 600 s). */
  jwksCacheMaxAgeSeconds?: number;
  /** Minimum time between two fetches of the key set, e.g. on unknown `kid` (default 30 s). */
  jwksCooldownSeconds?: number;
  /** Timeout for each discovery / JWKS fetch (default 5000 ms). */
  fetchTimeoutMs?: number;
}

export const DEFAULT_SCOPE_CLAIMS = ["scope", "scopes", "scp"] as const;
export const DEFAULT_ALGORITHMS = ["RS256", "ES256", "PS256", "EdDSA"] as const;
/** Asymmetric JWS algorithms jose verifies; HMAC and `none` are never acceptable for third-party tokens. */
const ASYMMETRIC = new Set([
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
  "Ed25519",
]);

export type KeySourceConfig =
  | { type: "discovery"; issuerUrl: string }
  | { type: "jwks"; url: string }
  | { type: "spiffe-file"; path: string }
  | { type: "spiffe-endpoint"; url: string };

export interface ResolvedIssuer {
  /** For logs and the audit trail: the issuer URL, or `spiffe://<trust domain>`. */
  label: string;
  issuerUrl: string | undefined;
  audience: string[];
  requiredScopes: string[];
  scopeClaims: string[];
  algorithms: string[];
  clockToleranceSeconds: number;
  maxTokenBytes: number;
  domainsClaim: string | undefined;
  sshPrincipalsClaim: string | undefined;
  sshCertificateTypes: ("user" | "host")[] | undefined;
  grantAllNames: boolean;
  kind: WorkloadKind;
  trustDomain: string | undefined;
  keySource: KeySourceConfig;
  cacheMaxAgeMs: number;
  cooldownMs: number;
  fetchTimeoutMs: number;
}

function isHttpUrl(value: string): boolean {
  try {
    const u = new URL(value);
    return u.protocol === "https:" || u.protocol === "http:";
  } catch {
    return false;
  }
}

/** Check and default the configured issuers. Throws ConfigError naming `auth.issuers[i].<field>`. */
export function resolveIssuers(
  issuers: readonly TrustedIssuer[],
  pathPrefix = "auth.issuers",
): ResolvedIssuer[] {
  const issues: { path: string; message: string }[] = [];
  const out: ResolvedIssuer[] = [];
  const seen = new Set<string>();
  issuers.forEach((config, i) => {
    const at = (field: string) => `${pathPrefix}[${i}].${field}`;
    const kind = config.kind ?? "oidc";
    if (!(WORKLOAD_KINDS as readonly string[]).includes(kind))
      issues.push({ path: at("kind"), message: `unknown kind "${kind}"` });

    const algorithms = [...(config.algorithms ?? DEFAULT_ALGORITHMS)];
    if (algorithms.length === 0)
      issues.push({ path: at("algorithms"), message: "list at least one algorithm" });
    for (const alg of algorithms) {
      if (alg.toLowerCase() === "none")
        issues.push({ path: at("algorithms"), message: '"none" is never accepted' });
      else if (/^HS/i.test(alg))
        issues.push({
          path: at("algorithms"),
          message: `${alg}: HMAC algorithms are refused (a public key must never be an HMAC secret)`,
        });
      else if (!ASYMMETRIC.has(alg))
        issues.push({
          path: at("algorithms"),
          message: `${alg} is not a supported asymmetric JWS algorithm`,
        });
    }

    const audience = typeof config.audience === "string" ? [config.audience] : [...(config.audience ?? [])];
    if (audience.length === 0 || audience.some((a) => typeof a !== "string" || a.length === 0)) {
      issues.push({ path: at("audience"), message: "required: the audience tokens must be issued for" });
    }

    let keySource: KeySourceConfig | undefined;
    let trustDomain: string | undefined;
    if (kind === "spiffe") {
      trustDomain = config.trustDomain?.toLowerCase();
      if (!trustDomain || spiffeTrustDomain(`spiffe://${trustDomain}`) === undefined) {
        issues.push({ path: at("trustDomain"), message: "required for kind spiffe (e.g. example.org)" });
      }
      if (config.bundleFile && config.bundleEndpointUrl)
        issues.push({ path: at("bundleFile"), message: "give bundleFile or bundleEndpointUrl, not both" });
      if (config.bundleFile) keySource = { type: "spiffe-file", path: config.bundleFile };
      else if (config.bundleEndpointUrl) {
        if (!isHttpUrl(config.bundleEndpointUrl))
          issues.push({ path: at("bundleEndpointUrl"), message: "must be an http(s) URL" });
        keySource = { type: "spiffe-endpoint", url: config.bundleEndpointUrl };
      } else if (config.jwksUri) keySource = { type: "jwks", url: config.jwksUri };
      else
        issues.push({ path: at("bundleFile"), message: "kind spiffe needs bundleFile or bundleEndpointUrl" });
    } else {
      if (!config.issuerUrl || !isHttpUrl(config.issuerUrl))
        issues.push({ path: at("issuerUrl"), message: "required: an http(s) URL" });
      else
        keySource = config.jwksUri
          ? { type: "jwks", url: config.jwksUri }
          : { type: "discovery", issuerUrl: config.issuerUrl };
      if (config.jwksUri && !isHttpUrl(config.jwksUri))
        issues.push({ path: at("jwksUri"), message: "must be an http(s) URL" });
    }

    const label = config.issuerUrl ?? `spiffe://${trustDomain ?? "?"}`;
    if (seen.has(label))
      issues.push({ path: at("issuerUrl"), message: `issuer ${label} is configured twice` });
    seen.add(label);

    const tolerance = config.clockToleranceSeconds ?? 30;
    if (!Number.isFinite(tolerance) || tolerance < 0 || tolerance > 300)
      issues.push({ path: at("clockToleranceSeconds"), message: "0–300 seconds" });
    const maxTokenBytes = config.maxTokenBytes ?? 8192;
    if (!Number.isInteger(maxTokenBytes) || maxTokenBytes < 256 || maxTokenBytes > 65536)
      issues.push({ path: at("maxTokenBytes"), message: "256–65536 bytes" });

    if (keySource) {
      out.push({
        label,
        issuerUrl: config.issuerUrl,
        audience,
        requiredScopes: [...(config.requiredScopes ?? [])],
        scopeClaims: [...(config.scopeClaims ?? DEFAULT_SCOPE_CLAIMS)],
        algorithms,
        clockToleranceSeconds: tolerance,
        maxTokenBytes,
        domainsClaim: config.domainsClaim,
        sshPrincipalsClaim: config.sshPrincipalsClaim,
        sshCertificateTypes: config.sshCertificateTypes,
        grantAllNames: config.grantAllNames === true && config.domainsClaim === undefined,
        kind,
        trustDomain,
        keySource,
        cacheMaxAgeMs: (config.jwksCacheMaxAgeSeconds ?? 600) * 1000,
        cooldownMs: (config.jwksCooldownSeconds ?? 30) * 1000,
        fetchTimeoutMs: config.fetchTimeoutMs ?? 5000,
      });
    }
  });
  if (issues.length > 0) throw new ConfigError(issues);
  return out;
}

/** Insecure-but-allowed settings worth a start-up warning (plain-HTTP key sources, open grants). */
export function issuerWarnings(issuers: readonly ResolvedIssuer[]): string[] {
  const warnings: string[] = [];
  for (const i of issuers) {
    if (i.grantAllNames)
      warnings.push(
        `JWT issuer ${i.label}: every valid token may obtain certificates for every name (no domainsClaim; restrict with domainsClaim, identity records or grantAllNames: false)`,
      );
    const url =
      i.keySource.type === "spiffe-file"
        ? undefined
        : i.keySource.type === "discovery"
          ? i.keySource.issuerUrl
          : i.keySource.url;
    if (url?.startsWith("http:"))
      warnings.push(`JWT issuer ${i.label}: keys are fetched over plain HTTP (${url})`);
  }
  return warnings;
}
