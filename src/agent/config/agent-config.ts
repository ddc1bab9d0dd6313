import { z } from "zod";
import { KEY_TYPES } from "../../core/key-types.js";
import { authSchema, identityUuid } from "./auth-config.js";

/**
 * The agent's configuration file (YAML, `${VAR}` interpolated, strict: an unknown key is an error naming
 * its path). Relative paths are relative to the config file's directory.
 */

const nonEmpty = z.string().min(1);
const duration = z
  .union([z.number().int().nonnegative(), z.string().regex(/^\d+(ms|s|m|h|d)$/, "use e.g. 30s, 5m, 12h, 1d")])
  .describe("milliseconds, or a string like 30s, 5m, 12h, 1d");
const fileMode = z
  .string()
  .regex(/^0?[0-7]{3}$/, 'an octal mode in quotes, e.g. "0640"')
  .describe('octal, quoted: "0640"');
const owner = z
  .union([
    z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$/, "a user/group name or number"),
    z.number().int().min(0),
  ])
  .describe("name (looked up in /etc/passwd or /etc/group) or numeric id");

const pemOutput = z
  .strictObject({
    cert: nonEmpty.optional().describe("leaf certificate"),
    chain: nonEmpty.optional().describe("issuer chain without the leaf"),
    fullchain: nonEmpty.optional().describe("leaf followed by the chain"),
    key: nonEmpty.optional().describe("private key (PKCS#8 PEM)"),
  })
  .refine(
    (o) => Object.values(o).some((v) => v !== undefined),
    "name at least one of cert, chain, fullchain, key",
  );

const pkcs12Output = z.strictObject({
  path: nonEmpty,
  password: z.string().describe("PKCS#12 password (secret; may be empty)"),
  friendly_name: nonEmpty.optional(),
});

const certificateEntry = z.strictObject({
  name: z
    .string()
    .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, "lowercase letters, digits, dot, dash, underscore")
    .describe("local name: the store directory and log lines use it"),
  domains: z.array(nonEmpty).min(1).max(100),
  key_type: z.enum(KEY_TYPES).default("ec256"),
  key_custody: z
    .enum(["server", "local"])
    .default("server")
    .describe(
      "server: the server's key (shared by load-balanced nodes); local: generated here, sent as a CSR",
    ),
  outputs: z
    .strictObject({
      pem: pemOutput.optional(),
      combined: nonEmpty.optional().describe("one file: leaf, chain, then the private key"),
      pkcs12: pkcs12Output.optional(),
    })
    .default({}),
  owner: owner.optional(),
  group: owner.optional(),
  mode: fileMode.default("0644").describe("certificate files"),
  key_mode: fileMode.default("0600").describe("files holding the private key (key, combined, PKCS#12)"),
  reload: nonEmpty.optional().describe("shell command run after the files changed"),
  reload_timeout: duration.default("60s"),
});

export const agentConfigSchema = z.strictObject({
  api: z
    .strictObject({
      url: z
        .url()
        .optional()
        .describe(
          "the certfleet server, e.g. https://certfleet.example.com:8443 (default $CERTFLEET_URL, then https://certfleet:8443)",
        ),
      uuid: identityUuid
        .optional()
        .describe("identity UUID for the methods that keep it here (see the UUID table)"),
      ca_bundle: nonEmpty
        .optional()
        .describe("PEM bundle trusted for the server's TLS, besides the system roots"),
      timeout: duration
        .default("5m")
        .describe("longest wait for one answer (a first issuance can take a minute)"),
    })
    .prefault({}),
  auth: authSchema,
  state_dir: nonEmpty
    .optional()
    .describe(
      "where installed generations live (default $CERTFLEET_STATE_DIR, then /var/lib/certfleet-agent)",
    ),
  certificates: z
    .array(certificateEntry)
    .default([])
    .describe("what to keep installed; omitted = the certificates the server assigns this identity"),
  defaults: z
    .strictObject({
      dir: nonEmpty
        .optional()
        .describe(
          "assigned certificates go to <dir>/<name>/{cert,chain,fullchain,key}.pem (default $CERTFLEET_CERTS_DIR, then /etc/certfleet/certs)",
        ),
      owner: owner.optional(),
      group: owner.optional(),
      mode: fileMode.default("0644"),
      key_mode: fileMode.default("0600"),
      reload: nonEmpty.optional().describe("shell command run after an assigned certificate's files changed"),
      reload_timeout: duration.default("60s"),
    })
    .prefault({})
    .describe("how server-assigned certificates are installed (used when there is no certificates list)"),
  traefik: z
    .strictObject({
      path: nonEmpty.describe("Traefik dynamic-configuration file listing the installed certificates"),
      mode: fileMode.default("0644"),
    })
    .optional(),
  renew: z
    .strictObject({
      jitter: duration.default("10m").describe("at most this random delay after the server's renewAt"),
      max_interval: duration.default("24h").describe("check with the server at least this often"),
    })
    .prefault({}),
  log_level: z.enum(["trace", "debug", "info", "warn", "error", "silent"]).default("info"),
});

export type AgentConfigFile = z.infer<typeof agentConfigSchema>;
export type CertificateEntryConfig = z.infer<typeof certificateEntry>;
