import { availableParallelism } from "node:os";
import { isAbsolute, join, resolve as resolvePath } from "node:path";
import { ConfigError } from "../core/errors.js";
import type { AcmeServerConfig } from "../acme-server/config.js";
import type { TrustedIssuer } from "../auth/jwt/trusted-issuer.js";
import type { KeyType } from "../core/key-types.js";
import type { LogFormat } from "../core/logger.js";
import { resolveNotifications } from "../notifications/config.js";
import type { NotificationsConfig } from "../notifications/types.js";
import type { SshGrant } from "../ssh/ssh-grant.js";
import type { SshCaOptions } from "../ssh/ssh-ca.js";
import { resolveSshCa, sshGrantOfFields } from "../ssh/ssh-config.js";
import { LETS_ENCRYPT_PRODUCTION, LETS_ENCRYPT_STAGING, parseDuration, type ConfigFile } from "./schema.js";

/**
 * The runtime view of the configuration: le-cert-server's short forms and certfleet's own sections
 * folded into one model, with cross-field checks (unknown issuer ids, missing keys for a method) that a
 * per-field schema cannot express. Paths in errors name the key the user wrote.
 */
export interface ResolvedConfig {
  server: {
    bind: string;
    port: number;
    tls: { certPem?: string; keyPem?: string; certFile?: string; keyFile?: string; names: string[] };
    insecureHttp: boolean;
    http01: { enabled: boolean | undefined; bind: string; port: number };
    trustProxy: string[];
    bodyLimit: number;
    shutdownTimeoutMs: number;
    /** `certfleet serve` worker processes (server.workers, default the available cores). */
    workers: number;
    /** Milliseconds; see server.* in docs/config.md. */
    timeouts: { request: number; headers: number; keepAlive: number; connection: number };
  };
  dataDir: string;
  storage: {
    url: string;
    encryptionKey?: Buffer;
    encryptionKeyFile: string;
    /** Earlier master keys, accepted for reading (key rotation). */
    previousEncryptionKeys: Buffer[];
  };
  auth: {
    apiKeys: {
      name: string;
      key?: string;
      keyHash?: string;
      grants?: string[];
      admin: boolean;
      /** SSH certificate grant (auth.apiKeys[].ssh*); absent = no SSH certificates. */
      ssh?: SshGrant;
    }[];
    jwtIssuers: TrustedIssuer[];
    clientCertificates: {
      enabled: boolean;
      caBundleFile?: string;
      trustedProxies: string[];
      forwardedHeader: string;
    };
    sessionTokens: { enabled: boolean; ttlSeconds: number };
    /** Failure limiter (auth/failure-limiter.ts): guesses allowed per key within the window. */
    failureLimit: { maxFailures: number; windowMs: number };
    /** No credential configured at all: generate and print a bootstrap API key. */
    bootstrap: boolean;
  };
  issuers: IssuerConfig[];
  routing: { rules: { match: string; issuer: string }[]; defaultIssuer: string };
  dns: {
    providers: DnsProviderConfig[];
    resolvers: string[];
    authoritativeServers: string[];
    /** Set only when the user set them: a provider's own default comes before the built-in one. */
    propagationTimeoutMs?: number;
    propagationIntervalMs?: number;
  };
  certificates: {
    keyType: KeyType;
    reuseKey: boolean;
    renewWhenRemaining: number;
    /** le-cert-server's renewalDays: renew when fewer days than this remain (overrides the fraction). */
    renewBeforeDays?: number;
    renewJitter: number;
    checkIntervalMs: number;
    issueTimeoutMs: number;
    lockLeaseMs: number;
    lockRenewIntervalMs: number;
  };
  acmeServer: AcmeServerConfig;
  /** The SSH CA; undefined when ssh.enabled is false. */
  ssh: SshCaOptions | undefined;
  metrics: {
    enabled: boolean;
    path: string;
    token?: string;
    certificateSeries: "attention" | "all";
    certificateSeriesLimit: number;
  };
  notifications: NotificationsConfig;
  logLevel: string;
  logFormat: LogFormat;
  /** Settings that load but deserve a start-up warning (each names its key). */
  warnings: { path: string; message: string }[];
}

