import { exportJWK, generateKeyPair, SignJWT, type JWK } from "jose";
import { json, startLoopbackHttp, type LoopbackHttp } from "./loopback-http.js";

/**
 * An Auth0 tenant as machine-to-machine clients see it, on 127.0.0.1:<free port>:
 * `/.well-known/openid-configuration` (issuer **with** the trailing slash, as Auth0 publishes it),
 * `/.well-known/jwks.json`, and `POST /oauth/token` taking the client-credentials grant as JSON or form
 * (`client_id`, `client_secret`, `audience`, `grant_type`). Access tokens are RS256 JWTs with
 * `iss: <origin>/`, `sub: <client_id>@clients`, `aud`, `azp`, `gty: client-credentials` and `scope`
 * set to the scopes the client is authorized for on that API.
 */
export interface Auth0Tenant extends LoopbackHttp {
  /** The issuer as Auth0 writes it (ends in "/"). */
  issuer: string;
}

export async function startAuth0Tenant(options: {
  clients: Record<string, { secret: string; apis: Record<string, string[]> }>;
}): Promise<Auth0Tenant> {
  const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true });
  const kid = "auth0-key-1";
  const publicJwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" };
  let issuer = "";
  const http = await startLoopbackHttp(async (req, res) => {
    const path = req.url.pathname;
    if (req.method === "GET" && path === "/.well-known/openid-configuration")
      return json(res, 200, {
        issuer,
        jwks_uri: `${issuer}.well-known/jwks.json`,
        token_endpoint: `${issuer}oauth/token`,
      });
    if (req.method === "GET" && path === "/.well-known/jwks.json")
      return json(res, 200, { keys: [publicJwk] });
    if (req.method === "POST" && path === "/oauth/token") {
      const body: Record<string, string> = (req.headers["content-type"] ?? "").includes("json")
        ? (JSON.parse(req.body || "{}") as Record<string, string>)
        : Object.fromEntries(new URLSearchParams(req.body));
      if (body.grant_type !== "client_credentials")
        return json(res, 403, {
          error: "unsupported_grant_type",
          error_description: "Unsupported grant type",
        });
      const client = options.clients[body.client_id ?? ""];
      if (!client || client.secret !== body.client_secret)
        return json(res, 401, { error: "access_denied", error_description: "Unauthorized" });
      const scopes = client.apis[body.audience ?? ""];
      if (!scopes)
        return json(res, 403, {
          error: "access_denied",
          error_description: `Client is not authorized to access "${body.audience}".`,
        });
      const token = await new SignJWT({
        gty: "client-credentials",
        azp: body.client_id,
        scope: scopes.join(" "),
      })
        .setProtectedHeader({ alg: "RS256", typ: "JWT", kid })
        .setIssuer(issuer)
        .setSubject(`${body.client_id}@clients`)
        .setAudience(body.audience!)
        .setIssuedAt()
        .setExpirationTime("5m")
        .sign(privateKey);
      return json(res, 200, { access_token: token, expires_in: 300, token_type: "Bearer" });
    }
    json(res, 404, { error: "not_found" });
  });
  issuer = `${http.origin}/`;
  return { ...http, issuer };
}
