import { z } from "zod";
import { acmeServerConfigSchema } from "../acme-server/config.js";
import { KEY_TYPES } from "../core/key-types.js";
import { LOG_FORMATS } from "../core/logger.js";
import { sshApiKeyFields, sshJwtIssuerFields, sshServerSchema } from "../ssh/ssh-config.js";

/**
 * The configuration file schema. Strict everywhere: an unknown key is an error naming its path.
 * Field names follow le-cert-server where it has one (server.*, database.path, auth.method, auth.psk.key,
 * auth.jwt.*, letsEncrypt.*) so its config files load unchanged; certfleet's own sections sit beside
 * them. Descriptions feed the generated reference (docs/config.md).
 */

export const LETS_ENCRYPT_PRODUCTION = "https://acme-v02.api.letsencrypt.org/directory";
export const LETS_ENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory";

const duration = z
  .union([
    z.number().int().nonnegative(),
    z.string().regex(/^\d+(ms|s|m|h|d)$/, "use a number of ms or e.g. 30s, 5m, 12h, 7d"),
  ])
  .describe("milliseconds, or a string like 30s, 5m, 12h, 7d");

const pattern = z.string().min(1).describe("a name pattern: example.com, *.example.com, .example.com or *");

const notificationEventType = z.enum([
  "certificate.expiring",
  "certificate.renewal_failed",
  "certificate.revoked",
  "certificate.recovered",
]);

const channelFilters = {
  name: z
    .string()
    .regex(/^[A-Za-z0-9._-]+$/, "letters, digits, . _ -")
    .optional()
    .describe("channel name (audit log, last-notified state); default: type and position"),
  events: z
    .array(notificationEventType)
    .min(1)
    .optional()
    .describe("only these event types (default: all four)"),
  names: z.array(pattern).min(1).optional().describe("only certificates with a name matching one of these"),
};

const notificationChannel = z.discriminatedUnion("type", [
  z.strictObject({
    type: z.literal("webhook"),
    url: z.url().describe("where the signed JSON event is POSTed"),
    secret: z.string().min(16).describe("HMAC-SHA256 key for the X-Certfleet-Signature header"),
    ...channelFilters,
  }),
  z.strictObject({
    type: z.literal("slack"),
    url: z.url().describe('a Slack or Teams incoming-webhook URL; receives {"text": …}'),
    ...channelFilters,
  }),
  z.strictObject({
    type: z.literal("email"),
    smtp: z.strictObject({
      host: z.string().min(1),
      port: z.number().int().min(1).max(65535).default(587),
      secure: z.boolean().default(false).describe("implicit TLS (port 465); otherwise STARTTLS when offered"),
      requireTls: z.boolean().default(true).describe("refuse to send without STARTTLS unless secure"),
      user: z.string().optional(),
      password: z.string().optional(),
    }),
    from: z.string().min(3),
    to: z.array(z.string().min(3)).min(1),
    ...channelFilters,
  }),
]);

const notificationsSchema = z.strictObject({
  channels: z.array(notificationChannel).default([]).describe("where events are delivered"),
  expiringWhenRemaining: z
    .number()
    .gt(0)
    .lt(1)
    .default(0.2)
    .describe(
      "certificate.expiring when less than this fraction of the lifetime remains (keep below renewWhenRemaining)",
    ),
  retryAttempts: z
    .number()
    .int()
    .min(1)
    .max(20)
    .default(6)
    .describe("delivery attempts per event and channel"),
  retryDelay: duration.default("10s").describe("delay before the first retry; doubles each time (max 1h)"),
  allowPrivateAddresses: z
    .boolean()
    .default(false)
    .describe("let webhook URLs reach loopback/private/link-local addresses and use plain http"),
});

