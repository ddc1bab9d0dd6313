import { readFile } from "node:fs/promises";
import { SignJWT, importPKCS8 } from "jose";
import { z } from "zod";
import type { Clock } from "../../../core/clock.js";
import { UpstreamError } from "../../../core/errors.js";
import { untilAborted, type ProviderHttp } from "../../http.js";

/**
 * Google service-account credentials: the key file's JSON → an RS256 JWT assertion (RFC 7523) →
 * POST to the file's `token_uri` → a bearer token, cached until a minute before it expires. One
 * token request is in flight at a time however many records are being written.
 */
export const serviceAccountKeySchema = z.object({
  type: z.literal("service_account"),
  project_id: z.string().min(1),
  private_key_id: z.string().optional(),
  private_key: z.string().min(1),
  client_email: z.string().min(1),
  token_uri: z.url().default("https://oauth2.googleapis.com/token"),
});

export type ServiceAccountKey = z.infer<typeof serviceAccountKeySchema>;

export const CLOUD_DNS_SCOPE = "https://www.googleapis.com/auth/ndev.clouddns.readwrite";

export function parseServiceAccountKey(json: string, provider: string, source: string): ServiceAccountKey {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    raw = undefined;
  }
  const parsed = serviceAccountKeySchema.safeParse(raw);
  if (!parsed.success) {
    throw new UpstreamError(
      "dns_provider_config",
      `${provider}: ${source} is not a service-account key JSON`,
      {
        retryable: false,
        internal: parsed.error?.message,
        details: { provider },
      },
    );
  }
  return parsed.data;
}

export interface TokenSource {
  token(zone: string, signal: AbortSignal): Promise<string>;
}

export function createServiceAccountTokenSource(options: {
  loadKey(): Promise<ServiceAccountKey>;
  http: ProviderHttp;
  clock: Clock;
  scope: string;
  /** Overrides the key's token_uri (the assertion's audience stays the token endpoint used). */
  tokenUrl?: string;
}): TokenSource {
  let cached: { token: string; until: number } | undefined;
  let inFlight: Promise<string> | undefined;

  async function fetchToken(zone: string, signal: AbortSignal): Promise<string> {
    const key = await options.loadKey();
    const tokenUrl = options.tokenUrl ?? key.token_uri;
    const now = Math.floor(options.clock.now().getTime() / 1000);
    const signingKey = await importPKCS8(key.private_key, "RS256").catch((e: unknown) => {
      throw new UpstreamError(
        "dns_provider_config",
        "googlecloud: the service account's private_key is not a PKCS#8 RSA key",
        {
          retryable: false,
          cause: e,
          details: { provider: "googlecloud", zone },
        },
      );
    });
    const assertion = await new SignJWT({ scope: options.scope })
      .setProtectedHeader({
        alg: "RS256",
        typ: "JWT",
        ...(key.private_key_id ? { kid: key.private_key_id } : {}),
      })
      .setIssuer(key.client_email)
      .setAudience(tokenUrl)
      .setIssuedAt(now)
      .setExpirationTime(now + 3600)
      .sign(signingKey);
    const body = await options.http.requestJson<{ access_token?: string; expires_in?: number }>({
      method: "POST",
      url: tokenUrl,
      form: { grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer", assertion },
      zone,
      action: "obtain an access token",
      signal,
    });
    if (typeof body.access_token !== "string" || body.access_token.length === 0) {
      throw new UpstreamError(
        "dns_provider_error",
        `googlecloud: the token endpoint returned no access_token (zone ${zone})`,
        {
          details: { provider: "googlecloud", zone },
        },
      );
    }
    const lifetime = Math.max(60, body.expires_in ?? 3600);
    cached = { token: body.access_token, until: options.clock.now().getTime() + (lifetime - 60) * 1000 };
    return body.access_token;
  }

  return {
    async token(zone, signal) {
      if (cached && options.clock.now().getTime() < cached.until) return cached.token;
      // Shared by every caller waiting for it, so it runs under its own deadline, not one caller's signal.
      inFlight ??= fetchToken(zone, AbortSignal.timeout(60_000)).finally(() => {
        inFlight = undefined;
      });
      return untilAborted(inFlight, signal);
    },
  };
}

export async function readKeyFile(path: string, provider: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    throw new UpstreamError(
      "dns_provider_config",
      `${provider}: cannot read the service account file ${path}`,
      {
        retryable: false,
        cause: e,
        details: { provider, path },
      },
    );
  }
}
