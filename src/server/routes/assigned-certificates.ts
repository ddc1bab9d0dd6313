import type { FastifyInstance } from "fastify";
import { z } from "zod";
import {
  assignmentSchema,
  checkAssignment,
  identityImportSchema,
  importIdentities,
} from "../../auth/identity-import.js";
import { identityNotFound, presentIdentity } from "../../auth/identity-service.js";
import { ForbiddenError } from "../../core/errors.js";
import type { IdentityStore } from "../../storage/storage.js";
import type { AuditSink } from "../audit.js";
import { authRequestOf, requestSignal, type Authenticate } from "../auth-hook.js";
import { parseBody } from "../parse-body.js";

/**
 * Server-assigned certificates (an agent config with no `certificates` list) and identity import:
 *
 * - `GET /api/assigned-certificates` — any authenticated identity: the certificates its record is
 *   assigned, `{"certificates": [{"name", "domains", "keyType"}]}` (empty for principals without a
 *   record, such as API keys). Names and key type only: where files go and what to reload is decided
 *   on the machine.
 * - `GET|PUT /api/admin/identities/:id/certificates` — admin: read / replace a record's assignment;
 *   every domain must be covered by the record's grants (`assignment_not_granted`).
 * - `POST /api/admin/identities/import` — admin: `{"identities": [...]}` keeping UUIDs and, for
 *   client_secret, the existing client id and secret (stored hashed).
 */
export interface AssignedCertificatesDeps {
  identities: Pick<
    IdentityStore,
    "getIdentity" | "createIdentity" | "listAssignments" | "replaceAssignments"
  >;
  authenticate: Authenticate;
  audit: AuditSink;
}

const putBody = z.strictObject({ certificates: assignmentSchema });
const importBody = z.strictObject({ identities: z.array(identityImportSchema).min(1).max(1000) });

export function assignedCertificateRoutes(deps: AssignedCertificatesDeps) {
  return async (app: FastifyInstance) => {
    async function requireAdmin(request: Parameters<typeof authRequestOf>[0], signal: AbortSignal) {
      const principal = await deps.authenticate(authRequestOf(request), signal);
      if (!principal.admin) throw new ForbiddenError("admin_required", "this needs the admin permission");
      return principal;
    }

    app.get("/api/assigned-certificates", async (request, reply) => {
      const signal = requestSignal(reply);
      const principal = await deps.authenticate(authRequestOf(request), signal);
      return { certificates: await deps.identities.listAssignments(principal.id, signal) };
    });

    app.get<{ Params: { id: string } }>("/api/admin/identities/:id/certificates", async (request, reply) => {
      const signal = requestSignal(reply);
      await requireAdmin(request, signal);
      const record = await deps.identities.getIdentity(request.params.id, signal);
      if (!record) throw identityNotFound(request.params.id);
      return { certificates: await deps.identities.listAssignments(record.id, signal) };
    });

    app.put<{ Params: { id: string } }>("/api/admin/identities/:id/certificates", async (request, reply) => {
      const signal = requestSignal(reply);
      const principal = await requireAdmin(request, signal);
      const body = parseBody(putBody, request.body);
      const record = await deps.identities.getIdentity(request.params.id, signal);
      if (!record) throw identityNotFound(request.params.id);
      const certificates = checkAssignment(record.grants, body.certificates);
      await deps.identities.replaceAssignments(record.id, certificates, signal);
      await deps.audit({
        type: "admin.identity.assign",
        actor: principal.id,
        method: principal.method,
        subject: record.id,
        outcome: "success",
        remoteAddress: request.ip,
        data: { certificates: certificates.map((c) => c.name) },
      });
      return { certificates };
    });

    app.post("/api/admin/identities/import", async (request, reply) => {
      const signal = requestSignal(reply);
      const principal = await requireAdmin(request, signal);
      const body = parseBody(importBody, request.body);
      const records = await importIdentities(deps.identities, body.identities, signal);
      await deps.audit({
        type: "admin.identity.import",
        actor: principal.id,
        method: principal.method,
        subject: null,
        outcome: "success",
        remoteAddress: request.ip,
        data: { ids: records.map((r) => r.id) },
      });
      return reply.status(201).send({ identities: records.map(presentIdentity) });
    });
  };
}
