import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import type { Principal } from "../../auth/authenticator.js";
import {
  createIdentityRecord,
  IDENTITY_METHODS,
  identityNotFound,
  presentIdentity,
  rotateIdentitySecret,
  updateIdentityRecord,
} from "../../auth/identity-service.js";
import { LEGACY_METHODS, writeLegacySettings, type LegacySwitch } from "../../auth/legacy-switch.js";
import type { DnsProviderConfig } from "../../config/resolve.js";
import { ForbiddenError } from "../../core/errors.js";
import { configFromLegoEnv } from "../../dns/lego-compat.js";
import type { DnsProviderRegistry } from "../../dns/registry.js";
import type { AuditLog, IdentityStore, KeyValueStore } from "../../storage/storage.js";
import type { AuditSink } from "../audit.js";
import { authRequestOf, requestSignal, type Authenticate } from "../auth-hook.js";
import { parseBody } from "../parse-body.js";
import { INVENTORY_STATUSES, type Inventory, type InventoryEntry } from "../../issuance/inventory.js";
import { REVOCATION_REASON_NAMES } from "../../issuance/issuer.js";
import type { CertificateManager } from "../../issuance/manager.js";
import { renewById } from "../../issuance/renew-by-id.js";

/**
 * The admin API: identity records, organisation settings, the audit log, and read-only views of the
 * certificates and the configured DNS providers. Every route needs the admin permission, which no
 * certificate grant implies. Every change is audited by one onResponse hook (the handler only names what
 * it did), with the outcome taken from the status code.
 */
const identityBody = z.strictObject({
  name: z.string().min(1).max(200),
  method: z.enum(IDENTITY_METHODS),
  binding: z.record(z.string(), z.string().max(2048)).default({}),
  grants: z.array(z.string()).max(1000).default([]),
  enabled: z.boolean().default(true),
  admin: z.boolean().default(false),
});
const identityPatch = z.strictObject({
  name: z.string().min(1).max(200).optional(),
  grants: z.array(z.string()).max(1000).optional(),
  enabled: z.boolean().optional(),
  admin: z.boolean().optional(),
});
const settingsBody = z.strictObject({
  legacyMethodsEnabled: z.union([
    z.boolean(),
    z.strictObject({ client_secret: z.boolean(), certificate: z.boolean() }),
  ]),
});
const auditQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  before: z.coerce.number().int().positive().optional(),
  type: z.string().max(100).optional(),
});

export interface AdminRouteDeps {
  identities: Pick<
    IdentityStore,
    "createIdentity" | "getIdentity" | "listIdentities" | "updateIdentity" | "deleteIdentity"
  >;
  inventory: Inventory;
  /** Renews and revokes certificates by id (the same path as the CLI and the scheduler). */
  manager: Pick<CertificateManager, "renew" | "revoke">;
  /** Reads the audit log (writes go through `audit`). */
  auditLog: Pick<AuditLog, "listAudit">;
  /** Legacy authentication settings. */
  kv: Pick<KeyValueStore, "putValue">;
  authenticate: Authenticate;
  legacySwitch: LegacySwitch;
  audit: AuditSink;
  /** The configured DNS providers and the registry that knows their secret fields; absent = none. */
  dns?: { providers: readonly DnsProviderConfig[]; registry: Pick<DnsProviderRegistry, "get"> };
}

export const REDACTED = "[redacted]";

/** A configured DNS provider as the admin API shows it: every secret field replaced by `[redacted]`. */
export interface DnsProviderView {
  id: string;
  type: string;
  /** Zone suffixes routed to this provider; empty = every name. */
  zones: string[];
  propagationTimeoutMs: number | null;
  propagationIntervalMs: number | null;
  /** Where it was configured (`dns.providers.0`, `letsEncrypt.dnsProvider`). */
  source: string;
  config: Record<string, unknown>;
}

/**
 * Redacts by the provider definition's `secretFields`, the same marking the registry documents for
 * logs. lego-style credentials are first mapped onto the provider's own keys (unknown variables are
 * dropped), so they are redacted by the same list. A provider the registry does not know (start-up
 * refuses those) shows no config at all.
 */