export type IssuerConfig =
  | {
      id: string;
      type: "acme";
      directoryUrl: string;
      email?: string;
      eab?: { kid: string; hmacKey: string };
      profile?: string;
      caBundleFile?: string;
      challenges: ("http-01" | "dns-01" | "tls-alpn-01")[];
      pollIntervalMs?: number;
    }
  | { id: string; type: "embedded"; leafValidityMs: number; commonName?: string; crlUrl?: string };

export interface DnsProviderConfig {
  id: string;
  type: string;
  /** Provider config, or lego-style variables when it came from letsEncrypt.dnsCredentials. */
  config: Record<string, unknown>;
  legoEnv?: Record<string, string>;
  zones: string[];
  propagationTimeoutMs?: number;
  propagationIntervalMs?: number;
  /** Where this provider was configured, for error messages. */
  path: string;
  /** Where its settings were written, when not `<path>.config` (Akash's letsEncrypt.providers.<key>). */
  configPath?: string;
}

/** Akash's provider names (letsEncrypt.dns.providers) → their key under letsEncrypt.providers. */
const AKASH_PROVIDER_KEYS: Readonly<Record<string, string>> = { cf: "cloudflare", gcloud: "googleCloud" };

/**
 * `base`: the directory relative paths are resolved against — the config file's directory when there is
 * a file (so starting from another working directory finds the same data dir and master key), else the
 * working directory.
 */
