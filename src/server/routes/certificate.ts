import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { ForbiddenError, ValidationError } from "../../core/errors.js";
import { KEY_TYPES } from "../../core/key-types.js";
import { normalizeNames } from "../../core/names.js";
import { REVOCATION_REASON_NAMES } from "../../issuance/issuer.js";
import type { CertificateManager, ObtainResult } from "../../issuance/manager.js";
import type { AuditSink } from "../audit.js";
import { parseBody } from "../parse-body.js";
import { authRequestOf, requestSignal, type Authenticate, type AuthorizeNames } from "../auth-hook.js";

/**
 * POST /api/certificate — the shape other centralised certificate servers use:
 * `{"domain": "example.com"}` (or `domains: [...]`, optional `csr`, `keyType`) → 200 with the leaf,
 * issuer chain, private key (unless CSR mode), validity and whether it came from the cache.
 * POST /api/certificate/renew — renew now; outside the renewal window or during a failure's backoff only
 * for admins with force.
 * POST /api/certificate/revoke — admins only (a shared certificate is on every machine that fetched
 * it): revoke at the CA and, unless `replace: false`, answer with the replacement (fresh key).
 */
const body = z.strictObject({
  domain: z.string().optional(),
  domains: z.array(z.string()).max(100).optional(),
  csr: z
    .string()
    .max(64 * 1024)
    .optional(),
  keyType: z.enum(KEY_TYPES).optional(),
});
const renewBody = body.extend({ force: z.boolean().optional() });
const revokeBody = body.extend({
  reason: z.enum(REVOCATION_REASON_NAMES).optional(),
  replace: z.boolean().optional(),
});

export interface CertificateRouteDeps {
  manager: CertificateManager;
  authenticate: Authenticate;
  authorizeNames: AuthorizeNames;
  audit: AuditSink;
}

function namesOf(b: { domain?: string; domains?: string[] }): string[] {
  const raw = [...(b.domain !== undefined ? [b.domain] : []), ...(b.domains ?? [])];
  if (raw.length === 0) throw new ValidationError("domains_empty", 'send "domain" or "domains"');
  return normalizeNames(raw);
}

export function present(result: ObtainResult) {
  const r = result.record;
  return {
    domain: r.names[0],
    domains: r.names,
    certificate: r.certPem,
    issuerCert: r.chainPem,
    fullchain: r.certPem + r.chainPem,
    ...(r.privateKeyPem ? { privateKey: r.privateKeyPem } : {}),
    keyType: r.keyType,
    serial: r.serial,
    notBefore: r.notBefore.toISOString(),
    notAfter: r.notAfter.toISOString(),
    renewAt: r.renewAt.toISOString(),
    issuer: r.issuerId,
    cached: result.cached,
  };
}

export function certificateRoutes(deps: CertificateRouteDeps) {
  return async (app: FastifyInstance) => {
    app.post("/api/certificate", async (request, reply) => {
      const signal = requestSignal(reply);
      const principal = await deps.authenticate(authRequestOf(request), signal);
      const input = parseBody(body, request.body);
      const names = namesOf(input);
      deps.authorizeNames(principal, names);
      const result = await deps.manager.obtain(
        { names, keyType: input.keyType, csrPem: input.csr, actor: principal.id, owner: principal.id },
        signal,
      );
      await deps.audit({
        type: "certificate.download",
        actor: principal.id,
        method: principal.method,
        subject: names.join(","),
        outcome: "success",
        remoteAddress: request.ip,
        data: { serial: result.record.serial, cached: result.cached },
      });
      return present(result);
    });

    app.post("/api/certificate/renew", async (request, reply) => {
      const signal = requestSignal(reply);
      const principal = await deps.authenticate(authRequestOf(request), signal);
      const input = parseBody(renewBody, request.body);
      const names = namesOf(input);
      deps.authorizeNames(principal, names);
      if (input.force && !principal.admin)
        throw new ForbiddenError("admin_required", "forcing a renewal needs the admin permission");
      const result = await deps.manager.renew(
        {
          names,
          keyType: input.keyType,
          csrPem: input.csr,
          actor: principal.id,
          owner: principal.id,
          force: input.force,
        },
        signal,
      );
      return present(result);
    });

    app.post("/api/certificate/revoke", async (request, reply) => {
      const signal = requestSignal(reply);
      const principal = await deps.authenticate(authRequestOf(request), signal);
      const input = parseBody(revokeBody, request.body);
      const names = namesOf(input);
      if (!principal.admin)
        throw new ForbiddenError("admin_required", "revoking a certificate needs the admin permission");
      const reason = input.reason ?? "unspecified";
      const result = await deps.manager.revoke(
        { names, keyType: input.keyType, csrPem: input.csr },
        { reason, actor: principal.id, replace: input.replace ?? true },
        signal,
      );
      // the manager audits the revocation (certificate.revoke) with the actor
      if (!result.replacement) return { revoked: true, serial: result.revoked.serial };
      return present({ record: result.replacement, cached: false });
    });
  };
}
