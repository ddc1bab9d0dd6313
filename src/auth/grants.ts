import { ForbiddenError } from "../core/errors.js";
import { patternMatches } from "../core/names.js";
import type { Principal } from "./authenticator.js";

/**
 * Name grants: which certificate names an identity may obtain. A grant list is a list of patterns
 * (core/names.ts `patternMatches`; the semantics are written out in docs/auth/grants.md):
 *
 * - `example.com`   exactly that name;
 * - `*.example.com` the wildcard certificate name `*.example.com` and any single-label child
 *                   (`a.example.com`), but not `example.com` nor `a.b.example.com`;
 * - `.example.com`  every name strictly below example.com at any depth, wildcards included;
 * - `*`             every name.
 *
 * "all" (API keys configured without a grant list) covers everything. An empty list covers nothing.
 * Names are expected to be normalised already (core/names.ts normalizeNames).
 */

export type Grants = Principal["grants"];

/** Is `name` covered by any of `grants`? */
export function isNameGranted(grants: Grants, name: string): boolean {
  if (grants === "all") return true;
  return grants.some((pattern) => patternMatches(pattern, name));
}

/** The names in `names` that `grants` does not cover, in request order. */
export function refusedNames(grants: Grants, names: readonly string[]): string[] {
  return names.filter((name) => !isNameGranted(grants, name));
}

/**
 * Throw ForbiddenError `domain_not_granted` (403) unless every name is covered by the principal's grants.
 * `details.names` lists the refused names (the caller's own request, so safe to show).
 */
export function authorizeNames(principal: Principal, names: string[]): void {
  const refused = refusedNames(principal.grants, names);
  if (refused.length === 0) return;
  throw new ForbiddenError(
    "domain_not_granted",
    `this identity may not obtain certificates for: ${refused.join(", ")}`,
    `${principal.id} (${principal.method}) is not granted ${refused.join(", ")}`,
    { names: refused },
  );
}
