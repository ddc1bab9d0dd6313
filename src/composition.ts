import { createHash } from "node:crypto";
import { constants as fsConstants } from "node:fs";
import { access, chmod, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Server as TlsServer } from "node:tls";
import type { FastifyInstance } from "fastify";
import { createAcmeIssuer } from "./acme-client/acme-issuer.js";
import { createAcmeServer } from "./acme-server/index.js";
import { eabKeyRoutes } from "./acme-server/eab-api.js";
import { createHttp01Solver } from "./acme-client/http01-solver.js";
import type { ChallengeSolver } from "./acme-client/challenge-solver.js";
import type { Authenticator } from "./auth/authenticator.js";
import { createApiKeyAuthenticator, unrestrictedApiKeys } from "./auth/api-key.js";
import { createAuthenticate } from "./auth/chain.js";
import { createClientCertificateAuthenticator } from "./auth/client-certificate.js";
import { createClientSecretAuthenticator } from "./auth/client-secret.js";
import { createLegacySwitch } from "./auth/legacy-switch.js";
import { createSessionTokens } from "./auth/session-token.js";
import { authorizeNames } from "./auth/grants.js";
import { createFailureLimiter } from "./auth/failure-limiter.js";
import { createJwtAuthenticator, type JwtAuthenticator } from "./auth/jwt/jwt-authenticator.js";
import { issuerWarnings, resolveIssuers } from "./auth/jwt/trusted-issuer.js";
import type { ResolvedConfig } from "./config/resolve.js";
import type { Clock } from "./core/clock.js";
import type { Logger } from "./core/logger.js";
import {
  StartupError,
  dataDirError,
  databaseError,
  listenError,
  masterKeyError,
} from "./core/startup-error.js";
import { createDns01Solver, type Dns01Route } from "./dns/dns01-solver.js";
import { checkDnsProviderConfigs } from "./dns/provider-configs.js";
import { createPropagationChecker } from "./dns/propagation.js";
import { createDnsResolver } from "./dns/resolver.js";
import { createDnsProviderRegistry } from "./dns/providers/index.js";
import { createEmbeddedCa, type EmbeddedCa } from "./internal-ca/embedded-ca.js";
import type { Issuer } from "./issuance/issuer.js";
import { createIssuerRouter } from "./issuance/issuer-routing.js";
import { createIssuedKeys, isAcmeAccountKey, recordingIssuedKeys } from "./issuance/issued-keys.js";
import { loadOrCreateInstanceId } from "./issuance/instance-id.js";
import {
  BACKOFF_CONFIG_NAMESPACE,
  createCertificateManager,
  type CertificateManager,
} from "./issuance/manager.js";
import { createNotifier } from "./notifications/notifier.js";
import { createRenewalScheduler, type RenewalScheduler } from "./issuance/renewal-scheduler.js";
import { buildApp } from "./server/app.js";
import { adminRoutes } from "./server/routes/admin.js";
import { createInventory } from "./issuance/inventory.js";
import { dashboardRoutes } from "./server/dashboard/dashboard-routes.js";
import { sessionRoutes } from "./server/routes/session.js";
import { assignedCertificateRoutes } from "./server/routes/assigned-certificates.js";
import { caRoutes } from "./server/routes/ca.js";
import { sshRoutes } from "./server/routes/ssh.js";
import { createSshCa } from "./ssh/ssh-ca.js";
import { createAuditSink, type AuditSink } from "./server/audit.js";
import { createMetrics } from "./server/metrics.js";
import { VERSION } from "./core/version.js";
import { loadOrCreateBootstrapKey } from "./server/bootstrap-key.js";
import { buildHttp01App } from "./server/http01-app.js";
import {
  createHolder,
  restartOnlyChanges,
  swappableAuthenticate,
  swappableSolver,
} from "./server/reloadable.js";
import { defaultServerIdentities, loadConfiguredTls, loadOrIssueEmbeddedTls } from "./server/server-tls.js";
import { loadMasterKeys } from "./storage/master-key.js";
import { createStorage } from "./storage/create-storage.js";
import type { Storage } from "./storage/storage.js";

/**
 * The composition root: the only place that constructs objects. Everything else receives its
 * dependencies explicitly. `createCertfleet` builds; `start` listens; `stop` undoes both.
 */
