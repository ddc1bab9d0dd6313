import { ForbiddenError, ValidationError } from "../core/errors.js";
import { patternMatches } from "../core/names.js";
import type { SshCertificateType } from "./certificate.js";

/**
 * SSH grants: which principals (user names for user certificates, host names for host certificates)
 * and which certificate types an identity may get, plus what its certificates carry. Absent = no SSH
 * certificates at all (least privilege: an API key or identity gets SSH only when configured for it).
 *
 * Principal patterns work as for domain grants (docs/auth/grants.md) where a principal is a host name:
 * `*` covers every principal, `*.example.com` one label below, `.example.com` any depth below.
 * Anything else is matched exactly and case-sensitively, because Unix user names are.
 */
export interface SshGrant {
  principals: readonly string[];
  /** Default `["user"]`. */
  certificateTypes: readonly SshCertificateType[];
  /** User-certificate extensions; default the five `ssh-keygen` gives (permit-pty, …). */
  extensions?: readonly string[] | undefined;
  /** `force-command` critical option in every user certificate. */
  forceCommand?: string | undefined;
  /** `source-address` critical option (CIDR list) in every user certificate. */
  sourceAddresses?: readonly string[] | undefined;
  /** Cap on the validity of one certificate (below the server-wide cap). */
  maxValidityMs?: number | undefined;
}

export const MAX_PRINCIPALS = 32;
const PRINCIPAL = /^[^\s,*?!"'\\]{1,256}$/;
const hasControlCharacter = (p: string) =>
  [...p].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);

export function sshPrincipalMatches(pattern: string, principal: string): boolean {
  if (pattern === "*") return true;
  if (pattern.startsWith("*.") || pattern.startsWith(".")) return patternMatches(pattern, principal);
  return pattern === principal;
}

/** Check the requested principals' shape: 1 to 32, no commas, wildcards, spaces or control characters. */
export function checkPrincipalSyntax(principals: readonly string[]): void {
  if (principals.length === 0) {
    // an empty principals list means "any principal" to OpenSSH: never issue one
    throw new ValidationError("ssh_principals_empty", "name at least one principal");
  }
  if (principals.length > MAX_PRINCIPALS)
    throw new ValidationError("ssh_principals_too_many", `at most ${MAX_PRINCIPALS} principals`);
  const bad = principals.filter((p) => !PRINCIPAL.test(p) || hasControlCharacter(p));
  if (bad.length > 0) {
    throw new ValidationError(
      "ssh_principal_invalid",
      "a principal is 1–256 characters without spaces, commas, wildcards or control characters",
      { principals: bad.map((p) => p.slice(0, 64)) },
    );
  }
}

/**
 * Throw 403 `ssh_type_not_granted` or `principal_not_granted` (with `details.principals`, the refused
 * ones from the caller's own request) unless the grant covers the type and every principal.
 */
export function authorizeSsh(
  grant: SshGrant | undefined,
  who: string,
  type: SshCertificateType,
  principals: readonly string[],
): SshGrant {
  if (!grant || !grant.certificateTypes.includes(type)) {
    throw new ForbiddenError(
      "ssh_type_not_granted",
      `this identity may not obtain ${type} certificates`,
      `${who} has no SSH grant for ${type} certificates`,
    );
  }
  const refused = principals.filter(
    (p) => !grant.principals.some((pattern) => sshPrincipalMatches(pattern, p)),
  );
  if (refused.length > 0) {
    throw new ForbiddenError(
      "principal_not_granted",
      `this identity may not obtain certificates for: ${refused.join(", ")}`,
      `${who} is not granted the ${type} principals ${refused.join(", ")}`,
      { principals: refused },
    );
  }
  return grant;
}
