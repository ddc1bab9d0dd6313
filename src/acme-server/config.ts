import { z } from "zod";

/**
 * Configuration of the ACME server (RFC 8555). Every profile is its own URL family
 * (`/acme/<name>/directory`), with its own accounts, authorization mode and issuer; `/acme/directory`
 * is the first profile's directory (the one named "default" when there is one).
 */

export const PROFILE_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export const acmeProfileSchema = z
  .strictObject({
    name: z
      .string()
      .regex(PROFILE_NAME, "lowercase letters, digits and inner hyphens")
      .refine((n) => n !== "directory", "`directory` is reserved")
      .describe("profile name; its directory is /acme/<name>/directory"),
    mode: z
      .enum(["eab", "challenge"])
      .default("eab")
      .describe(
        "eab: accounts bind an External Account Binding key and may obtain the names it grants at once; challenge: certfleet validates HTTP-01, DNS-01 and TLS-ALPN-01 itself",
      ),
    issuer: z
      .string()
      .min(1)
      .default("embedded")
      .describe("id of the issuer that signs (embedded CA or an upstream ACME issuer)"),
    description: z.string().min(1).optional().describe("shown in the directory's meta.profiles"),
    ordersPerHour: z.number().int().positive().default(300).describe("new orders per account per hour"),
    maxPendingAuthorizations: z
      .number()
      .int()
      .positive()
      .default(300)
      .describe("pending authorizations per account"),
    eabRebindWindow: z
      .number()
      .int()
      .nonnegative()
      .default(600_000)
      .describe(
        "ms after an EAB key's first bind during which the same client (same contacts) may bind it again with another account key, as Caddy does when it registers from several sites at once; 0: one account per key",
      ),
    allowPrivateAddresses: z
      .boolean()
      .default(false)
      .describe(
        "let challenge validation connect to loopback, private and link-local addresses (never on a public server)",
      ),
    ports: z
      .strictObject({
        http01: z
          .number()
          .int()
          .min(1)
          .max(65535)
          .default(80)
          .describe("port HTTP-01 validation connects to"),
        tlsAlpn01: z
          .number()
          .int()
          .min(1)
          .max(65535)
          .default(443)
          .describe("port TLS-ALPN-01 validation connects to"),
      })
      .prefault({}),
    termsOfService: z.url().optional().describe("meta.termsOfService"),
    website: z.url().optional().describe("meta.website"),
    renewalExplanationUrl: z
      .url()
      .optional()
      .describe("ARI explanationURL (default: a short page served by certfleet)"),
  })
  .describe("an ACME profile");

export const acmeServerConfigSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe("serve ACME under /acme on the API listener"),
    externalUrl: z
      .url()
      .optional()
      .describe(
        "base URL clients use (e.g. https://certfleet.example.com:8443); JWS `url` headers are checked against it. Default: from the request's Host",
      ),
    profiles: z
      .array(acmeProfileSchema)
      .min(1)
      .default(() => [acmeProfileSchema.parse({ name: "default" })])
      .refine((ps) => new Set(ps.map((p) => p.name)).size === ps.length, "profile names must be unique")
      .describe("ACME profiles; default: one profile `default` in eab mode on the embedded CA"),
    dnsResolvers: z
      .array(z.string().min(1))
      .default([])
      .describe("DNS servers (host:port) challenge validation resolves through; default: the system's"),
    validationTimeout: z
      .number()
      .int()
      .positive()
      .default(10_000)
      .describe("ms per challenge validation attempt"),
  })
  .describe("the built-in ACME server");

export type AcmeProfileConfig = z.output<typeof acmeProfileSchema>;
export type AcmeProfileInput = z.input<typeof acmeProfileSchema>;
export type AcmeServerConfig = z.output<typeof acmeServerConfigSchema>;
export type AcmeServerConfigInput = z.input<typeof acmeServerConfigSchema>;
