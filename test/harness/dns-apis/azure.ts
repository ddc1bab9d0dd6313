import { randomBytes } from "node:crypto";
import {
  Violation,
  bearer,
  check,
  startLoopbackApi,
  type ApiReply,
  type LoopbackApi,
  type TxtChangeHook,
} from "./loopback-api.js";

/**
 * Entra ID token endpoint + IMDS + Azure Resource Manager DNS record sets, on one loopback server:
 * - POST /:tenant/oauth2/v2.0/token: client_credentials with client_secret or a federated
 *   client_assertion; scope must be `https://management.azure.com/.default`; wrong secret → 401
 *   invalid_client (AADSTS7000215), unknown assertion → 400 invalid_grant.
 * - GET /metadata/identity/oauth2/token: needs `Metadata: true`, api-version and resource.
 * - GET/PUT/DELETE /subscriptions/:s/resourceGroups/:rg/providers/Microsoft.Network/dnsZones/:zone/TXT/:name
 *   with api-version, ETags (If-Match / If-None-Match: *, 412 on mismatch), Bearer tokens it issued.
 */
export interface AzureApi extends LoopbackApi {
  tokenRequests(): number;
}

interface RecordSet {
  etag: string;
  ttl: number;
  values: string[];
}

export async function startAzureApi(options: {
  tenantId: string;
  clientId: string;
  clientSecret: string;
  /** A federated token the double accepts as client_assertion. */
  federatedToken?: string;
  /** Managed identity is available (IMDS answers). */
  managedIdentity?: boolean;
  subscriptionId: string;
  resourceGroup: string;
  zones: string[];
  onChange?: TxtChangeHook;
}): Promise<AzureApi> {
  const tokens = new Set<string>();
  const sets = new Map<string, RecordSet>();
  let tokenCount = 0;
  const issue = (): ApiReply => {
    const token = `eyJ0.${randomBytes(24).toString("base64url")}`;
    tokens.add(token);
    return {
      status: 200,
      json: { token_type: "Bearer", expires_in: 3599, ext_expires_in: 3599, access_token: token },
    };
  };
  const armError = (status: number, code: string, message: string): ApiReply => ({
    status,
    json: { error: { code, message } },
  });
  const prefix = `/subscriptions/${options.subscriptionId}/resourceGroups/${options.resourceGroup}/providers/Microsoft.Network/dnsZones/`;

  const api = await startLoopbackApi({
    name: "azure",
    onChange: options.onChange,
    async handle({ req, store, json }) {
      if (req.path === `/${options.tenantId}/oauth2/v2.0/token`) {
        tokenCount += 1;
        check(req.method === "POST", "token endpoint takes POST");
        check(
          req.headers["content-type"]?.startsWith("application/x-www-form-urlencoded"),
          "token request must be form-encoded",
        );
        const form = new URLSearchParams(req.body);
        check(form.get("grant_type") === "client_credentials", `grant_type ${form.get("grant_type")}`);
        check(form.get("scope") === "https://management.azure.com/.default", `scope ${form.get("scope")}`);
        if (form.get("client_id") !== options.clientId) {
          return {
            status: 400,
            json: { error: "unauthorized_client", error_description: "AADSTS700016: Application not found" },
          };
        }
        if (form.has("client_assertion")) {
          check(
            form.get("client_assertion_type") === "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion_type",
          );
          check(!form.has("client_secret"), "both a secret and an assertion");
          if (!options.federatedToken || form.get("client_assertion") !== options.federatedToken) {
            return {
              status: 400,
              json: {
                error: "invalid_grant",
                error_description: "AADSTS700211: No matching federated identity record found",
              },
            };
          }
          return issue();
        }
        if (form.get("client_secret") !== options.clientSecret) {
          return {
            status: 401,
            json: {
              error: "invalid_client",
              error_description: "AADSTS7000215: Invalid client secret provided.",
            },
          };
        }
        return issue();
      }
      if (req.path === "/metadata/identity/oauth2/token") {
        tokenCount += 1;
        check(req.method === "GET", "IMDS takes GET");
        check(req.headers.metadata === "true", "IMDS needs Metadata: true");
        check(req.query.get("api-version"), "IMDS needs api-version");
        check(
          req.query.get("resource") === "https://management.azure.com/",
          `resource ${req.query.get("resource")}`,
        );
        if (!options.managedIdentity)
          return { status: 400, json: { error: "invalid_request", error_description: "Identity not found" } };
        const reply = issue();
        const body = reply.json as { expires_in: number };
        return {
          ...reply,
          json: { ...body, expires_in: String(body.expires_in), resource: "https://management.azure.com/" },
        };
      }

      const t = bearer(req);
      if (!t || !tokens.has(t))
        return armError(401, "InvalidAuthenticationToken", "The access token is invalid.");
      check(req.query.get("api-version") === "2018-05-01", `api-version ${req.query.get("api-version")}`);
      if (!req.path.startsWith(prefix)) {
        if (req.path.startsWith("/subscriptions/"))
          return armError(403, "AuthorizationFailed", "The client does not have authorization");
        throw new Violation("no such endpoint");
      }
      const [zone, type, name, ...rest] = req.path.slice(prefix.length).split("/").map(decodeURIComponent);
      check(
        type === "TXT" && name && rest.length === 0,
        `expected …/dnsZones/<zone>/TXT/<name>, got ${req.path}`,
      );
      if (!options.zones.includes(zone!))
        return armError(
          404,
          "ParentResourceNotFound",
          `Can not perform requested operation on nested resource. Parent resource '${zone}' not found.`,
        );
      check(!name.endsWith(zone!) && !name.endsWith("."), `record name must be relative: ${name}`);
      const fqdn = name === "@" ? zone! : `${name}.${zone}`;
      const current = sets.get(fqdn);
      const view = (s: RecordSet) => ({
        id: `${prefix}${zone}/TXT/${name}`,
        name,
        type: "Microsoft.Network/dnszones/TXT",
        etag: s.etag,
        properties: {
          fqdn: `${fqdn}.`,
          TTL: s.ttl,
          TXTRecords: s.values.map((v) => ({ value: [v] })),
          provisioningState: "Succeeded",
        },
      });
      const ifMatch = req.headers["if-match"];
      const ifNoneMatch = req.headers["if-none-match"];

      if (req.method === "GET") {
        if (!current)
          return armError(
            404,
            "NotFound",
            `The resource record '${name}' does not exist in resource group '${options.resourceGroup}'.`,
          );
        return { status: 200, json: view(current) };
      }
      if (req.method === "PUT") {
        check(
          ifMatch !== undefined || ifNoneMatch === "*",
          "PUT without If-Match or If-None-Match: * would overwrite blindly",
        );
        if (ifNoneMatch === "*" && current)
          return armError(412, "PreconditionFailed", "The record set already exists.");
        if (ifMatch !== undefined && ifMatch !== current?.etag)
          return armError(412, "PreconditionFailed", "The ETag does not match.");
        check(req.headers["content-type"]?.startsWith("application/json"), "PUT without a JSON content type");
        const body = json<{ properties?: { TTL?: number; TXTRecords?: { value?: string[] }[] } }>();
        const ttl = body.properties?.TTL;
        check(typeof ttl === "number" && ttl > 0, `TTL ${ttl}`);
        const recs = body.properties?.TXTRecords;
        check(Array.isArray(recs) && recs.length > 0, "TXTRecords empty");
        check(
          recs.every((r) => Array.isArray(r.value) && r.value.length === 1 && r.value[0]!.length > 0),
          "each TXT record must be one string",
        );
        const next: RecordSet = {
          etag: randomBytes(8).toString("hex"),
          ttl,
          values: recs.map((r) => r.value![0]!),
        };
        sets.set(fqdn, next);
        await store.set(fqdn, next.values);
        return { status: current ? 200 : 201, json: view(next) };
      }
      check(req.method === "DELETE", `unexpected ${req.method}`);
      if (ifMatch !== undefined && ifMatch !== current?.etag)
        return armError(412, "PreconditionFailed", "The ETag does not match.");
      if (!current) return { status: 204 };
      sets.delete(fqdn);
      await store.set(fqdn, []);
      return { status: 200 };
    },
  });
  return { ...api, tokenRequests: () => tokenCount };
}
