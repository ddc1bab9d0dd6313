import type { FastifyInstance } from "fastify";
import type { Clock } from "../core/clock.js";
import { ConfigError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import { createIssuedKeys } from "../issuance/issued-keys.js";
import type { Issuer } from "../issuance/issuer.js";
import type { EdgeErrorDialect } from "../server/edge-errors.js";
import type { AcmeStore, AuditEvent, IdentityStore, KeyValueStore, LockStore } from "../storage/storage.js";
import { createBackgroundWork } from "./background-work.js";
import { acmeServerConfigSchema, type AcmeServerConfig, type AcmeServerConfigInput } from "./config.js";
import type { ProfileContext } from "./context.js";
import { createEabKeys } from "./eab.js";
import { createEabAdmin, type EabAdmin } from "./eab-admin.js";
import { createNonceService, type NonceService } from "./nonces.js";
import { problem, problemDocument } from "./problems.js";
import { acmeRoutes } from "./plugin.js";
import { ACME_PREFIX } from "./urls.js";
import { createChallengeValidator } from "./validation/challenge-validator.js";

export { acmeServerConfigSchema, acmeProfileSchema } from "./config.js";
export type { AcmeServerConfig, AcmeServerConfigInput, AcmeProfileConfig } from "./config.js";
export { normalizeGrant } from "./eab.js";

/**
 * certfleet's RFC 8555 ACME server. `plugin` registers everything under /acme on the API app (it does
 * not listen by itself); `eab.create` makes External Account Binding keys (for the CLI and the admin
 * API); `close` stops background work (issuance, validation) — the plugin also does so when the app
 * closes.
 */
export interface AcmeServer {
  plugin: (app: FastifyInstance) => Promise<void>;
  /** Errors found before routing under /acme, as RFC 8555 problem documents with a Replay-Nonce. */
  edgeDialect: EdgeErrorDialect;
  eab: {
    /** A new EAB key whose account may obtain names matching `grants`. hmacKey is base64url. */
    create(
      grants: string[],
      ownerId?: string,
      signal?: AbortSignal,
    ): Promise<{ kid: string; hmacKey: string }>;
  };
  /** EAB keys and ACME accounts as the admin API shows them; revoking a key. */
  admin: EabAdmin;
  close(): Promise<void>;
}

export interface AcmeServerDeps {
  /** `acmeServer` section of the configuration (parsed here again, so an input object works too). */
  config: AcmeServerConfigInput | AcmeServerConfig;
  /** Accounts, orders, authorizations, challenges, issued certificates, used nonces. */
  acme: AcmeStore;
  /** EAB keys and the nonce key. */
  kv: Pick<KeyValueStore, "getValue" | "putValue" | "deleteValue" | "listValues">;
  /** EAB key owners. */
  identities: Pick<IdentityStore, "getIdentity">;
  /** The per-account order limit is checked and the order created under one. */
  locks: Pick<LockStore, "tryLock" | "refreshLock" | "unlock">;
  /** Issuers by id (the issuer router's `get`): each profile's `issuer` must be there. */
  issuers: { get(id: string): Issuer | undefined };
  audit?: (event: AuditEvent) => Promise<void>;
  logger: Logger;
  clock: Clock;
}

export function createAcmeServer(deps: AcmeServerDeps): AcmeServer {
  const config = acmeServerConfigSchema.parse(deps.config);
  const logger = deps.logger.child({ component: "acme-server" });
  const store = deps.acme;
  const eab = createEabKeys({ kv: deps.kv, clock: deps.clock });
  const issuedKeys = createIssuedKeys(deps.kv);
  const work = createBackgroundWork(logger);
  const validator = createChallengeValidator({
    dnsResolvers: config.dnsResolvers,
    timeoutMs: config.validationTimeout,
    logger,
  });
  const audit = (event: AuditEvent) => {
    void deps
      .audit?.(event)
      .catch((e: unknown) => logger.error({ err: String(e) }, "acme audit write failed"));
  };

  const missing = config.profiles.filter((p) => !deps.issuers.get(p.issuer));
  if (missing.length > 0) {
    throw new ConfigError(
      missing.map((p) => ({
        path: `acmeServer.profiles.${p.name}.issuer`,
        message: `no issuer with id "${p.issuer}"`,
      })),
    );
  }
  for (const p of config.profiles) {
    if (p.allowPrivateAddresses && p.mode === "challenge") {
      logger.warn(
        { profile: p.name },
        "ACME profile validates challenges against private and loopback addresses",
      );
    }
  }
  const defaultProfile = (config.profiles.find((p) => p.name === "default") ?? config.profiles[0]!).name;
  const descriptions = Object.fromEntries(
    config.profiles.map((p) => [
      p.name,
      p.description ??
        `${p.mode === "eab" ? "external account binding" : "challenge validation"}, issuer ${p.issuer}`,
    ]),
  );

  let nonceService: NonceService | undefined;
  return {
    edgeDialect: {
      prefix: ACME_PREFIX,
      render: (e) => ({
        headers: {
          "content-type": "application/problem+json",
          "cache-control": "no-store",
          ...(nonceService ? { "replay-nonce": nonceService.issue() } : {}),
        },
        body: JSON.stringify(
          problemDocument(
            problem(e.code === "internal" ? "serverInternal" : "malformed", e.message, {
              status: e.status,
              extra: { requestId: e.requestId },
            }),
          ),
        ),
      }),
    },
    async plugin(app) {
      const nonces = await createNonceService({ store, kv: deps.kv, clock: deps.clock, logger });
      nonceService = nonces;
      const contexts: ProfileContext[] = config.profiles.map((profile) => ({
        profile,
        store,
        nonces,
        eab,
        issuer: deps.issuers.get(profile.issuer)!,
        issuedKeys,
        identities: deps.identities,
        locks: deps.locks,
        validator,
        work,
        validationTimeoutMs: config.validationTimeout,
        audit,
        logger: logger.child({ profile: profile.name }),
        clock: deps.clock,
        descriptions,
      }));
      app.addHook("onClose", async () => work.close());
      await app.register(
        acmeRoutes({ contexts, defaultProfile, externalUrl: config.externalUrl, nonces, logger }),
        {
          prefix: ACME_PREFIX,
        },
      );
    },
    eab: {
      async create(grants, ownerId, signal) {
        const key = await eab.create(grants, ownerId, signal);
        audit({
          type: "acme.eab.create",
          actor: ownerId ?? null,
          outcome: "success",
          data: { kid: key.kid, grants },
        });
        return key;
      },
    },
    admin: createEabAdmin({ eab, acme: store, audit: async (event) => audit(event) }),
    close: () => work.close(),
  };
}
