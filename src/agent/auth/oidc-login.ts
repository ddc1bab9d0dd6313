import { parseDuration } from "../../config/schema.js";
import { AgentAuthError, errorText } from "../agent-errors.js";
import type { AuthConfigOf } from "../config/auth-config.js";
import { openBrowser } from "../oidc/browser.js";
import { startLoopbackRedirect } from "../oidc/loopback-redirect.js";
import { createPkce, randomToken } from "../oidc/pkce.js";
import { refreshTokenFile, type RefreshTokenFile } from "../oidc/token-cache-file.js";
import { bearer, type CredentialDeps, type CredentialSource } from "./credential-source.js";
import { requestToken, tokenField, type TokenResponse } from "./http-token.js";
import { jwtExpiry, MAX_REFRESH_MARGIN_MS } from "./shared-token.js";

/**
 * Interactive OIDC login for people: authorization code + PKCE (S256) with a loopback redirect on a
 * port chosen at run time, the browser opened for the user (the URL is also printed), and the refresh
 * token reused — in memory, and in `token_cache` when configured — so the browser is needed only when
 * the refresh token stops working. Presents the ID token (default) or the access token.
 *
 * Steps of `get`: cached token still good → it; else refresh grant → new tokens; else interactive login.
 */

interface Endpoints {
  authorization_endpoint: string;
  token_endpoint: string;
}

interface Tokens {
  presented: string;
  /** When to refresh: shortly before expiry (shared-token.ts's margin); undefined = until refused. */
  refreshAt: number | undefined;
}