export function resolveConfig(file: ConfigFile, base: string = process.cwd()): ResolvedConfig {
  const issues: { path: string; message: string }[] = [];
  const warnings: { path: string; message: string }[] = [];
  const abs = (p: string) => (isAbsolute(p) ? p : resolvePath(base, p));
  const dataDir = abs(file.dataDir);

  // --- storage
  const db = file.database;
  const url = db.url ?? "sqlite:" + (db.path ? abs(db.path) : join(dataDir, "certfleet.db"));
  let encryptionKey: Buffer | undefined;
  if (db.encryptionKey !== undefined) {
    encryptionKey = Buffer.from(db.encryptionKey, "base64");
    if (encryptionKey.length !== 32)
      issues.push({ path: "database.encryptionKey", message: "must be 32 bytes, base64-encoded" });
  }
  const previousEncryptionKeys = db.previousEncryptionKeys.map((k, i) => {
    const key = Buffer.from(k, "base64");
    if (key.length !== 32)
      issues.push({
        path: `database.previousEncryptionKeys.${i}`,
        message: "must be 32 bytes, base64-encoded",
      });
    return key;
  });

  // --- auth
  const a = file.auth;
  const apiKeys = a.apiKeys.map((k, i) => {
    if (!k.key === !k.keyHash)
      issues.push({ path: `auth.apiKeys.${i}`, message: "set exactly one of key or keyHash" });
    const ssh = sshGrantOfFields(k);
    return {
      name: k.name,
      key: k.key,
      keyHash: k.keyHash,
      grants: k.grants,
      admin: k.admin,
      ...(ssh ? { ssh } : {}),
    };
  });
  // auth.method selects le-cert-server's single method: the other block is not honoured (warned).
  const shortJwt = a.jwt !== undefined || a.issuerUrl !== undefined;
  if (a.psk && a.method === "jwt")
    warnings.push({ path: "auth.psk", message: 'ignored: auth.method is "jwt" (remove the block)' });
  else if (a.psk)
    apiKeys.push({ name: "psk", key: a.psk.key, keyHash: undefined, grants: undefined, admin: false });
  if (a.method === "psk" && !a.psk)
    issues.push({ path: "auth.psk.key", message: 'required when auth.method is "psk"' });

  const jwtIssuers: ResolvedConfig["auth"]["jwtIssuers"] = [...a.issuers];
  const shortIssuer = a.jwt?.issuerUrl ?? a.issuerUrl;
  if (shortJwt && a.method === "psk") {
    warnings.push({
      path: a.jwt ? "auth.jwt" : "auth.issuerUrl",
      message: 'ignored: auth.method is "psk" (remove the JWT settings)',
    });
  } else if (shortIssuer) {
    const audience = a.jwt?.audience ?? a.audience;
    if (!audience)
      issues.push({
        path: a.jwt ? "auth.jwt.audience" : "auth.audience",
        message: "required with an issuer URL",
      });
    const domainsClaim = a.jwt?.domainsClaim ?? a.domainsClaim;
    // le-cert-server gives every valid token every name; so does its config shape here, unless told not to
    const grantAllNames = a.jwt?.grantAllNames ?? domainsClaim === undefined;
    jwtIssuers.push({
      ...a.jwt,
      kind: a.jwt?.kind,
      issuerUrl: shortIssuer,
      audience: audience ?? "",
      requiredScopes: a.jwt?.requiredScopes ?? a.requiredScopes,
      scopeClaims: a.jwt?.scopeClaims ?? a.scopeClaims,
      domainsClaim,
      grantAllNames,
    });
  } else if (a.method === "jwt") {
    issues.push({ path: "auth.jwt.issuerUrl", message: 'required when auth.method is "jwt"' });
  }
  const bootstrap = apiKeys.length === 0 && jwtIssuers.length === 0;

  // --- issuers
  const issuers: IssuerConfig[] = [];
  const dnsProviders: DnsProviderConfig[] = file.dns.providers.map((p, i) => ({
    id: p.id,
    type: p.type,
    config: p.config,
    zones: p.zones,
    propagationTimeoutMs:
      p.propagationTimeout === undefined ? undefined : parseDuration(p.propagationTimeout),
    propagationIntervalMs:
      p.propagationInterval === undefined ? undefined : parseDuration(p.propagationInterval),
    path: `dns.providers.${i}`,
  }));
  for (const [i, is] of file.issuers.entries()) {
    if (is.type === "acme") {
      issuers.push({
        id: is.id,
        type: "acme",
        directoryUrl: is.caDirUrl,
        email: is.email,
        eab: is.eab,
        profile: is.profile,
        caBundleFile: is.caBundleFile && abs(is.caBundleFile),
        challenges: is.challenges,
        pollIntervalMs: is.pollInterval === undefined ? undefined : parseDuration(is.pollInterval),
      });
    } else {
      issuers.push({
        id: is.id,
        type: "embedded",
        leafValidityMs: parseDuration(is.leafValidity),
        crlUrl: is.crlUrl,
        commonName: is.commonName,
      });
    }
    if (file.issuers.findIndex((o) => o.id === is.id) !== i)
      issues.push({ path: `issuers.${i}.id`, message: `duplicate issuer id "${is.id}"` });
  }
  let acmeDefault: string | undefined;
  const le = file.letsEncrypt;
  if (file.acme?.caDirUrl) {
    const s = file.acme;
    issuers.push({
      id: "acme",
      type: "acme",
      directoryUrl: s.caDirUrl!,
      email: s.email ?? le?.email,
      eab: s.eab,
      profile: s.profile,
      caBundleFile: s.caBundleFile && abs(s.caBundleFile),
      challenges: s.challenges ?? (le?.dnsProvider ? ["dns-01", "http-01"] : ["http-01", "dns-01"]),
      pollIntervalMs: s.pollInterval === undefined ? undefined : parseDuration(s.pollInterval),
    });
    acmeDefault = "acme";
  }
  if (le && le.enabled !== false) {
    const directoryUrl =
      le.acme?.caDirUrl ??
      file.acme?.caDirUrl ??
      (le.staging ? LETS_ENCRYPT_STAGING : LETS_ENCRYPT_PRODUCTION);
    if (!file.acme?.caDirUrl) {
      issuers.push({
        id: "letsencrypt",
        type: "acme",
        directoryUrl,
        email: le.email ?? file.acme?.email,
        eab: file.acme?.eab,
        profile: file.acme?.profile,
        caBundleFile: file.acme?.caBundleFile && abs(file.acme.caBundleFile),
        challenges:
          le.dnsProvider || le.dns?.providers.length ? ["dns-01", "http-01"] : ["http-01", "dns-01"],
        pollIntervalMs: undefined,
      });
      acmeDefault = "letsencrypt";
    }
    if (le.dnsProvider) {
      const legoEnv = le.dnsCredentials ?? {};
      dnsProviders.push({
        id: "letsencrypt-dns",
        type: le.dnsProvider,
        config: {},
        legoEnv,
        zones: [],
        path: "letsEncrypt.dnsProvider",
        propagationTimeoutMs: legoSeconds(legoEnv, "_PROPAGATION_TIMEOUT", issues),
        propagationIntervalMs: legoSeconds(legoEnv, "_POLLING_INTERVAL", issues),
      });
    }
  }
  if (le && le.enabled !== false) dnsProviders.push(...akashDnsProviders(le, issues));
  // Several embedded issuers share the one CA hierarchy (one root to trust); they differ in lifetime
  // and CRL URL. Its name is set once, so two different names cannot both be honoured.
  const embeddedNames = new Set<string>();
  file.issuers.forEach((is, i) => {
    if (is.type !== "embedded" || is.commonName === undefined) return;
    embeddedNames.add(is.commonName);
    if (embeddedNames.size > 1)
      issues.push({
        path: `issuers.${i}.commonName`,
        message: "embedded issuers share one CA: give commonName once, or the same on each",
      });
  });
  if (!issuers.some((i) => i.type === "embedded")) {
    issuers.push({ id: "embedded", type: "embedded", leafValidityMs: parseDuration("30d") });
  }
  const ids = new Set(issuers.map((i) => i.id));
  const defaultIssuer =
    file.routing.defaultIssuer ?? acmeDefault ?? issuers.find((i) => i.type === "embedded")!.id;
  if (!ids.has(defaultIssuer))
    issues.push({ path: "routing.defaultIssuer", message: `no issuer with id "${defaultIssuer}"` });
  file.routing.rules.forEach((r, i) => {
    if (!ids.has(r.issuer))
      issues.push({ path: `routing.rules.${i}.issuer`, message: `no issuer with id "${r.issuer}"` });
  });
  const embeddedId = issuers.find((i) => i.type === "embedded")!.id;
  file.acmeServer.profiles.forEach((p, i) => {
    if (p.issuer === "embedded" && !ids.has("embedded"))
      p.issuer = embeddedId; // the default names the embedded CA
    else if (!ids.has(p.issuer))
      issues.push({ path: `acmeServer.profiles.${i}.issuer`, message: `no issuer with id "${p.issuer}"` });
  });
  if (file.acmeServer.enabled && !file.acmeServer.externalUrl && file.server.trustProxy.length > 0) {
    // behind a proxy the URLs handed to ACME clients follow the forwarded host and scheme; directly
    // reached, the Host header a client sent is the right base, so there is nothing to warn about
    warnings.push({
      path: "acmeServer.externalUrl",
      message:
        "is not set while server.trustProxy is: ACME URLs follow the X-Forwarded-Host/Proto each proxy sends; set it to the public URL",
    });
  }
  const providerIds = new Set<string>();
  for (const p of dnsProviders) {
    if (providerIds.has(p.id))
      issues.push({ path: `${p.path}.id`, message: `duplicate provider id "${p.id}"` });
    providerIds.add(p.id);
  }

  if (file.server.tls.certPEM !== undefined && file.server.tls.keyPEM === undefined)
    issues.push({ path: "server.tls.keyPEM", message: "required with server.tls.certPEM" });
  if (file.server.tls.certFile !== undefined && file.server.tls.keyFile === undefined)
    issues.push({ path: "server.tls.keyFile", message: "required with server.tls.certFile" });
  const ttl = parseDuration(a.sessionTokens.ttl);
  if (ttl < 60_000 || ttl > 3_600_000)
    issues.push({ path: "auth.sessionTokens.ttl", message: "must be between 1m and 1h" });
  const failureWindow = parseDuration(a.failureLimit.window);
  if (failureWindow < 1000 || failureWindow > 86_400_000)
    issues.push({ path: "auth.failureLimit.window", message: "must be between 1s and 24h" });
  const serverTimeouts = {
    request: parseDuration(file.server.requestTimeout),
    headers: parseDuration(file.server.headersTimeout),
    keepAlive: parseDuration(file.server.keepAliveTimeout),
    connection: parseDuration(file.server.connectionTimeout),
  };
  if (serverTimeouts.headers === 0)
    issues.push({ path: "server.headersTimeout", message: "must be more than 0" });
  if (serverTimeouts.request > 0 && serverTimeouts.headers > serverTimeouts.request)
    issues.push({ path: "server.headersTimeout", message: "must not be longer than server.requestTimeout" });
  if (serverTimeouts.connection > 0 && serverTimeouts.connection <= serverTimeouts.keepAlive)
    issues.push({
      path: "server.connectionTimeout",
      message: "must be longer than server.keepAliveTimeout (or 0)",
    });
  const lockLease = parseDuration(file.certificates.lockLease);
  if (lockLease < 1000) issues.push({ path: "certificates.lockLease", message: "must be at least 1s" });
  const lockRenew = parseDuration(file.certificates.lockRenewInterval);
  if (lockRenew <= 0 || lockRenew * 2 > lockLease)
    issues.push({
      path: "certificates.lockRenewInterval",
      message: "must be more than 0 and at most half of certificates.lockLease",
    });
  const ssh = resolveSshCa(file.ssh, issues);
  const notifications = resolveNotifications(
    file.notifications,
    file.certificates.renewWhenRemaining,
    issues,
    warnings,
  );
  if (issues.length > 0) throw new ConfigError(issues);

  const tls = file.server.tls;
  return {
    server: {
      bind: file.server.bind,
      port: file.server.port,
      tls: {
        certPem: tls.certPEM,
        keyPem: tls.keyPEM,
        certFile: tls.certFile
          ? abs(tls.certFile)
          : tls.path
            ? join(abs(tls.path), "tls-cert.pem")
            : undefined,
        keyFile: tls.keyFile ? abs(tls.keyFile) : tls.path ? join(abs(tls.path), "tls-key.pem") : undefined,
        names: tls.names,
      },
      insecureHttp: file.server.insecureHttp,
      http01: {
        enabled: file.server.http01.enabled,
        bind: file.server.http01.bind,
        port: file.server.http01.port,
      },
      trustProxy: file.server.trustProxy,
      bodyLimit: file.server.bodyLimit,
      shutdownTimeoutMs: parseDuration(file.server.shutdownTimeout),
      workers: file.server.workers ?? availableParallelism(),
      timeouts: serverTimeouts,
    },
    dataDir,
    storage: {
      url,
      encryptionKey,
      encryptionKeyFile: db.encryptionKeyFile ? abs(db.encryptionKeyFile) : join(dataDir, "master.key"),
      previousEncryptionKeys,
    },
    auth: {
      apiKeys,
      jwtIssuers,
      bootstrap,
      clientCertificates: {
        ...a.clientCertificates,
        caBundleFile: a.clientCertificates.caBundleFile && abs(a.clientCertificates.caBundleFile),
      },
      sessionTokens: {
        enabled: a.sessionTokens.enabled,
        ttlSeconds: Math.round(parseDuration(a.sessionTokens.ttl) / 1000),
      },
      failureLimit: { maxFailures: a.failureLimit.maxFailures, windowMs: failureWindow },
    },
    issuers,
    routing: { rules: file.routing.rules, defaultIssuer },
    dns: {
      providers: dnsProviders,
      resolvers: file.dns.resolvers,
      authoritativeServers: file.dns.authoritativeServers,
      propagationTimeoutMs:
        file.dns.propagationTimeout === undefined ? undefined : parseDuration(file.dns.propagationTimeout),
      propagationIntervalMs:
        file.dns.propagationInterval === undefined ? undefined : parseDuration(file.dns.propagationInterval),
    },
    certificates: {
      keyType: file.certificates.keyType,
      reuseKey: file.certificates.reuseKey,
      renewWhenRemaining: file.certificates.renewWhenRemaining,
      renewBeforeDays: le?.renewalDays,
      renewJitter: file.certificates.renewJitter,
      checkIntervalMs: parseDuration(file.certificates.checkInterval),
      issueTimeoutMs: parseDuration(file.certificates.issueTimeout),
      lockLeaseMs: parseDuration(file.certificates.lockLease),
      lockRenewIntervalMs: parseDuration(file.certificates.lockRenewInterval),
    },
    acmeServer: file.acmeServer,
    ssh,
    metrics: file.metrics,
    notifications,
    logLevel: file.logging.level,
    logFormat: file.logging.format,
    warnings,
  };
}

