import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { ForbiddenError } from "../core/errors.js";
import { patternMatches } from "../core/names.js";
import { authRequestOf, requestSignal, type Authenticate } from "../server/auth-hook.js";
import { parseBody } from "../server/parse-body.js";
import type { IdentityStore } from "../storage/storage.js";
import type { Principal } from "../auth/authenticator.js";
import type { AcmeServer } from "./index.js";
import { normalizeGrant } from "./eab.js";

/**
 * The admin views of the ACME server (admin permission only): `GET /api/admin/acme/eab-keys` and
 * `GET /api/admin/acme/accounts` (pages of `limit`, `cursor` = the previous page's `next`), and
 * `POST /api/admin/acme/eab-keys/{kid}/revoke`.
 *
 * POST /api/acme/eab-keys `{ "grants": [...] }` → 201 `{ "kid", "hmacKey" }`: the admin-API side of
 * `certfleet acme eab create`, mounted by the composition root next to the other API routes (it
 * answers with the API's error shape, not ACME problems).
 *
 * An admin may grant any names. Any other identity may create keys for (a subset of) its own grants —
 * omitted grants mean all of them — and owns the key: when the identity is disabled or deleted, the
 * ACME account bound to the key can no longer order certificates.
 */
export interface EabApiDeps {
  acme: Pick<AcmeServer, "eab" | "admin">;
  authenticate: Authenticate;
  identities: Pick<IdentityStore, "getIdentity">;
}

const body = z.strictObject({ grants: z.array(z.string().min(1)).min(1).max(100).optional() });
const pageQuery = z.strictObject({
  cursor: z.string().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export function eabKeyRoutes(deps: EabApiDeps) {
  return async (app: FastifyInstance) => {
    app.post("/api/acme/eab-keys", async (request, reply) => {
      const signal = requestSignal(reply);
      const principal = await deps.authenticate(authRequestOf(request), signal);
      const input = parseBody(body, request.body);
      const grants = grantsFor(principal, input.grants?.map(normalizeGrant));
      const owner = principal.admin ? undefined : await deps.identities.getIdentity(principal.id, signal);
      const key = await deps.acme.eab.create(grants, owner?.id, signal);
      return reply.status(201).send(key);
    });

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

    app.get("/api/admin/acme/eab-keys", async (request, reply) => {
      await requireAdmin(request, reply);
      const q = parseBody(pageQuery, request.query);
      return deps.acme.admin.listKeys({ after: q.cursor, limit: q.limit }, requestSignal(reply));
    });

    app.post<{ Params: { kid: string } }>("/api/admin/acme/eab-keys/:kid/revoke", async (request, reply) => {
      const principal = await requireAdmin(request, reply);
      return deps.acme.admin.revokeKey(request.params.kid, principal.id, requestSignal(reply));
    });

    app.get("/api/admin/acme/accounts", async (request, reply) => {
      await requireAdmin(request, reply);
      const q = parseBody(pageQuery, request.query);
      return deps.acme.admin.listAccounts({ after: q.cursor, limit: q.limit }, requestSignal(reply));
    });
  };
}

function grantsFor(principal: Principal, requested: string[] | undefined): string[] {
  if (principal.admin) {
    if (!requested)
      throw new ForbiddenError("grants_required", "an admin must name the grants of an EAB key");
    return requested;
  }
  const own = principal.grants;
  if (!requested) {
    if (own === "all") return ["*"];
    if (own.length === 0)
      throw new ForbiddenError("domain_not_granted", "this identity has no grants to hand on");
    return [...own];
  }
  const refused = own === "all" ? [] : requested.filter((p) => !own.some((g) => grantCovers(g, p)));
  if (refused.length > 0) {
    throw new ForbiddenError(
      "domain_not_granted",
      `this identity may not hand on: ${refused.join(", ")}`,
      `${principal.id} asked for EAB grants ${refused.join(", ")}`,
      { grants: refused },
    );
  }
  return requested;
}

/** Does grant `g` cover every name pattern `p` covers? */
export function grantCovers(g: string, p: string): boolean {
  if (g === "*") return true;
  if (p === "*") return false;
  if (p.startsWith(".")) return g.startsWith(".") && p.endsWith(g);
  return patternMatches(g, p);
}
