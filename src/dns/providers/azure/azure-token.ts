import { readFile } from "node:fs/promises";
import type { Clock } from "../../../core/clock.js";
import { UpstreamError } from "../../../core/errors.js";
import { apiUrl, untilAborted, type ProviderHttp } from "../../http.js";

/**
 * Microsoft Entra ID tokens for Azure Resource Manager, three ways:
 * - client secret: client-credentials grant at `<loginUrl>/<tenant>/oauth2/v2.0/token`;
 * - workload identity: the same grant with the federated token file as `client_assertion`
 *   (re-read on every token request: the kubelet rotates it);
 * - managed identity: the instance metadata endpoint (IMDS) with `Metadata: true`.
 * Tokens are cached until a minute before expiry, and one request is in flight at a time.
 */
export type AzureAuth =
  | { method: "client_secret"; tenantId: string; clientId: string; clientSecret: string; loginUrl: string }
  | {
      method: "workload_identity";
      tenantId: string;
      clientId: string;
      federatedTokenFile: string;
      loginUrl: string;
    }
  | { method: "managed_identity"; clientId?: string; imdsUrl: string };

export interface AzureTokenSource {
  token(zone: string, signal: AbortSignal): Promise<string>;
}

export function createAzureTokenSource(options: {
  auth: AzureAuth;
  /** Token audience, e.g. https://management.azure.com/ */
  resource: string;
  http: ProviderHttp;
  clock: Clock;
}): AzureTokenSource {
  const { auth, http } = options;
  let cached: { token: string; until: number } | undefined;
  let inFlight: Promise<string> | undefined;

  async function request(
    zone: string,
    signal: AbortSignal,
  ): Promise<{ access_token?: string; expires_in?: number | string }> {
    if (auth.method === "managed_identity") {
      return http.requestJson({
        method: "GET",
        url: apiUrl(auth.imdsUrl, "", {
          "api-version": "2018-02-01",
          resource: options.resource,
          client_id: auth.clientId,
        }),
        headers: { metadata: "true" },
        zone,
        action: "obtain a managed identity token",
        signal,
      });
    }
    const form: Record<string, string> = {
      grant_type: "client_credentials",
      client_id: auth.clientId,
      scope: `${options.resource.replace(/\/+$/, "")}/.default`,
    };
    if (auth.method === "client_secret") {
      form.client_secret = auth.clientSecret;
    } else {
      form.client_assertion_type = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
      form.client_assertion = (await readAssertion(auth.federatedTokenFile)).trim();
    }
    return http.requestJson({
      method: "POST",
      url: apiUrl(auth.loginUrl, `/${encodeURIComponent(auth.tenantId)}/oauth2/v2.0/token`),
      form,
      zone,
      action: "obtain an Entra ID token",
      signal,
    });
  }

  async function fetchToken(zone: string, signal: AbortSignal): Promise<string> {
    const body = await request(zone, signal);
    if (typeof body.access_token !== "string" || body.access_token.length === 0) {
      throw new UpstreamError(
        "dns_provider_error",
        `azure: the token endpoint returned no access_token (zone ${zone})`,
        {
          details: { provider: "azure", zone },
        },
      );
    }
    const lifetime = Math.max(60, Number(body.expires_in ?? 3600) || 3600);
    cached = { token: body.access_token, until: options.clock.now().getTime() + (lifetime - 60) * 1000 };
    return body.access_token;
  }

  return {
    async token(zone, signal) {
      if (cached && options.clock.now().getTime() < cached.until) return cached.token;
      inFlight ??= fetchToken(zone, AbortSignal.timeout(60_000)).finally(() => {
        inFlight = undefined;
      });
      return untilAborted(inFlight, signal);
    },
  };
}

async function readAssertion(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    throw new UpstreamError("dns_provider_config", `azure: cannot read the federated token file ${path}`, {
      retryable: false,
      cause: e,
      details: { provider: "azure", path },
    });
  }
}