const jwtIssuer = z
  .strictObject({
    issuerUrl: z
      .url()
      .optional()
      .describe(
        "issuer URL (exact `iss`); discovery at {issuerUrl}/.well-known/openid-configuration. Optional only for kind spiffe",
      ),
    audience: z
      .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
      .describe("accepted `aud` value(s)"),
    requiredScopes: z
      .array(z.string().min(1))
      .optional()
      .describe("scopes that must all be present (read from `scopeClaims`)"),
    scopeClaims: z
      .array(z.string().min(1))
      .min(1)
      .optional()
      .describe(
        "claims scopes are read from (default scope, scopes, scp); e.g. [scp, roles] for Entra app-only tokens",
      ),
    domainsClaim: z.string().min(1).optional().describe("claim listing the names this token may obtain"),
    ...sshJwtIssuerFields,
    grantAllNames: z
      .boolean()
      .optional()
      .describe(
        "a valid token with no domainsClaim and no identity record may obtain every name (le-cert-server's rule; default true in the auth.jwt / auth.issuerUrl short form, false in auth.issuers; warned at start)",
      ),
    algorithms: z
      .array(z.string())
      .optional()
      .describe("allowed JWS algorithms (default RS256, ES256, PS256, EdDSA; none and HS* are refused)"),
    jwksUri: z.url().optional().describe("JWKS URL override (skips discovery)"),
    clockToleranceSeconds: z
      .number()
      .int()
      .min(0)
      .max(300)
      .optional()
      .describe("allowed clock skew (default 30)"),
    maxTokenBytes: z
      .number()
      .int()
      .min(512)
      .max(65536)
      .optional()
      .describe("longest token accepted (default 8192)"),
    kind: z
      .enum(["oidc", "azure", "aws", "gcp", "kubernetes", "spiffe"])
      .optional()
      .describe("workload flavour: which claims bind identity records"),
    trustDomain: z
      .string()
      .optional()
      .describe("spiffe: the trust domain whose JWT-SVIDs this entry verifies"),
    bundleFile: z.string().optional().describe("spiffe: a SPIFFE trust bundle (JWKS) file"),
    bundleEndpointUrl: z.url().optional().describe("spiffe: a SPIFFE bundle endpoint URL"),
    jwksCacheMaxAgeSeconds: z.number().int().positive().optional(),
    jwksCooldownSeconds: z
      .number()
      .int()
      .positive()
      .optional()
      .describe("minimum time between two key-set fetches (default 30)"),
    fetchTimeoutMs: z.number().int().positive().optional(),
  })
  .describe("a trusted JWT/OIDC issuer");

const apiKey = z.strictObject({
  name: z
    .string()
    .min(1)
    .regex(/^[a-zA-Z0-9_.-]+$/),
  key: z.string().min(16).optional().describe("the key itself (secret); prefer keyHash"),
  keyHash: z
    .string()
    .regex(/^sha256:[0-9a-f]{64}$/)
    .optional()
    .describe("sha256:<hex> of the key"),
  grants: z
    .array(pattern)
    .optional()
    .describe("names this key may obtain; omitted = all names (warned at start)"),
  admin: z.boolean().default(false),
  ...sshApiKeyFields,
});

const dnsProvider = z.strictObject({
  id: z.string().min(1).describe("a name for this provider instance, referenced by routes"),
  type: z
    .string()
    .min(1)
    .describe("provider type from the DNS provider reference (e.g. rfc2136, cloudflare, cf)"),
  config: z
    .record(z.string(), z.unknown())
    .default({})
    .describe("provider-specific settings, validated by the provider's schema"),
  zones: z
    .array(z.string().min(1))
    .default([])
    .describe("zones (suffixes) this provider serves; longest suffix wins"),
  propagationTimeout: duration.optional(),
  propagationInterval: duration.optional(),
});

const acmeIssuer = z.strictObject({
  id: z.string().min(1),
  type: z.literal("acme"),
  caDirUrl: z.url().default(LETS_ENCRYPT_PRODUCTION).describe("ACME directory URL"),
  email: z.email().optional().describe("account contact"),
  eab: z
    .strictObject({ kid: z.string().min(1), hmacKey: z.string().min(1) })
    .optional()
    .describe("external account binding"),
  profile: z.string().min(1).optional().describe("ACME profile, e.g. Let's Encrypt `shortlived`"),
  caBundleFile: z
    .string()
    .min(1)
    .optional()
    .describe("PEM bundle to trust for the directory's TLS (in addition to the system roots)"),
  challenges: z
    .array(z.enum(["http-01", "dns-01", "tls-alpn-01"]))
    .default(["http-01", "dns-01"])
    .describe("preferred order; wildcards always use dns-01"),
  pollInterval: duration
    .optional()
    .describe(
      "longest wait between polls of an order or authorization when the CA sends no Retry-After (polls start at 50 ms and double up to this; default 2s); milliseconds or a string like 2s",
    ),
});