/**
 * Akash's Let's Encrypt DNS block: `dns.providers: ["cf"]` picks `providers.cloudflare` (`enabled`, then
 * the provider's own settings, e.g. `apiToken`); `gcloud` picks `providers.googleCloud`, whose
 * `serviceAccount: {content: <key JSON>}` is the provider's `serviceAccount`. The settings are then
 * validated by the provider's schema like any other (errors name letsEncrypt.providers.<key>.…).
 */
function akashDnsProviders(
  le: NonNullable<ConfigFile["letsEncrypt"]>,
  issues: { path: string; message: string }[],
): DnsProviderConfig[] {
  const out: DnsProviderConfig[] = [];
  const blocks = le.providers ?? {};
  (le.dns?.providers ?? []).forEach((name, i) => {
    const key =
      Object.keys(blocks).find((k) => k.toLowerCase() === name.toLowerCase()) ?? AKASH_PROVIDER_KEYS[name];
    const block = key === undefined ? undefined : blocks[key];
    if (key === undefined || block === undefined) {
      issues.push({
        path: `letsEncrypt.dns.providers.${i}`,
        message: `"${name}" has no settings under letsEncrypt.providers${key ? `.${key}` : ""}`,
      });
      return;
    }
    const { enabled, ...settings } = block;
    if (enabled === false) {
      issues.push({
        path: `letsEncrypt.providers.${key}.enabled`,
        message: `is false, but letsEncrypt.dns.providers lists "${name}"`,
      });
      return;
    }
    const config = Object.fromEntries(
      Object.entries(settings).map(([k, v]) => {
        const content = (v as { content?: unknown } | null)?.content;
        const onlyContent =
          typeof v === "object" && v !== null && Object.keys(v).length === 1 && typeof content === "string";
        return [k, onlyContent ? content : v];
      }),
    );
    out.push({
      id: `letsencrypt-${name}`,
      type: name,
      config,
      zones: [],
      path: `letsEncrypt.dns.providers.${i}`,
      configPath: `letsEncrypt.providers.${key}`,
    });
  });
  return out;
}

/**
 * lego's shared per-provider timing variables (`CLOUDFLARE_PROPAGATION_TIMEOUT=300`,
 * `GCE_POLLING_INTERVAL=5`): whole seconds, as lego reads them, or a duration such as `2m`.
 */
function legoSeconds(
  env: Readonly<Record<string, string>>,
  suffix: string,
  issues: { path: string; message: string }[],
): number | undefined {
  const name = Object.keys(env).find((k) => k.endsWith(suffix) && env[k] !== "");
  if (name === undefined) return undefined;
  const value = env[name]!.trim();
  if (/^\d+$/.test(value) && Number(value) > 0) return Number(value) * 1000;
  if (/^\d+(ms|s|m|h)$/.test(value) && parseDuration(value) > 0) return parseDuration(value);
  issues.push({
    path: `letsEncrypt.dnsCredentials.${name}`,
    message: `must be a positive number of seconds (or a duration such as 2m), got "${value}"`,
  });
  return undefined;
}