export interface Certfleet {
  app: FastifyInstance;
  http01App: FastifyInstance | undefined;
  storage: Storage;
  manager: CertificateManager;
  scheduler: RenewalScheduler;
  embeddedCa: EmbeddedCa;
  /** Where the embedded CA's root is written for clients to trust. */
  caPath: string;
  tlsSource: "configured" | "embedded" | "none";
  bootstrapKey: { key: string; created: boolean } | undefined;
  start(): Promise<{ url: string; http01Url?: string }>;
  /** Issuances this process is running (reported on shutdown). */
  running(): number;
  /**
   * Apply a re-read configuration (SIGHUP) without a restart: API keys and grants, trusted JWT
   * issuers, DNS providers, the log level and the server's configured certificate files. All parts are
   * built before any is swapped in, so a failure changes nothing. Returns the settings that differ but
   * need a restart.
   */
  reload(next: ResolvedConfig): Promise<{ restartNeeded: string[] }>;
  stop(): Promise<void>;
}

export interface Runtime {
  logger: Logger;
  clock: Clock;
  fetch: typeof globalThis.fetch;
  env: NodeJS.ProcessEnv;
  /**
   * This process's slot among `certfleet serve` workers sharing the data directory (serve-cluster.ts).
   * It becomes part of the instance id, so workers never take back each other's locks as their own.
   */
  workerSlot?: number;
}

