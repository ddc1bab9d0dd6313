import { json, startLoopbackHttp, type LoopbackHttp } from "./loopback-http.js";

/**
 * Entra ID's token endpoint for workload identity federation, as the agent's `azure_jwt` method uses it:
 * `POST /{tenant}/oauth2/v2.0/token` with `grant_type=client_credentials`, `client_id`, `scope`
 * (`<resource>/.default`), `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`
 * and `client_assertion` (the federated token). `checkAssertion` decides whether the assertion is
 * acceptable; `mint` makes the access token for (tenant, clientId, audience).
 */
export async function startEntraTokenEndpoint(options: {
  checkAssertion: (assertion: string) => Promise<boolean>;
  mint: (request: { tenant: string; clientId: string; audience: string }) => Promise<string>;
}): Promise<LoopbackHttp & { authorityHost: string }> {
  const http = await startLoopbackHttp(async (req, res) => {
    const m = /^\/([^/]+)\/oauth2\/v2\.0\/token$/.exec(req.url.pathname);
    if (req.method !== "POST" || !m) return json(res, 404, { error: "not_found" });
    const form = new URLSearchParams(req.body);
    const scope = form.get("scope") ?? "";
    if (
      form.get("grant_type") !== "client_credentials" ||
      form.get("client_assertion_type") !== "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" ||
      !form.get("client_id") ||
      !scope.endsWith("/.default")
    ) {
      return json(res, 400, { error: "invalid_request" });
    }
    if (!(await options.checkAssertion(form.get("client_assertion") ?? "")))
      return json(res, 401, { error: "invalid_client" });
    const token = await options.mint({
      tenant: m[1]!,
      clientId: form.get("client_id")!,
      audience: scope.slice(0, -"/.default".length),
    });
    json(res, 200, { token_type: "Bearer", expires_in: 3600, access_token: token });
  });
  return { ...http, authorityHost: http.origin + "/" };
}