export function createOidcLoginSource(
  config: AuthConfigOf<"oidc">,
  uuid: string | undefined,
  deps: CredentialDeps,
): CredentialSource {
  const method = "oidc";
  const issuer = config.issuer.replace(/\/+$/, "");
  const loginTimeoutMs = parseDuration(config.login_timeout);
  const cacheFile: RefreshTokenFile | undefined = config.token_cache
    ? refreshTokenFile(config.token_cache, issuer, config.client_id)
    : undefined;
  let endpoints: Endpoints | undefined;
  let refreshToken: string | undefined;
  let refreshLoaded = false;
  let current: Tokens | undefined;
  let running: Promise<Tokens> | undefined;

  const fail = (code: string, message: string, internal?: string) =>
    new AgentAuthError(method, code, message, { internal });

  async function discover(signal: AbortSignal): Promise<Endpoints> {
    if (endpoints) return endpoints;
    const url = `${issuer}/.well-known/openid-configuration`;
    const res = await requestToken(
      deps.fetch,
      method,
      url,
      { headers: { accept: "application/json" } },
      signal,
    );
    const authorization = tokenField(method, url, res, "authorization_endpoint");
    const token = tokenField(method, url, res, "token_endpoint");
    endpoints = { authorization_endpoint: authorization, token_endpoint: token };
    return endpoints;
  }

  async function tokenRequest(params: Record<string, string>, signal: AbortSignal): Promise<TokenResponse> {
    const { token_endpoint } = await discover(signal);
    const headers: Record<string, string> = {
      "content-type": "application/x-www-form-urlencoded",
      accept: "application/json",
    };
    const body = new URLSearchParams({ ...params, client_id: config.client_id });
    if (config.client_secret !== undefined) {
      const id = encodeURIComponent(config.client_id);
      const secret = encodeURIComponent(config.client_secret);
      headers.authorization = `Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}`;
    }
    return requestToken(
      deps.fetch,
      method,
      token_endpoint,
      { method: "POST", headers, body: body.toString() },
      signal,
    );
  }

  /** Take the tokens from a token response; remember a (rotated) refresh token. */
  async function accept(res: TokenResponse, nonce: string | undefined): Promise<Tokens> {
    const { token_endpoint } = endpoints!;
    const presented = tokenField(method, token_endpoint, res, config.token);
    const body = JSON.parse(res.body) as Record<string, unknown>;
    if (nonce !== undefined && typeof body.id_token === "string") {
      const claims = JSON.parse(
        Buffer.from(body.id_token.split(".")[1] ?? "", "base64url").toString("utf8"),
      ) as { nonce?: unknown };
      if (claims.nonce !== nonce)
        throw fail("oidc_nonce_mismatch", "the ID token's nonce is not the one this login sent");
    }
    if (typeof body.refresh_token === "string" && body.refresh_token !== refreshToken) {
      refreshToken = body.refresh_token;
      await cacheFile
        ?.save(refreshToken)
        .catch((e: unknown) => deps.logger.warn({ err: errorText(e) }, "could not write token_cache"));
    }
    const expiresIn = typeof body.expires_in === "number" ? body.expires_in : undefined;
    const now = deps.clock.now().getTime();
    const expiresAt =
      jwtExpiry(presented)?.getTime() ?? (expiresIn !== undefined ? now + expiresIn * 1000 : undefined);
    const refreshAt =
      expiresAt === undefined || expiresAt <= now
        ? undefined
        : expiresAt - Math.min(MAX_REFRESH_MARGIN_MS, (expiresAt - now) / 4);
    return { presented, refreshAt };
  }

  async function refresh(signal: AbortSignal): Promise<Tokens | undefined> {
    if (!refreshLoaded) {
      refreshLoaded = true;
      refreshToken ??= await cacheFile?.load();
    }
    if (!refreshToken) return undefined;
    const res = await tokenRequest({ grant_type: "refresh_token", refresh_token: refreshToken }, signal);
    if (res.status >= 400 && res.status < 500) {
      deps.logger.info({ status: res.status }, "refresh token no longer accepted; logging in again");
      refreshToken = undefined;
      await cacheFile?.save(undefined).catch(() => undefined);
      return undefined;
    }
    return accept(res, undefined);
  }

  async function login(signal: AbortSignal): Promise<Tokens> {
    const { authorization_endpoint } = await discover(signal);
    const pkce = createPkce();
    const state = randomToken();
    const nonce = randomToken();
    const redirect = await startLoopbackRedirect({
      port: config.redirect_port,
      state,
      timeoutMs: loginTimeoutMs,
      signal,
    });
    try {
      const url = new URL(authorization_endpoint);
      url.search = new URLSearchParams({
        response_type: "code",
        client_id: config.client_id,
        redirect_uri: redirect.redirectUri,
        scope: config.scopes.join(" "),
        state,
        nonce,
        code_challenge: pkce.challenge,
        code_challenge_method: pkce.method,
        ...(config.scopes.includes("offline_access") ? { prompt: "consent" } : {}),
      }).toString();
      const href = url.toString();
      deps.tell(`Log in to continue. If no browser opens, visit:\n  ${href}`);
      if (!(await openBrowser(href, config.browser, deps.platform))) deps.tell("(could not start a browser)");
      let code: string;
      try {
        ({ code } = await redirect.response);
      } catch (e) {
        throw fail("oidc_login_failed", "the browser login did not complete", errorText(e));
      }
      const res = await tokenRequest(
        {
          grant_type: "authorization_code",
          code,
          redirect_uri: redirect.redirectUri,
          code_verifier: pkce.verifier,
        },
        signal,
      );
      return await accept(res, nonce);
    } finally {
      await redirect.close();
    }
  }

  const fresh = () =>
    current !== undefined &&
    (current.refreshAt === undefined || current.refreshAt > deps.clock.now().getTime());

  return {
    method,
    async get(signal) {
      if (!fresh()) {
        running ??= (async () => (await refresh(signal)) ?? (await login(signal)))().finally(() => {
          running = undefined;
        });
        current = await running;
      }
      return bearer(current!.presented, uuid);
    },
    refused(rejected) {
      // Only the token that was refused: a concurrent caller may already hold its replacement.
      if (current !== undefined && rejected.token === current.presented) current = undefined;
      return true;
    },
  };
}