export async function createCertfleet(config: ResolvedConfig, rt: Runtime): Promise<Certfleet> {
  const { logger, clock } = rt;
  let current = config;
  await prepareDataDir(config.dataDir);
  const keyFile = config.storage.encryptionKey ? undefined : config.storage.encryptionKeyFile;
  const keys = await loadMasterKeys(config.storage).catch((e: unknown) => {
    throw keyFile?.startsWith(config.dataDir + "/")
      ? dataDirError(e, config.dataDir)
      : databaseKeyFileError(e, keyFile);
  });
  // one database handle for every seam; each component below gets only the role(s) it needs
  const storage = createStorage({
    url: config.storage.url,
    encryptionKey: keys.current,
    previousEncryptionKeys: keys.previous,
    logger,
  });
  const closers: (() => Promise<void>)[] = [() => storage.close()];
  const dbSetting = config.storage.url.startsWith("sqlite:") ? "database.path" : "database.url";
  const storeWhere = { keyFile, dataDir: config.dataDir, database: config.storage.url };
  try {
    await storage.migrate().catch((e: unknown) => {
      throw databaseError(e, config.storage.url, dbSetting);
    });

    // --- issuers
    // Every embedded issuer signs with the one CA hierarchy in storage (one root to trust); each keeps
    // its own id, leaf lifetime and CRL URL. The first is the one certfleet's own listener uses.
    const embeddedCas = new Map<string, EmbeddedCa>();
    for (const ic of config.issuers) {
      if (ic.type !== "embedded") continue;
      const ca = await createEmbeddedCa({
        store: storage.kv,
        clock,
        logger,
        options: {
          id: ic.id,
          name: ic.commonName,
          leafValiditySeconds: Math.round(ic.leafValidityMs / 1000),
          crlUrl: ic.crlUrl,
        },
      }).catch((e: unknown) => {
        throw masterKeyError(e, storeWhere);
      });
      embeddedCas.set(ic.id, ca);
    }
    const embeddedCa = [...embeddedCas.values()][0]!;
    const sshCa = config.ssh
      ? await createSshCa({
          store: storage.kv,
          clock,
          logger: logger.child({ component: "ssh-ca" }),
          options: config.ssh,
        })
      : undefined;
    const caPath = join(config.dataDir, "ca.pem");
    await writeFile(caPath, embeddedCa.rootPem, { mode: 0o644 });

    const resolver = createDnsResolver({ servers: config.dns.resolvers });
    const propagation = createPropagationChecker({
      resolver,
      logger,
      authoritativeServers:
        config.dns.authoritativeServers.length > 0 ? config.dns.authoritativeServers : undefined,
    });
    // DNS providers change on SIGHUP: the issuers hold a solver that delegates to the current one
    const buildDnsSolver = (c: ResolvedConfig) =>
      createDns01Solver({ routes: buildDnsRoutes(c, rt), resolver, propagation, logger });
    const dnsSolver = createHolder(buildDnsSolver(config));
    const solvers: ChallengeSolver[] = [
      createHttp01Solver({ store: storage.challenges, ttlMs: 60 * 60_000 }),
    ];
    // with none at start, issuers fall back to their other challenge types: adding some needs a restart
    const dnsAtStart = config.dns.providers.length > 0;
    if (dnsAtStart) solvers.push(swappableSolver(dnsSolver));
    const issuers: Issuer[] = [];
    for (const ic of config.issuers) {
      if (ic.type === "embedded") {
        issuers.push(embeddedCas.get(ic.id)!);
        continue;
      }
      const caBundlePem = ic.caBundleFile ? await readFile(ic.caBundleFile, "utf8") : undefined;
      issuers.push(
        createAcmeIssuer({
          id: ic.id,
          store: storage.kv,
          solvers,
          logger: logger.child({ issuer: ic.id }),
          clock,
          options: {
            directoryUrl: ic.directoryUrl,
            email: ic.email,
            eab: ic.eab,
            profile: ic.profile,
            caBundlePem,
            preferredChallenges: ic.challenges,
            pollIntervalMs: ic.pollIntervalMs,
          },
        }),
      );
    }
    // no key is both a certificate key and an ACME account key (RFC 8555 §11.1, both directions)
    const issuedKeys = createIssuedKeys(storage.kv);
    const isAccountKey = isAcmeAccountKey(
      storage.acme,
      config.acmeServer.enabled ? config.acmeServer.profiles.map((p) => p.name) : [],
    );
    const router = createIssuerRouter(
      issuers.map((issuer) => recordingIssuedKeys(issuer, { issuedKeys, isAccountKey })),
      config.routing.rules,
      config.routing.defaultIssuer,
    );
    const metrics = config.metrics.enabled
      ? createMetrics({
          storage: storage.certificates,
          clock,
          version: VERSION,
          certificateSeries: config.metrics.certificateSeries,
          certificateSeriesLimit: config.metrics.certificateSeriesLimit,
        })
      : undefined;
    const sink = createAuditSink(storage.audit, logger);
    closers.unshift(() => sink.flush());
    // every audited event is also counted (certfleet_events_total)
    const audit: AuditSink = metrics
      ? Object.assign(
          (event: Parameters<AuditSink>[0]) => {
            metrics.countEvent(event);
            return sink(event);
          },
          { flush: () => sink.flush(), committed: () => sink.committed() },
        )
      : sink;
    const notifier = createNotifier({
      config: config.notifications,
      kv: storage.kv,
      certificates: storage.certificates,
      audit,
      clock,
      logger,
    });
    closers.unshift(() => notifier.stop());
    const manager = createCertificateManager({
      certificates: storage.certificates,
      locks: storage.locks,
      kv: storage.kv,
      journal: storage.journal,
      router,
      clock,
      logger,
      policy: { ...config.certificates },
      lockTtlMs: config.certificates.lockLeaseMs,
      lockRenewMs: config.certificates.lockRenewIntervalMs,
      instanceId:
        (await loadOrCreateInstanceId(join(config.dataDir, "instance-id"))) +
        (rt.workerSlot === undefined ? "" : `/worker-${rt.workerSlot}`),
      configFingerprint: (issuerId) => issuerSettingsFingerprint(current, issuerId),
      onEvent: (e) => {
        notifier.onCertificateEvent(e);
        void audit({
          type: e.type,
          actor: e.actor,
          subject: e.names.join(","),
          outcome: e.type === "certificate.failed" ? "failure" : "success",
          reason:
            e.type === "certificate.failed"
              ? `${e.code}: ${e.message}`
              : e.type === "certificate.revoke"
                ? e.reason
                : null,
          data:
            e.type === "certificate.failed"
              ? { id: e.id, issuer: e.issuerId }
              : e.type === "certificate.revoke"
                ? { id: e.id, issuer: e.issuerId, serial: e.serial, replace: e.replace }
                : { id: e.id, issuer: e.issuerId, serial: e.serial, notAfter: e.notAfter.toISOString() },
        });
      },
    });
    /**
     * Look through failed certificates only when some issuer's settings differ from the last look
     * (one small read otherwise, whatever the fleet size).
     */
    const liftBackoffsIfSettingsChanged = async (c: ResolvedConfig): Promise<void> => {
      const digest = createHash("sha256")
        .update(c.issuers.map((i) => issuerSettingsFingerprint(c, i.id)).join(","))
        .digest("base64url");
      try {
        if ((await storage.kv.getValue(BACKOFF_CONFIG_NAMESPACE, SETTINGS_SEEN_KEY)) === digest) return;
        await manager.clearStaleBackoffs?.();
        await storage.kv.putValue(BACKOFF_CONFIG_NAMESPACE, SETTINGS_SEEN_KEY, digest, { secret: true });
      } catch (e) {
        logger.warn({ err: String(e) }, "could not check failed certificates' backoffs");
      }
    };
    // on shutdown (after the listeners close, before storage does): let running orders finish; what
    // does not finish in time stays in the issuance journal and is resumed on the next start
    closers.unshift(async () => {
      await manager.drain?.(config.server.shutdownTimeoutMs);
    });
    const scheduler = createRenewalScheduler({
      manager,
      logger,
      clock,
      intervalMs: config.certificates.checkIntervalMs,
    });

    // --- authentication (rebuilt on SIGHUP; the stateful parts below are kept across reloads)
    const legacySwitch = createLegacySwitch({ store: storage.kv, clock, logger });
    const sessionTokens = config.auth.sessionTokens.enabled
      ? createSessionTokens({
          store: storage.kv,
          identities: storage.identities,
          legacySwitch,
          clock,
          logger,
          ttlSeconds: config.auth.sessionTokens.ttlSeconds,
        })
      : undefined;
    const clientCaPem = config.auth.clientCertificates.enabled
      ? config.auth.clientCertificates.caBundleFile
        ? await readFile(config.auth.clientCertificates.caBundleFile, "utf8")
        : embeddedCa.rootPem + embeddedCa.intermediatePem
      : undefined;
    const limiter = createFailureLimiter({
      clock,
      maxFailures: config.auth.failureLimit.maxFailures,
      windowMs: config.auth.failureLimit.windowMs,
    });
    const clientSecrets = createClientSecretAuthenticator({
      store: storage.identities,
      legacySwitch,
      logger,
    });
    const clientCertificates = clientCaPem
      ? createClientCertificateAuthenticator({
          caBundlePem: clientCaPem,
          trustedProxies: config.auth.clientCertificates.trustedProxies,
          forwardedHeader: config.auth.clientCertificates.forwardedHeader,
          store: storage.identities,
          legacySwitch,
          clock,
          logger,
        })
      : undefined;
    const buildAuth = async (c: ResolvedConfig) => {
      let bootstrapKey: Certfleet["bootstrapKey"];
      const apiKeys = [...c.auth.apiKeys];
      if (c.auth.bootstrap) {
        bootstrapKey = await loadOrCreateBootstrapKey(join(c.dataDir, "api-key"));
        apiKeys.push({
          name: "bootstrap",
          key: bootstrapKey.key,
          keyHash: undefined,
          grants: undefined,
          admin: true,
        });
      }
      // Order matters only for speed: each authenticator ignores credentials that are not its kind.
      const authenticators: Authenticator[] = [];
      if (sessionTokens) authenticators.push(sessionTokens.authenticator);
      if (apiKeys.length > 0) authenticators.push(createApiKeyAuthenticator({ keys: apiKeys, logger }));
      authenticators.push(clientSecrets);
      if (clientCertificates) authenticators.push(clientCertificates);
      let jwt: JwtAuthenticator | undefined;
      if (c.auth.jwtIssuers.length > 0) {
        jwt = createJwtAuthenticator({
          issuers: c.auth.jwtIssuers,
          fetch: rt.fetch,
          clock,
          logger,
          store: storage.identities,
        });
        authenticators.push(jwt);
        for (const warning of issuerWarnings(resolveIssuers(c.auth.jwtIssuers))) logger.warn(warning);
      }
      for (const w of c.warnings) logger.warn({ key: w.path }, `${w.path}: ${w.message}`);
      for (const name of unrestrictedApiKeys(apiKeys.filter((k) => k.name !== "bootstrap"))) {
        logger.warn({ key: name }, "API key has no grants list: it may obtain certificates for every name");
      }
      const chain = createAuthenticate(authenticators, { limiter, audit, logger });
      return { chain, jwt, bootstrapKey };
    };
    const initialAuth = await buildAuth(config);
    const bootstrapKey = initialAuth.bootstrapKey;
    const authChain = createHolder(initialAuth.chain);
    const authenticate = swappableAuthenticate(authChain);
    const warmUp = (jwt: JwtAuthenticator | undefined) => {
      // fetch every trusted issuer's keys now, so a misconfigured issuer shows up in the log at start
      if (!jwt) return;
      void jwt
        .warmUp(AbortSignal.timeout(15_000))
        .then((failures) => {
          for (const f of failures) logger.warn(f, `trusted JWT issuer ${f.issuer} failed: ${f.error}`);
        })
        .catch(() => undefined);
    };

    // --- ACME server (RFC 8555) on the same listener
    const acme = config.acmeServer.enabled
      ? createAcmeServer({
          config: config.acmeServer,
          acme: storage.acme,
          kv: storage.kv,
          identities: storage.identities,
          locks: storage.locks,
          issuers: router,
          audit,
          logger,
          clock,
        })
      : undefined;
    if (acme) closers.unshift(() => acme.close());

    // --- listeners
    let tls = config.server.insecureHttp ? undefined : await loadConfiguredTls(config.server.tls);
    let tlsSource: Certfleet["tlsSource"] = tls ? "configured" : "none";
    if (!tls && !config.server.insecureHttp) {
      const ids = defaultServerIdentities(config.server.tls.names, config.server.bind);
      tls = await loadOrIssueEmbeddedTls({
        store: storage.kv,
        ca: embeddedCa,
        clock,
        names: ids.names,
        ips: ids.ips,
      }).catch((e: unknown) => {
        throw masterKeyError(e, storeWhere);
      });
      tlsSource = "embedded";
    }
    if (config.server.insecureHttp)
      logger.warn("server.insecureHttp is on: the API, API keys and private keys travel unencrypted");
    const app = await buildApp({
      logger,
      storage,
      manager,
      authenticate,
      authorizeNames,
      audit,
      https: tls ? { key: tls.key, cert: tls.cert, clientCa: clientCaPem } : undefined,
      bodyLimit: config.server.bodyLimit,
      trustProxy: config.server.trustProxy,
      timeouts: config.server.timeouts,
      edgeDialects: acme ? [acme.edgeDialect] : [],
      observeResponse: metrics?.onResponse,
      plugins: [
        ...(metrics
          ? [metrics.routes({ authenticate, path: config.metrics.path, token: config.metrics.token })]
          : []),
        adminRoutes({
          identities: storage.identities,
          inventory: createInventory({ certificates: storage.certificates, kv: storage.kv, clock }),
          manager,
          auditLog: storage.audit,
          kv: storage.kv,
          authenticate,
          legacySwitch,
          audit,
          dns: { providers: config.dns.providers, registry: createDnsProviderRegistry() },
        }),
        assignedCertificateRoutes({ identities: storage.identities, authenticate, audit }),
        dashboardRoutes(),
        caRoutes({ ca: embeddedCa }),
        ...(sshCa ? [sshRoutes({ ca: sshCa, authenticate, audit })] : []),
        ...(acme ? [acme.plugin, eabKeyRoutes({ acme, authenticate, identities: storage.identities })] : []),
        ...(sessionTokens ? [sessionRoutes({ authenticate, sessionTokens })] : []),
      ],
    });
    const wantsHttp01 =
      config.server.http01.enabled ??
      config.issuers.some((i) => i.type === "acme" && i.challenges.includes("http-01"));
    const http01App = wantsHttp01 ? buildHttp01App({ storage: storage.challenges, logger }) : undefined;

    return {
      app,
      http01App,
      storage,
      manager,
      scheduler,
      embeddedCa,
      caPath,
      tlsSource,
      bootstrapKey,
      async start() {
        const { bind, port, http01 } = config.server;
        const url = await app.listen({ host: bind, port }).catch((e: unknown) => {
          throw listenError(e, { host: bind, port, setting: "server.port" });
        });
        closers.unshift(() => app.close());
        let http01Url: string | undefined;
        if (http01App) {
          http01Url = await http01App.listen({ host: http01.bind, port: http01.port }).catch((e: unknown) => {
            throw listenError(e, {
              host: http01.bind,
              port: http01.port,
              setting: "server.http01.port",
              enabledSetting: "server.http01.enabled",
            });
          });
          closers.unshift(() => http01App.close());
        }
        scheduler.start();
        notifier.start(config.certificates.checkIntervalMs);
        // a configuration fixed since a failure: retry now rather than when its backoff ends
        void liftBackoffsIfSettingsChanged(current);
        // orders a crash (or a shutdown that did not wait) left unfinished: finish them now
        void manager.resumeJournaled?.().then(
          (n) => n > 0 && logger.info({ resumed: n }, "resuming journaled issuances"),
          (e: unknown) => logger.warn({ err: String(e) }, "could not resume journaled issuances"),
        );
        warmUp(initialAuth.jwt);
        closers.unshift(() => scheduler.stop());
        return { url, http01Url };
      },
      running: () => manager.running?.() ?? 0,
      async reload(next) {
        // build everything first: a reload that fails anywhere changes nothing
        const auth = await buildAuth(next);
        const dns = buildDnsSolver(next);
        const nextTls =
          tlsSource === "configured" && !next.server.insecureHttp
            ? await loadConfiguredTls(next.server.tls)
            : undefined;
        authChain.swap(auth.chain);
        dnsSolver.swap(dns);
        logger.level = next.logLevel;
        if (nextTls) {
          (app.server as unknown as TlsServer).setSecureContext({
            key: nextTls.key,
            cert: nextTls.cert,
            ...(clientCaPem ? { ca: clientCaPem } : {}),
            minVersion: "TLSv1.2",
          });
        }
        warmUp(auth.jwt);
        const restartNeeded = restartOnlyChanges(current, next);
        if (!dnsAtStart && next.dns.providers.length > 0) restartNeeded.push("dns.providers (none at start)");
        current = next;
        // new issuer or DNS settings may fix what failed: those certificates are due again now
        void liftBackoffsIfSettingsChanged(next);
        return { restartNeeded };
      },
      async stop() {
        for (const close of closers.splice(0))
          await close().catch((e: unknown) => logger.error({ err: String(e) }, "shutdown step failed"));
      },
    };
  } catch (e) {
    for (const close of closers) await close().catch(() => undefined);
    throw e;
  }
}

