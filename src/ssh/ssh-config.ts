import { isIP } from "node:net";
import { z } from "zod";
import { SSH_CA_KEY_TYPES } from "./ca-key.js";
import { KNOWN_EXTENSIONS, SSH_CERTIFICATE_TYPES, type SshCertificateType } from "./certificate.js";
import type { SshGrant } from "./ssh-grant.js";
import type { SshCaOptions } from "./ssh-ca.js";

/**
 * The SSH parts of the configuration file: the `ssh:` section (the CA) and the SSH grant fields of
 * `auth.apiKeys[]`. Kept here so src/config/schema.ts only splices them in.
 */

const duration = z
  .union([z.number().int().positive(), z.string().regex(/^\d+(ms|s|m|h|d)$/, "use e.g. 30m, 16h, 7d")])
  .describe("milliseconds, or a string like 30s, 5m, 12h, 7d");

export function durationMs(v: number | string): number {
  if (typeof v === "number") return v;
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(v)!;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as "ms"];
  return Number(m[1]) * unit;
}

export function isCidr(v: string): boolean {
  const [address, prefix, ...rest] = v.split("/");
  const family = isIP(address ?? "");
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  if (!/^\d{1,3}$/.test(prefix)) return false;
  return Number(prefix) <= (family === 4 ? 32 : 128);
}

const extension = z
  .string()
  .refine(
    (v) => (KNOWN_EXTENSIONS as readonly string[]).includes(v) || /^[^\s@]+@[^\s@]+$/.test(v),
    `one of ${KNOWN_EXTENSIONS.join(", ")} or a vendor extension name@domain`,
  );

export const sshApiKeyFields = {
  sshPrincipals: z
    .array(z.string().min(1).max(256))
    .optional()
    .describe(
      "SSH principals this key may get certificates for (user or host names; `*`, `*.example.com`, `.example.com` patterns); omitted = no SSH certificates",
    ),
  sshCertificateTypes: z
    .array(z.enum(SSH_CERTIFICATE_TYPES))
    .min(1)
    .default(["user"])
    .describe("which SSH certificate types this key may get: user, host"),
  sshExtensions: z
    .array(extension)
    .optional()
    .describe(
      "extensions in its user certificates (default: permit-X11-forwarding, permit-agent-forwarding, permit-port-forwarding, permit-pty, permit-user-rc)",
    ),
  sshForceCommand: z
    .string()
    .min(1)
    .optional()
    .describe("`force-command` critical option written into its user certificates"),
  sshSourceAddresses: z
    .array(z.string().refine(isCidr, "an IP address or CIDR block"))
    .min(1)
    .optional()
    .describe(
      "`source-address` critical option (addresses / CIDR blocks) written into its user certificates",
    ),
  sshMaxValidity: duration.optional().describe("longest validity of one SSH certificate for this key"),
};

export type SshApiKeyFields = {
  sshPrincipals?: string[] | undefined;
  sshCertificateTypes: ("user" | "host")[];
  sshExtensions?: string[] | undefined;
  sshForceCommand?: string | undefined;
  sshSourceAddresses?: string[] | undefined;
  sshMaxValidity?: number | string | undefined;
};

/** The grant an API key's fields describe; undefined without `sshPrincipals`. */
export function sshGrantOfFields(k: SshApiKeyFields): SshGrant | undefined {
  if (k.sshPrincipals === undefined) return undefined;
  return {
    principals: Object.freeze([...k.sshPrincipals]),
    certificateTypes: Object.freeze([...k.sshCertificateTypes]),
    extensions: k.sshExtensions && Object.freeze([...k.sshExtensions]),
    forceCommand: k.sshForceCommand,
    sourceAddresses: k.sshSourceAddresses && Object.freeze([...k.sshSourceAddresses]),
    maxValidityMs: k.sshMaxValidity === undefined ? undefined : durationMs(k.sshMaxValidity),
  };
}

export const sshJwtIssuerFields = {
  sshPrincipalsClaim: z
    .string()
    .min(1)
    .optional()
    .describe(
      "claim naming the SSH principals a token may get user certificates for (e.g. preferred_username); values are exact names, never patterns",
    ),
  sshCertificateTypes: z
    .array(z.enum(SSH_CERTIFICATE_TYPES))
    .min(1)
    .optional()
    .describe("SSH certificate types a token's sshPrincipalsClaim grants (default [user])"),
};

/**
 * The SSH grant a verified token carries through its issuer's `sshPrincipalsClaim`: the claim's
 * values (a string, a space/comma-separated list, or an array) as exact principals. Values that would
 * read as patterns (`*`, `.x`, `*.x`) or are not valid principals are dropped, so a token can never
 * widen its own grant.
 */
export function sshGrantOfClaim(
  value: unknown,
  certificateTypes: readonly SshCertificateType[] | undefined,
): SshGrant | undefined {
  const raw = Array.isArray(value) ? value : typeof value === "string" ? value.split(/[\s,]+/) : [];
  const principals = raw.filter(
    (v): v is string =>
      typeof v === "string" &&
      v.length > 0 &&
      v.length <= 256 &&
      !v.startsWith(".") &&
      !/[\s,*?!"'\\]/.test(v) &&
      ![...v].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f),
  );
  if (principals.length === 0) return undefined;
  return {
    principals: Object.freeze(principals),
    certificateTypes: Object.freeze([...(certificateTypes ?? ["user"])]),
  };
}

const validity = (defaultValidity: string, maxValidity: string) =>
  z
    .strictObject({
      defaultValidity: duration.default(defaultValidity).describe("validity when a request names none"),
      maxValidity: duration.default(maxValidity).describe("longest validity anyone may get"),
    })
    .prefault({});

export const sshServerSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe("run the SSH CA (/ssh/*, /api/ssh/*)"),
    keyType: z
      .enum(SSH_CA_KEY_TYPES)
      .default("ed25519")
      .describe("type of newly created SSH CA keys (at first start and on rotation)"),
    user: validity("16h", "7d").describe("user certificates"),
    host: validity("30d", "90d").describe("host certificates"),
  })
  .describe("the SSH certificate authority (docs/ssh.md)");

/** The CA options of the `ssh:` section; a default above its maximum is reported under its key path. */
export function resolveSshCa(
  section: z.infer<typeof sshServerSchema>,
  issues: { path: string; message: string }[],
): SshCaOptions | undefined {
  const limits = (type: "user" | "host") => {
    const defaultValidityMs = durationMs(section[type].defaultValidity);
    const maxValidityMs = durationMs(section[type].maxValidity);
    if (defaultValidityMs > maxValidityMs)
      issues.push({
        path: `ssh.${type}.defaultValidity`,
        message: `must not exceed ssh.${type}.maxValidity`,
      });
    return { defaultValidityMs, maxValidityMs };
  };
  const options = { keyType: section.keyType, user: limits("user"), host: limits("host") };
  return section.enabled ? options : undefined;
}
