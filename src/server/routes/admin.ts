import { randomUUID } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { recordBindingKey } from "../../auth/binding.js";
import { CLIENT_SECRET_METHOD, createClientCredentials } from "../../auth/client-secret.js";
import { LEGACY_METHODS, writeLegacySettings, type LegacySwitch } from "../../auth/legacy-switch.js";
import type { Principal } from "../../auth/authenticator.js";
import { CertfleetError, ForbiddenError, ValidationError } from "../../core/errors.js";
import { normalizeGrantPattern } from "../../core/grant-patterns.js";
import type { IdentityRecord, Storage } from "../../storage/storage.js";
import type { AuditSink } from "../audit.js";
import { authRequestOf, requestSignal, type Authenticate } from "../auth-hook.js";
import { parseBody } from "../parse-body.js";

/**
 * The admin API: identity records, organisation settings, the audit log. Every route needs the admin
 * permission, which no certificate grant implies. Every change is audited by one onResponse hook (the
 * handler only names what it did), with the outcome taken from the status code.
 */
export const IDENTITY_METHODS = [
  "jwt",
  "azure",
  "aws",
  "gcp",
  "kubernetes",
  "spiffe",
  "client_secret",
  "certificate",
] as const;

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
  storage: Pick<
    Storage,
    | "createIdentity"
    | "getIdentity"
    | "listIdentities"
    | "updateIdentity"
    | "deleteIdentity"
    | "listAudit"
    | "putValue"
  >;
  authenticate: Authenticate;
  legacySwitch: LegacySwitch;
  audit: AuditSink;
}

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

/** Public view of a record: never the secret hash. */
export function presentIdentity(r: IdentityRecord) {
  return {
    id: r.id,
    name: r.name,
    method: r.method,
    binding: r.binding,
    grants: r.grants,
    enabled: r.enabled,
    admin: r.admin,
    createdAt: r.createdAt.toISOString(),
    updatedAt: r.updatedAt.toISOString(),
  };
}

function grantsOf(input: readonly string[]): string[] {
  return [...new Set(input.map(normalizeGrantPattern))];
}

const notFound = (id: string) =>
  new CertfleetError("identity_not_found", `no identity ${id}`, { status: 404, details: { id } });

export function adminRoutes(deps: AdminRouteDeps) {
  return async (app: FastifyInstance) => {
    const requireAdmin = async (request: FastifyRequest, reply: FastifyReply): Promise<Principal> => {
      const principal = await deps.authenticate(authRequestOf(request), requestSignal(reply));
      request.principal = principal;
      if (!principal.admin)
        throw new ForbiddenError(
          "admin_required",
          "this needs the admin permission",
          `principal ${principal.id} is not an admin`,
        );
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
      const id = randomUUID();
      request.adminAction = {
        type: "admin.identity.create",
        subject: id,
        data: { method: body.method, name: body.name },
      };
      let binding = body.binding;
      let secretHash: string | null = null;
      let clientSecret: string | undefined;
      if (body.method === CLIENT_SECRET_METHOD) {
        if (Object.keys(binding).length > 0)
          throw new ValidationError(
            "binding_invalid",
            "client_secret identities get their client id from the server; send no binding",
          );
        const creds = await createClientCredentials();
        binding = { clientId: creds.clientId };
        secretHash = creds.secretHash;
        clientSecret = creds.clientSecret;
      }
      const record = await deps.storage.createIdentity({
        id,
        name: body.name,
        method: body.method,
        binding,
        bindingKey: recordBindingKey(body.method, binding),
        grants: grantsOf(body.grants),
        enabled: body.enabled,
        admin: body.admin,
        secretHash,
      });
      return reply
        .status(201)
        .send({ ...presentIdentity(record), ...(clientSecret ? { clientSecret } : {}) });
    });

    app.get("/api/admin/identities", async (request, reply) => {
      await requireAdmin(request, reply);
      return { identities: (await deps.storage.listIdentities()).map(presentIdentity) };
    });

    app.get<{ Params: { id: string } }>("/api/admin/identities/:id", async (request, reply) => {
      await requireAdmin(request, reply);
      const record = await deps.storage.getIdentity(request.params.id);
      if (!record) throw notFound(request.params.id);
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
      const record = await deps.storage.updateIdentity(request.params.id, {
        ...body,
        ...(body.grants ? { grants: grantsOf(body.grants) } : {}),
      });
      if (!record) throw notFound(request.params.id);
      return presentIdentity(record);
    });

    app.delete<{ Params: { id: string } }>("/api/admin/identities/:id", async (request, reply) => {
      await requireAdmin(request, reply);
      request.adminAction = { type: "admin.identity.delete", subject: request.params.id };
      if (!(await deps.storage.deleteIdentity(request.params.id))) throw notFound(request.params.id);
      return reply.status(204).send();
    });

    app.post<{ Params: { id: string } }>(
      "/api/admin/identities/:id/rotate-secret",
      async (request, reply) => {
        await requireAdmin(request, reply);
        request.adminAction = { type: "admin.identity.rotate_secret", subject: request.params.id };
        const record = await deps.storage.getIdentity(request.params.id);
        if (!record) throw notFound(request.params.id);
        if (record.method !== CLIENT_SECRET_METHOD || !record.binding.clientId) {
          throw new ValidationError(
            "identity_has_no_secret",
            `a ${record.method} identity has no server-generated secret to rotate`,
          );
        }
        const creds = await createClientCredentials({ clientId: record.binding.clientId });
        const updated = await deps.storage.updateIdentity(record.id, { secretHash: creds.secretHash });
        if (!updated) throw notFound(record.id);
        return { ...presentIdentity(updated), clientSecret: creds.clientSecret };
      },
    );

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
      await writeLegacySettings(deps.storage, body.legacyMethodsEnabled);
      return { legacyMethodsEnabled: body.legacyMethodsEnabled };
    });

    app.get("/api/admin/audit", async (request, reply) => {
      await requireAdmin(request, reply);
      const q = parseBody(auditQuery, request.query);
      const records = await deps.storage.listAudit(q);
      return { events: records.map((r) => ({ ...r, at: r.at.toISOString() })), next: records.at(-1)?.id };
    });
  };
}
