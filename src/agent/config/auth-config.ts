import { z } from "zod";

/**
 * The agent's `auth` block: one strict shape per method, field names exactly as the reference agent
 * names them (snake_case). Every remote endpoint has a config override so an operator (or a test) can
 * point it elsewhere; defaults are the real services' addresses.
 *
 * Where the identity UUID goes differs per method (reference table): `auth.uuid` for client_secret,
 * certificate, azure_arc and oidc_jwt; `api.uuid` for azure_jwt, aws_oidc and spiffe (and for the
 * methods the reference does not list: api_key, gcp, kubernetes, exec, oidc). uuid-placement.ts turns a
 * misplaced UUID into an error saying where it belongs.
 */

const UUID_PATTERN = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
export const identityUuid = z.string().regex(UUID_PATTERN, "must be a UUID (8-4-4-4-12 hex digits)");

const url = z.url();
const nonEmpty = z.string().min(1);
const duration = z
  .union([z.number().int().positive(), z.string().regex(/^\d+(ms|s|m|h)$/, "use e.g. 30s, 5m, 1h")])
  .describe("milliseconds, or a string like 30s, 5m, 1h");

/** Fields every method accepts. */
const common = {
  on_failure: nonEmpty
    .optional()
    .describe("shell command run (sh -c / cmd /C) when authentication fails; its exit code is only logged"),
};

export const apiKeyAuth = z.strictObject({
  method: z.literal("api_key"),
  api_key: nonEmpty.optional().describe("the API key (secret); prefer api_key_file or ${VAR}"),
  api_key_file: nonEmpty.optional().describe("file holding the API key"),
  ...common,
});

export const clientSecretAuth = z.strictObject({
  method: z.literal("client_secret"),
  uuid: identityUuid,
  client_id: z.string().regex(/^cour_[A-Za-z0-9_-]{8,120}$/, "client ids start with cour_"),
  client_secret: nonEmpty.describe("the machine account secret (secret)"),
  ...common,
});

export const certificateAuth = z.strictObject({
  method: z.literal("certificate"),
  uuid: identityUuid,
  cert_path: nonEmpty.describe("PEM client certificate (chain after the leaf is sent too)"),
  key_path: nonEmpty.describe("PEM private key of the client certificate"),
  ...common,
});

export const oidcJwtAuth = z.strictObject({
  method: z.literal("oidc_jwt"),
  uuid: identityUuid,
  token_endpoint: url.describe(
    "GET here (with resource and client_id query parameters) returns {access_token}",
  ),
  resource: nonEmpty.optional(),
  client_id: nonEmpty.optional(),
  ...common,
});

export const azureJwtAuth = z.strictObject({
  method: z.literal("azure_jwt"),
  tenant_id: nonEmpty,
  client_id: nonEmpty,
  token_file: nonEmpty
    .optional()
    .describe(
      "projected federated token; default $AZURE_FEDERATED_TOKEN_FILE, then /var/run/secrets/azure/tokens/azure-identity-token",
    ),
  resource: nonEmpty.default("https://management.azure.com/").describe("audience of the Entra token"),
  authority_host: url
    .optional()
    .describe("Entra authority; default $AZURE_AUTHORITY_HOST, then https://login.microsoftonline.com/"),
  imds_endpoint: url
    .default("http://169.254.169.254/metadata/identity/oauth2/token")
    .describe("managed identity endpoint, used when no federated token file exists"),
  ...common,
});

export const azureArcAuth = z.strictObject({
  method: z.literal("azure_arc"),
  uuid: identityUuid,
  resource: nonEmpty.default("https://management.azure.com/"),
  himds_port: z.number().int().min(1).max(65535).default(40342),
  himds_endpoint: url
    .optional()
    .describe("full token URL; default http://127.0.0.1:{himds_port}/metadata/identity/oauth2/token"),
  token_dir: nonEmpty
    .optional()
    .describe(
      "the only directory a challenge file may come from; default /var/opt/azcmagent/tokens/ (Windows: %ProgramData%\\AzureConnectedMachineAgent\\Tokens\\)",
    ),
  ...common,
});

export const awsOidcAuth = z.strictObject({
  method: z.literal("aws_oidc"),
  role_arn: z.string().regex(/^arn:aws[a-z-]*:iam::[0-9]{12}:role\/[\w+=,.@/-]+$/, "an IAM role ARN"),
  region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, "an AWS region like ap-southeast-2"),
  token_file: nonEmpty
    .optional()
    .describe(
      "web identity token; default $AWS_WEB_IDENTITY_TOKEN_FILE, then /var/run/secrets/eks.amazonaws.com/serviceaccount/token",
    ),
  ...common,
});

export const gcpAuth = z.strictObject({
  method: z.literal("gcp"),
  audience: nonEmpty.describe("audience of the identity token (the certfleet server's configured audience)"),
  service_account: nonEmpty.default("default"),
  metadata_url: url
    .default("http://metadata.google.internal/computeMetadata/v1")
    .describe("metadata server base URL"),
  ...common,
});

export const kubernetesAuth = z.strictObject({
  method: z.literal("kubernetes"),
  token_file: nonEmpty
    .default("/var/run/secrets/kubernetes.io/serviceaccount/token")
    .describe("projected service-account token (give it the certfleet audience)"),
  ...common,
});

export const spiffeAuth = z.strictObject({
  method: z.literal("spiffe"),
  workload_api_socket: nonEmpty
    .optional()
    .describe("unix:///path/api.sock (or a plain path); default $SPIFFE_ENDPOINT_SOCKET"),
  audience: nonEmpty.default("certfleet").describe("audience requested for the JWT-SVID"),
  spiffe_id: nonEmpty.optional().describe("which SVID to request when the workload has several"),
  ...common,
});

export const execAuth = z.strictObject({
  method: z.literal("exec"),
  command: z
    .union([nonEmpty, z.array(nonEmpty).min(1)])
    .describe("plugin: a string (run by the shell) or an argv list"),
  timeout: duration.default("5m").describe("longest a plugin run may take (browser logins are slow)"),
  ...common,
});

export const oidcLoginAuth = z.strictObject({
  method: z.literal("oidc"),
  issuer: url,
  client_id: nonEmpty,
  client_secret: nonEmpty.optional().describe("only for providers that insist; PKCE is used regardless"),
  scopes: z.array(nonEmpty).default(["openid", "profile", "email", "offline_access"]),
  token: z.enum(["id_token", "access_token"]).default("id_token").describe("which token is presented"),
  redirect_port: z.number().int().min(0).max(65535).default(0).describe("0 = a free port chosen at run time"),
  browser: z
    .union([nonEmpty, z.array(nonEmpty).min(1)])
    .optional()
    .describe("command that opens the login URL (URL appended); default xdg-open / open / start"),
  token_cache: nonEmpty.optional().describe("file keeping the refresh token between runs (mode 0600)"),
  login_timeout: duration.default("5m"),
  ...common,
});

export const authSchema = z.discriminatedUnion("method", [
  apiKeyAuth,
  clientSecretAuth,
  certificateAuth,
  oidcJwtAuth,
  azureJwtAuth,
  azureArcAuth,
  awsOidcAuth,
  gcpAuth,
  kubernetesAuth,
  spiffeAuth,
  execAuth,
  oidcLoginAuth,
]);

export type AuthConfig = z.infer<typeof authSchema>;
export type AuthMethod = AuthConfig["method"];
export type AuthConfigOf<M extends AuthMethod> = Extract<AuthConfig, { method: M }>;

export const AUTH_METHODS = authSchema.options.map((o) => o.shape.method.value) as AuthMethod[];
