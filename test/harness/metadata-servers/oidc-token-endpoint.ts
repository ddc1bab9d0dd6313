import { json, startLoopbackHttp, type LoopbackHttp } from "./loopback-http.js";

/**
 * A generic JWT token endpoint as the agent's `oidc_jwt` method expects: `GET /token?resource=…&client_id=…`
 * answers `{"access_token": <jwt>, "token_type": "Bearer"}`; `mint` decides the token from the query.
 */
export async function startOidcTokenEndpoint(
  mint: (query: { resource: string | null; clientId: string | null }) => Promise<string>,
): Promise<LoopbackHttp & { tokenUrl: string }> {
  const http = await startLoopbackHttp(async (req, res) => {
    if (req.method !== "GET" || req.url.pathname !== "/token") return json(res, 404, { error: "not_found" });
    const token = await mint({
      resource: req.url.searchParams.get("resource"),
      clientId: req.url.searchParams.get("client_id"),
    });
    json(res, 200, { access_token: token, token_type: "Bearer", expires_in: 300 });
  });
  return { ...http, tokenUrl: `${http.origin}/token` };
}
