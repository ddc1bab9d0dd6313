import type { AuthMethod } from "./auth-config.js";

/**
 * Where the identity UUID lives in the agent config, per method — the reference agent's table, which
 * existing config files follow. Methods the reference does not list keep it in `api.uuid` (optional).
 *
 * | method          | UUID field | required |
 * |-----------------|------------|----------|
 * | client_secret   | auth.uuid  | yes      |
 * | certificate     | auth.uuid  | yes      |
 * | azure_arc       | auth.uuid  | yes      |
 * | oidc_jwt        | auth.uuid  | yes      |
 * | azure_jwt       | api.uuid   | yes      |
 * | aws_oidc        | api.uuid   | yes      |
 * | spiffe          | api.uuid   | yes      |
 * | api_key, gcp, kubernetes, exec, oidc | api.uuid | no |
 */
export const UUID_PLACEMENT: Record<AuthMethod, { field: "auth.uuid" | "api.uuid"; required: boolean }> = {
  client_secret: { field: "auth.uuid", required: true },
  certificate: { field: "auth.uuid", required: true },
  azure_arc: { field: "auth.uuid", required: true },
  oidc_jwt: { field: "auth.uuid", required: true },
  azure_jwt: { field: "api.uuid", required: true },
  aws_oidc: { field: "api.uuid", required: true },
  spiffe: { field: "api.uuid", required: true },
  api_key: { field: "api.uuid", required: false },
  gcp: { field: "api.uuid", required: false },
  kubernetes: { field: "api.uuid", required: false },
  exec: { field: "api.uuid", required: false },
  oidc: { field: "api.uuid", required: false },
};

export interface PlacementIssue {
  path: string;
  message: string;
  /** For a misplaced UUID: the field where it belongs. */
  belongsAt?: string;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Check the raw (interpolated, not yet validated) config for a UUID in the wrong section or a missing
 * required one. Runs before the strict schema so the error names where the UUID belongs instead of
 * just "unknown key". An unknown method is left to the schema.
 */
export function checkUuidPlacement(raw: unknown): PlacementIssue[] {
  if (!isRecord(raw) || !isRecord(raw.auth)) return [];
  const method = raw.auth.method;
  if (typeof method !== "string" || !(method in UUID_PLACEMENT)) return [];
  const placement = UUID_PLACEMENT[method as AuthMethod];
  const inAuth = raw.auth.uuid !== undefined;
  const inApi = isRecord(raw.api) && raw.api.uuid !== undefined;
  const issues: PlacementIssue[] = [];
  if (placement.field === "api.uuid" && inAuth) {
    issues.push({
      path: "auth.uuid",
      message: `for method ${method} the UUID belongs in api.uuid, not in the auth block`,
      belongsAt: "api.uuid",
    });
  }
  if (placement.field === "auth.uuid" && inApi) {
    issues.push({
      path: "api.uuid",
      message: `for method ${method} the UUID belongs in auth.uuid, not in the api section`,
      belongsAt: "auth.uuid",
    });
  }
  const present = placement.field === "auth.uuid" ? inAuth : inApi;
  if (placement.required && !present && issues.length === 0) {
    issues.push({ path: placement.field, message: `required for method ${method}: the identity's UUID` });
  }
  return issues;
}