/** Where the issuer settings last checked against failed certificates' backoffs are noted. */
const SETTINGS_SEEN_KEY = "@settings-checked";

/**
 * What decides how `issuerId` obtains a certificate: its own entry and, for an ACME issuer, the DNS
 * settings its dns-01 solver uses. A digest (credentials included, so the manager keeps it sealed).
 */
function issuerSettingsFingerprint(config: ResolvedConfig, issuerId: string): string {
  const issuer = config.issuers.find((i) => i.id === issuerId);
  const settings = { issuerId, issuer, dns: issuer?.type === "acme" ? config.dns : undefined };
  return createHash("sha256").update(JSON.stringify(settings)).digest("base64url");
}

function buildDnsRoutes(config: ResolvedConfig, rt: Runtime): Dns01Route[] {
  const routes: Dns01Route[] = [];
  for (const { entry: p, definition: def, settings } of checkDnsProviderConfigs(
    config.dns.providers,
    createDnsProviderRegistry(),
  )) {
    const provider = def.create(settings, {
      logger: rt.logger.child({ dns: p.id }),
      clock: rt.clock,
      fetch: rt.fetch,
    });
    const propagation = {
      // the provider entry's own setting, then the global one, then the provider's default, then ours
      timeoutMs:
        p.propagationTimeoutMs ?? config.dns.propagationTimeoutMs ?? def.propagation?.timeoutMs ?? 120_000,
      intervalMs:
        p.propagationIntervalMs ?? config.dns.propagationIntervalMs ?? def.propagation?.intervalMs ?? 2_000,
    };
    for (const suffix of p.zones.length > 0 ? p.zones : [""]) routes.push({ suffix, provider, propagation });
  }
  return routes;
}

/** Create the data dir (0700) and check that this user can read, write and enter it. */
async function prepareDataDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    if (!(await stat(dir)).isDirectory()) throw Object.assign(new Error(dir), { code: "EEXIST" });
    await access(dir, fsConstants.R_OK | fsConstants.W_OK | fsConstants.X_OK);
  } catch (e) {
    throw dataDirError(e, dir);
  }
}

function databaseKeyFileError(e: unknown, keyFile: string | undefined): unknown {
  const code = (e as NodeJS.ErrnoException).code;
  if (!keyFile || code === undefined) return e;
  return new StartupError(
    "startup_master_key",
    "database.encryptionKeyFile",
    `cannot read or create the master key ${keyFile} (${code}); fix it or change database.encryptionKeyFile`,
    e,
  );
}

/** Used by `serve` to make the data dir private even when it already existed. */
export async function tightenDataDir(dir: string): Promise<void> {
  await chmod(dir, 0o700).catch(() => undefined);
}