const embeddedIssuer = z.strictObject({
  id: z.string().min(1),
  type: z.literal("embedded"),
  leafValidity: duration.default("30d").describe("lifetime of issued certificates"),
  commonName: z.string().min(1).optional(),
  crlUrl: z
    .url({ protocol: /^https?$/ })
    .optional()
    .describe(
      "written into new certificates as their CRL distribution point; certfleet serves the CRL at /ca/intermediate.crl",
    ),
});

export const configSchema = z.strictObject({
  server: z
    .strictObject({
      bind: z.string().min(1).default("0.0.0.0").describe("HTTPS listen address"),
      port: z.number().int().min(0).max(65535).default(8443).describe("HTTPS listen port"),
      tls: z
        .strictObject({
          certPEM: z.string().optional().describe("server certificate (PEM, inline)"),
          keyPEM: z.string().optional().describe("server private key (PEM, inline; secret)"),
          path: z.string().optional().describe("directory holding tls-cert.pem and tls-key.pem"),
          certFile: z.string().optional(),
          keyFile: z.string().optional(),
          names: z
            .array(z.string())
            .default(["localhost"])
            .describe("names on the self-issued server certificate"),
        })
        .prefault({}),
      insecureHttp: z
        .boolean()
        .default(false)
        .describe("serve the API over plain HTTP (never use outside a trusted network)"),
      http01: z
        .strictObject({
          enabled: z.boolean().optional().describe("default: on when an ACME issuer offers http-01"),
          bind: z.string().default("0.0.0.0"),
          port: z.number().int().min(0).max(65535).default(80),
        })
        .prefault({}),
      trustProxy: z
        .array(z.string())
        .default([])
        .describe("proxy addresses (CIDR) whose X-Forwarded-* headers are believed"),
      bodyLimit: z
        .number()
        .int()
        .positive()
        .default(64 * 1024),
      requestTimeout: duration
        .default("30s")
        .describe(
          "a request (headers and body) must arrive within this; a client that stalls is cut off with 408 (0 disables)",
        ),
      headersTimeout: duration
        .default("10s")
        .describe("the request headers must arrive within this (at most requestTimeout)"),
      keepAliveTimeout: duration
        .default("65s")
        .describe(
          "an idle keep-alive connection is closed after this (longer than a load balancer's idle timeout)",
        ),
      connectionTimeout: duration
        .default("120s")
        .describe(
          "a connection with no traffic at all is closed after this (0 disables; longer than keepAliveTimeout)",
        ),
      shutdownTimeout: duration
        .default("20s")
        .describe(
          "on SIGTERM/SIGINT, how long to wait for requests and running issuances before exiting (under Kubernetes' 30 s grace period and systemd's 90 s)",
        ),
      workers: z
        .number()
        .int()
        .min(1)
        .max(256)
        .optional()
        .describe(
          "`certfleet serve` processes sharing the listeners (node:cluster), each a replica sharing only storage; default: the available cores",
        ),
    })
    .prefault({}),
  dataDir: z
    .string()
    .default("./data")
    .describe(
      "where the SQLite database, master key and CA files live; a relative path is relative to the config file's directory (the working directory without a file)",
    ),
  database: z
    .strictObject({
      path: z.string().optional().describe("SQLite file (default <dataDir>/certfleet.db)"),
      url: z.string().optional().describe("postgres://… for PostgreSQL (takes precedence over path)"),
      encryptionKeyFile: z
        .string()
        .optional()
        .describe(
          "32-byte key encrypting private keys at rest (default <dataDir>/master.key, created on first start)",
        ),
      encryptionKey: z.string().optional().describe("the same key, base64 (secret)"),
      previousEncryptionKeys: z
        .array(z.string())
        .default([])
        .describe("earlier keys, base64, still accepted for reading during a key rotation (secret)"),
    })
    .prefault({}),
  auth: z
    .strictObject({
      method: z
        .enum(["psk", "jwt"])
        .optional()
        .describe(
          "le-cert-server: which of auth.psk / auth.jwt is used; the other block is ignored with a start-up warning (auth.apiKeys and auth.issuers always apply)",
        ),
      psk: z.strictObject({ key: z.string().min(16).describe("the pre-shared API key (secret)") }).optional(),
      jwt: jwtIssuer.partial({ audience: true }).optional().describe("le-cert-server: one trusted issuer"),
      issuerUrl: z.url().optional().describe("le-cert-server short form of auth.jwt.issuerUrl"),
      audience: z.string().optional(),
      requiredScopes: z.array(z.string()).optional(),
      scopeClaims: z
        .array(z.string().min(1))
        .min(1)
        .optional()
        .describe("short form of auth.jwt.scopeClaims (e.g. [scp, roles] for Entra app-only tokens)"),
      domainsClaim: z.string().optional(),
      apiKeys: z.array(apiKey).default([]).describe("named API keys, each with its own grants"),
      issuers: z.array(jwtIssuer).default([]).describe("trusted JWT/OIDC issuers"),
      clientCertificates: z
        .strictObject({
          enabled: z.boolean().default(true).describe("ask TLS clients for a certificate (mTLS identities)"),
          caBundleFile: z
            .string()
            .optional()
            .describe(
              "CAs that issue client certificates (default: the embedded CA's root and intermediate)",
            ),
          trustedProxies: z
            .array(z.string())
            .default([])
            .describe("addresses (CIDR) whose forwarded client-certificate header is believed"),
          forwardedHeader: z
            .string()
            .default("x-ssl-client-cert")
            .describe("header carrying a URL-encoded PEM"),
        })
        .prefault({}),
      sessionTokens: z
        .strictObject({
          enabled: z
            .boolean()
            .default(true)
            .describe("POST /api/session exchanges any proof for a short-lived token"),
          ttl: duration.default("15m"),
        })
        .prefault({}),
      failureLimit: z
        .strictObject({
          maxFailures: z
            .number()
            .int()
            .min(1)
            .max(100_000)
            .default(10)
            .describe(
              "failed authentications that can be guesses (unknown key, bad secret or signature) allowed per source address and per identity within the window before 429 auth_rate_limited; expired or otherwise authentic tokens do not count",
            ),
          window: duration.default("5m").describe("sliding window of the failure limit (1s to 24h)"),
        })
        .prefault({})
        .describe(
          "the per-address / per-identity limit on guessed credentials (a NAT'd fleet shares one address)",
        ),
    })
    .prefault({}),
  letsEncrypt: z
    .strictObject({
      enabled: z.boolean().optional(),
      email: z.email().optional(),
      staging: z.boolean().default(false),
      dnsProvider: z.string().optional().describe("lego provider code; omitted = HTTP-01"),
      dnsCredentials: z
        .record(z.string(), z.string())
        .optional()
        .describe("lego credential variables (secret)"),
      renewalDays: z.number().positive().optional().describe("renew this many days before expiry"),
      acme: z.strictObject({ caDirUrl: z.url() }).optional(),
      dns: z
        .strictObject({
          providers: z
            .array(z.string().min(1))
            .default([])
            .describe('Akash: DNS providers used for DNS-01, by name ("cf", "gcloud")'),
        })
        .optional(),
      providers: z
        .record(
          z.string(),
          z.record(z.string(), z.unknown()).describe("enabled, plus the provider's own settings"),
        )
        .optional()
        .describe(
          "Akash: settings per provider (cloudflare.apiToken, googleCloud.serviceAccount.content), validated by the provider's schema",
        ),
    })
    .optional()
    .describe("le-cert-server / Akash compatible Let's Encrypt section"),
  acme: z
    .strictObject({
      caDirUrl: z.url().optional().describe("ACME directory; setting it makes ACME the default issuer"),
      email: z.email().optional(),
      eab: z.strictObject({ kid: z.string().min(1), hmacKey: z.string().min(1) }).optional(),
      profile: z.string().optional(),
      caBundleFile: z.string().optional(),
      challenges: z.array(z.enum(["http-01", "dns-01", "tls-alpn-01"])).optional(),
      pollInterval: duration
        .optional()
        .describe(
          "longest wait between polls when the CA sends no Retry-After (see issuers[].pollInterval); milliseconds or a string like 2s",
        ),
    })
    .optional()
    .describe("short form for a single ACME issuer with id `acme`"),
  issuers: z.array(z.discriminatedUnion("type", [acmeIssuer, embeddedIssuer])).default([]),
  routing: z
    .strictObject({
      rules: z.array(z.strictObject({ match: pattern, issuer: z.string().min(1) })).default([]),
      defaultIssuer: z.string().optional().describe("issuer for names no rule matches"),
    })
    .prefault({}),
  dns: z
    .strictObject({
      providers: z.array(dnsProvider).default([]),
      resolvers: z
        .array(z.string())
        .default([])
        .describe("DNS servers (host:port) for zone detection; default: the system's"),
      authoritativeServers: z
        .array(z.string())
        .default([])
        .describe("override the servers asked in the propagation check"),
      propagationTimeout: duration
        .optional()
        .describe("for every provider without its own setting (default: the provider's, else 2m)"),
      propagationInterval: duration
        .optional()
        .describe("for every provider without its own setting (default: the provider's, else 2s)"),
    })
    .prefault({}),
  certificates: z
    .strictObject({
      keyType: z.enum(KEY_TYPES).default("ec256"),
      reuseKey: z.boolean().default(false).describe("keep the private key across renewals"),
      renewWhenRemaining: z
        .number()
        .gt(0)
        .lt(1)
        .default(1 / 3)
        .describe("renew when this fraction of the lifetime remains"),
      renewJitter: z
        .number()
        .min(0)
        .max(0.5)
        .default(0.05)
        .describe("random fraction of the lifetime subtracted from the renewal time"),
      checkInterval: duration
        .default("1m")
        .describe("how often the renewal scheduler looks for due certificates"),
      issueTimeout: duration.default("10m").describe("give up on one issuance attempt after this long"),
      lockLease: duration
        .default("15s")
        .describe(
          "lease of a certificate's cross-replica lock; a dead replica's names are free again after it",
        ),
      lockRenewInterval: duration
        .default("5s")
        .describe("how often a running issuance renews its lock lease (below certificates.lockLease)"),
    })
    .prefault({}),
  acmeServer: acmeServerConfigSchema.prefault({}),
  ssh: sshServerSchema.prefault({}),
  notifications: notificationsSchema.prefault({}),
  metrics: z
    .strictObject({
      enabled: z.boolean().default(true).describe("serve Prometheus metrics on the API listener"),
      path: z
        .string()
        .regex(/^\/[A-Za-z0-9._/-]*$/, "must be a URL path such as /metrics")
        .refine(
          (v) => !/^\/(api|acme|dashboard)(\/|$)/.test(v),
          "must not be inside /api, /acme or /dashboard",
        )
        .default("/metrics")
        .describe("where the metrics are served"),
      token: z
        .string()
        .min(16)
        .optional()
        .describe("scrape token, sent as `Authorization: Bearer`; without one an admin credential is needed"),
      certificateSeries: z
        .enum(["attention", "all"])
        .default("attention")
        .describe(
          "which certificates get per-certificate series: `attention` (failing or inside the renewal window) or `all`",
        ),
      certificateSeriesLimit: z
        .number()
        .int()
        .min(0)
        .max(100_000)
        .default(1000)
        .describe("at most this many certificates get per-certificate series, soonest expiry first"),
    })
    .prefault({}),
  logging: z
    .strictObject({
      level: z.enum(["trace", "debug", "info", "warn", "error", "silent"]).default("info"),
      format: z
        .enum(LOG_FORMATS)
        .default("auto")
        .describe("auto: one readable line per event on a terminal, JSON lines otherwise; or json, pretty"),
    })
    .prefault({}),
});

export type ConfigFile = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

/** Keys whose values are secrets: redacted in `config check` output and never logged. */
export const SECRET_PATHS = [
  "server.tls.keyPEM",
  "database.encryptionKey",
  "database.previousEncryptionKeys",
  "auth.psk.key",
  "auth.apiKeys.*.key",
  "letsEncrypt.dnsCredentials",
  "letsEncrypt.providers",
  "acme.eab.hmacKey",
  "issuers.*.eab.hmacKey",
  "dns.providers.*.config",
  "metrics.token",
  "notifications.channels.*.secret",
  "notifications.channels.*.url",
  "notifications.channels.*.smtp.password",
] as const;

export function parseDuration(v: number | string): number {
  if (typeof v === "number") return v;
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(v);
  if (!m) throw new Error(`bad duration ${v}`);
  const n = Number(m[1]);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as "ms"];
  return n * unit;
}
