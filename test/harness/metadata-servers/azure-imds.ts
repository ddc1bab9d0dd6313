import { json, startLoopbackHttp, type LoopbackHttp } from "./loopback-http.js";

/**
 * Azure's instance metadata managed-identity endpoint: `GET /metadata/identity/oauth2/token?api-version=…
 * &resource=…&client_id=…` with header `Metadata: true` (refused with 400 without it, as IMDS does).
 */
export async function startAzureImds(
  mint: (request: { resource: string; clientId: string | null }) => Promise<string>,
): Promise<LoopbackHttp & { tokenUrl: string }> {
  const http = await startLoopbackHttp(async (req, res) => {
    if (req.url.pathname !== "/metadata/identity/oauth2/token") return json(res, 404, { error: "not_found" });
    if (req.headers.metadata !== "true")
      return json(res, 400, {
        error: "invalid_request",
        error_description: "Required metadata header not specified",
      });
    const resource = req.url.searchParams.get("resource");
    if (!req.url.searchParams.get("api-version") || !resource)
      return json(res, 400, { error: "invalid_request" });
    const token = await mint({ resource, clientId: req.url.searchParams.get("client_id") });
    json(res, 200, { access_token: token, expires_in: "3599", resource, token_type: "Bearer" });
  });
  return { ...http, tokenUrl: `${http.origin}/metadata/identity/oauth2/token` };
}