export function describeDnsProviders(
  providers: readonly DnsProviderConfig[],
  registry: Pick<DnsProviderRegistry, "get">,
): DnsProviderView[] {
  return providers.map((p) => {
    const def = registry.get(p.type);
    let config: Record<string, unknown> = {};
    if (def) {
      const raw = p.legoEnv ? configFromLegoEnv(def, p.legoEnv) : p.config;
      config = Object.fromEntries(
        Object.entries(raw).map(([key, value]) => [key, def.secretFields.includes(key) ? REDACTED : value]),
      );
    }
    return {
      id: p.id,
      type: def?.id ?? p.type,
      zones: [...p.zones],
      propagationTimeoutMs: p.propagationTimeoutMs ?? null,
      propagationIntervalMs: p.propagationIntervalMs ?? null,
      source: p.path,
      config,
    };
  });
}

/**
 * What the admin API shows of a certificate: the inventory entry (metadata only, never PEM bodies or
 * keys), plus the older `issuerId` / `lastFailure` fields the dashboard reads.
 */
function presentCertificate(e: InventoryEntry) {
  return {
    ...e,
    issuerId: e.issuer,
    lastFailure: e.lastError && { ...e.lastError, failureCount: e.consecutiveFailures },
  };
}

const certificatesQuery = z.strictObject({
  status: z.enum(INVENTORY_STATUSES).optional(),
  issuer: z.string().max(200).optional(),
  owner: z.string().max(500).optional(),
  /** Seconds. */
  expiringWithin: z.coerce.number().int().min(0).optional(),
  q: z.string().max(253).optional(),
  cursor: z.string().max(2000).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

const revokeBody = z.strictObject({
  reason: z.enum(REVOCATION_REASON_NAMES).default("unspecified"),
  /** Issue a replacement at once (server-held keys only); default: revoke only. */
  replace: z.boolean().default(false),
});

interface AdminAction {
  type: string;
  subject: string | null;
  data?: Record<string, unknown>;
}

declare module "fastify" {
  interface FastifyRequest {
    adminAction?: AdminAction;
  }
}

export function adminRoutes(deps: AdminRouteDeps) {
  const dnsProviders = deps.dns ? describeDnsProviders(deps.dns.providers, deps.dns.registry) : [];
  return async (app: FastifyInstance) => {
    const requireAdmin = async (request: FastifyRequest, reply: FastifyReply): Promise<Principal> => {
      const principal = await deps.authenticate(authRequestOf(request), requestSignal(reply));
      request.principal = principal;
      if (!principal.admin) {
        throw new ForbiddenError(
          "admin_required",
          "this needs the admin permission",
          `${principal.id} is not an admin`,
        );
      }
      return principal;
    };

    app.addHook("onResponse", async (request, reply) => {
      const action = request.adminAction;
      if (!action) return;
      await deps.audit({
        type: action.type,
        actor: request.principal?.id ?? null,
        method: request.principal?.method ?? null,
        subject: action.subject,
        outcome: reply.statusCode < 400 ? "success" : "failure",
        remoteAddress: request.ip,
        data: { ...action.data, status: reply.statusCode },
      });
    });

    app.post("/api/admin/identities", async (request, reply) => {
      await requireAdmin(request, reply);
      const body = parseBody(identityBody, request.body);
      request.adminAction = {
        type: "admin.identity.create",
        subject: null,
        data: { method: body.method, name: body.name },
      };
      const { record, clientSecret } = await createIdentityRecord(deps.identities, body);
      request.adminAction.subject = record.id;
      return reply
        .status(201)
        .send({ ...presentIdentity(record), ...(clientSecret ? { clientSecret } : {}) });
    });

    app.get("/api/admin/identities", async (request, reply) => {
      await requireAdmin(request, reply);
      return { identities: (await deps.identities.listIdentities()).map(presentIdentity) };
    });

    app.get<{ Params: { id: string } }>("/api/admin/identities/:id", async (request, reply) => {
      await requireAdmin(request, reply);
      const record = await deps.identities.getIdentity(request.params.id);
      if (!record) throw identityNotFound(request.params.id);
      return presentIdentity(record);
    });

    app.patch<{ Params: { id: string } }>("/api/admin/identities/:id", async (request, reply) => {
      await requireAdmin(request, reply);
      const body = parseBody(identityPatch, request.body);
      request.adminAction = {
        type: "admin.identity.update",
        subject: request.params.id,
        data: { fields: Object.keys(body) },
      };
      return presentIdentity(await updateIdentityRecord(deps.identities, request.params.id, body));
    });

    app.delete<{ Params: { id: string } }>("/api/admin/identities/:id", async (request, reply) => {
      await requireAdmin(request, reply);
      request.adminAction = { type: "admin.identity.delete", subject: request.params.id };
      if (!(await deps.identities.deleteIdentity(request.params.id)))
        throw identityNotFound(request.params.id);
      return reply.status(204).send();
    });

    app.post<{ Params: { id: string } }>(
      "/api/admin/identities/:id/rotate-secret",
      async (request, reply) => {
        await requireAdmin(request, reply);
        request.adminAction = { type: "admin.identity.rotate_secret", subject: request.params.id };
        const { record, clientSecret } = await rotateIdentitySecret(deps.identities, request.params.id);
        return { ...presentIdentity(record), clientSecret };
      },
    );

    app.get("/api/admin/certificates", async (request, reply) => {
      await requireAdmin(request, reply);
      const q = parseBody(certificatesQuery, request.query);
      const page = await deps.inventory.list(
        {
          status: q.status,
          issuer: q.issuer,
          owner: q.owner,
          expiringWithinSeconds: q.expiringWithin,
          search: q.q,
          after: q.cursor,
          limit: q.limit,
        },
        requestSignal(reply),
      );
      return { certificates: page.certificates.map(presentCertificate), next: page.next };
    });

    app.get<{ Params: { id: string } }>("/api/admin/certificates/:id", async (request, reply) => {
      await requireAdmin(request, reply);
      return presentCertificate(await deps.inventory.get(request.params.id, requestSignal(reply)));
    });

    app.post<{ Params: { id: string } }>("/api/admin/certificates/:id/renew", async (request, reply) => {
      const principal = await requireAdmin(request, reply);
      request.adminAction = { type: "admin.certificate.renew", subject: request.params.id };
      const signal = requestSignal(reply);
      await renewById(deps, request.params.id, principal.id, signal);
      return presentCertificate(await deps.inventory.get(request.params.id, signal));
    });

    app.post<{ Params: { id: string } }>("/api/admin/certificates/:id/revoke", async (request, reply) => {
      const principal = await requireAdmin(request, reply);
      const body = parseBody(revokeBody, request.body ?? {});
      request.adminAction = {
        type: "admin.certificate.revoke",
        subject: request.params.id,
        data: { reason: body.reason, replace: body.replace },
      };
      const signal = requestSignal(reply);
      await deps.manager.revoke(
        { id: request.params.id },
        { reason: body.reason, actor: principal.id, replace: body.replace },
        signal,
      );
      return presentCertificate(await deps.inventory.get(request.params.id, signal));
    });

    app.get("/api/admin/dns-providers", async (request, reply) => {
      await requireAdmin(request, reply);
      return { providers: dnsProviders };
    });

    app.get("/api/admin/settings", async (request, reply) => {
      await requireAdmin(request, reply);
      return {
        legacyMethodsEnabled: await deps.legacySwitch.read(requestSignal(reply)),
        legacyMethods: LEGACY_METHODS,
      };
    });

    app.put("/api/admin/settings", async (request, reply) => {
      await requireAdmin(request, reply);
      const body = parseBody(settingsBody, request.body);
      request.adminAction = {
        type: "admin.settings.update",
        subject: "legacyMethodsEnabled",
        data: { value: body.legacyMethodsEnabled },
      };
      await writeLegacySettings(deps.kv, body.legacyMethodsEnabled);
      return { legacyMethodsEnabled: body.legacyMethodsEnabled };
    });

    app.get("/api/admin/audit", async (request, reply) => {
      await requireAdmin(request, reply);
      const q = parseBody(auditQuery, request.query);
      const records = await deps.auditLog.listAudit(q);
      return { events: records.map((r) => ({ ...r, at: r.at.toISOString() })), next: records.at(-1)?.id };
    });
  };
}
