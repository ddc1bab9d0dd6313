import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import { ForbiddenError, isCertfleetError } from "../../core/errors.js";
import type { Principal } from "../../auth/authenticator.js";
import { SSH_CERTIFICATE_TYPES, type SshCertificateType } from "../../ssh/certificate.js";
import { parseSshPublicKey } from "../../ssh/public-key.js";
import type { SshCa } from "../../ssh/ssh-ca.js";
import { authorizeSsh, checkPrincipalSyntax } from "../../ssh/ssh-grant.js";
import type { AuditSink } from "../audit.js";
import { authRequestOf, requestSignal, type Authenticate } from "../auth-hook.js";
import { parseBody } from "../parse-body.js";

/**
 * SSH certificates (docs/ssh.md).
 *
 * Public, unauthenticated (sshd, known_hosts and scripts fetch them):
 *   GET /ssh/user_ca.pub   the user CA key(s), one OpenSSH public-key line each (TrustedUserCAKeys)
 *   GET /ssh/host_ca.pub   the host CA key(s) as `@cert-authority * <key>` lines (known_hosts)
 *   GET /ssh/revoked.krl   the OpenSSH KRL (RevokedKeys)
 * During a rotation the old and the new key are both listed, the current one first.
 *
 * Authenticated like POST /api/certificate:
 *   POST /api/ssh/certificate   a public key + principals + type → a signed certificate, when the
 *                               caller's SSH grant covers them (else 403 principal_not_granted /
 *                               ssh_type_not_granted); issuance and refusals are audited.
 * Admin only: POST /api/ssh/revoke, POST /api/ssh/ca/rotate, POST /api/ssh/ca/retire.
 */

const certificateBody = z.strictObject({
  publicKey: z.string().min(1).max(16_384),
  principals: z.array(z.string().max(256)).max(64),
  type: z.enum(SSH_CERTIFICATE_TYPES).default("user"),
  validity: z
    .string()
    .regex(/^\d{1,9}(s|m|h|d)$/, "a duration such as 30m, 16h or 7d")
    .optional(),
});

const revokeBody = z
  .strictObject({
    certificate: z.string().max(32_768).optional(),
    publicKey: z.string().max(16_384).optional(),
    serial: z
      .string()
      .regex(/^\d{1,20}$/, "a decimal serial number")
      .optional(),
    type: z.enum(SSH_CERTIFICATE_TYPES).optional(),
    reason: z.string().max(200).optional(),
  })
  .refine(
    (b) => [b.certificate, b.publicKey, b.serial].filter((v) => v !== undefined).length === 1,
    "send exactly one of certificate, publicKey or serial",
  )
  .refine((b) => b.serial === undefined || b.type !== undefined, "a serial needs its certificate type");

const caBody = z.strictObject({ type: z.enum(SSH_CERTIFICATE_TYPES) });

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

export function parseValidity(v: string): number {
  const unit = v.slice(-1) as keyof typeof UNIT_MS;
  return Number(v.slice(0, -1)) * UNIT_MS[unit];
}

export interface SshRouteDeps {
  ca: SshCa;
  authenticate: Authenticate;
  audit: AuditSink;
}

export function sshRoutes(deps: SshRouteDeps) {
  const { ca, audit } = deps;

  const adminOnly = async (
    request: FastifyRequest,
    signal: AbortSignal,
    what: string,
  ): Promise<Principal> => {
    const principal = await deps.authenticate(authRequestOf(request), signal);
    if (!principal.admin) throw new ForbiddenError("admin_required", `${what} needs the admin permission`);
    return principal;
  };

  return async (app: FastifyInstance) => {
    app.get("/ssh/user_ca.pub", async (_request, reply) => {
      const lines = await ca.publicKeys("user", requestSignal(reply));
      return reply
        .header("content-type", "text/plain; charset=utf-8")
        .header("cache-control", "public, max-age=300")
        .send(lines.join("\n") + "\n");
    });
    app.get("/ssh/host_ca.pub", async (_request, reply) => {
      const lines = await ca.publicKeys("host", requestSignal(reply));
      return reply
        .header("content-type", "text/plain; charset=utf-8")
        .header("cache-control", "public, max-age=300")
        .send(lines.map((l) => `@cert-authority * ${l}`).join("\n") + "\n");
    });
    app.get("/ssh/revoked.krl", async (_request, reply) => {
      const krl = await ca.krl(requestSignal(reply));
      return reply
        .header("content-type", "application/octet-stream")
        .header("cache-control", "public, max-age=60")
        .send(krl);
    });

    app.post("/api/ssh/certificate", async (request, reply) => {
      const signal = requestSignal(reply);
      const principal = await deps.authenticate(authRequestOf(request), signal);
      const input = parseBody(certificateBody, request.body);
      const type: SshCertificateType = input.type;
      const base = {
        actor: principal.id,
        method: principal.method,
        subject: input.principals.join(","),
        remoteAddress: request.ip,
      };
      try {
        checkPrincipalSyntax(input.principals);
        const grant = authorizeSsh(principal.ssh, principal.id, type, input.principals);
        const publicKey = parseSshPublicKey(input.publicKey);
        const issued = await ca.issue(
          {
            publicKey,
            type,
            principals: input.principals,
            validityMs: input.validity === undefined ? undefined : parseValidity(input.validity),
            keyId: principal.id,
            grant,
          },
          signal,
        );
        await audit({
          type: "ssh.certificate.issue",
          ...base,
          outcome: "success",
          data: {
            certificateType: type,
            serial: issued.serial.toString(),
            keyId: issued.keyId,
            key: publicKey.fingerprint,
            ca: issued.caFingerprint,
            validBefore: issued.validBefore.toISOString(),
          },
        });
        return {
          certificate: issued.certificate,
          serial: issued.serial.toString(),
          keyId: issued.keyId,
          principals: issued.principals,
          validAfter: issued.validAfter.toISOString(),
          validBefore: issued.validBefore.toISOString(),
          type: issued.type,
        };
      } catch (e) {
        if (isCertfleetError(e) && e.status >= 400 && e.status < 500) {
          await audit({
            type: "ssh.certificate.issue",
            ...base,
            outcome: "deny",
            reason: `${e.code}: ${e.internal ?? e.message}`,
            data: { certificateType: type },
          });
        }
        throw e;
      }
    });

    app.post("/api/ssh/revoke", async (request, reply) => {
      const signal = requestSignal(reply);
      const principal = await adminOnly(request, signal, "revoking an SSH certificate");
      const input = parseBody(revokeBody, request.body);
      const result = await ca.revoke(
        input.certificate !== undefined
          ? { certificate: input.certificate, reason: input.reason }
          : input.publicKey !== undefined
            ? { publicKey: input.publicKey, reason: input.reason }
            : { serial: BigInt(input.serial!), type: input.type!, reason: input.reason },
        signal,
      );
      await audit({
        type: "ssh.certificate.revoke",
        actor: principal.id,
        method: principal.method,
        subject: result.serial !== undefined ? `serial:${result.serial}` : `key:${result.fingerprint}`,
        outcome: "success",
        reason: input.reason ?? null,
        remoteAddress: request.ip,
      });
      return {
        revoked: true,
        kind: result.kind,
        ...(result.serial !== undefined ? { serial: result.serial.toString() } : {}),
        ...(result.fingerprint !== undefined ? { fingerprint: result.fingerprint } : {}),
      };
    });

    for (const action of ["rotate", "retire"] as const) {
      app.post(`/api/ssh/ca/${action}`, async (request, reply) => {
        const signal = requestSignal(reply);
        const principal = await adminOnly(
          request,
          signal,
          `${action === "rotate" ? "rotating" : "retiring"} an SSH CA key`,
        );
        const { type } = parseBody(caBody, request.body);
        const state = await ca[action](type, signal);
        await audit({
          type: `ssh.ca.${action}`,
          actor: principal.id,
          method: principal.method,
          subject: type,
          outcome: "success",
          remoteAddress: request.ip,
          data: { current: state.current, published: state.fingerprints },
        });
        return { type, current: state.fingerprints[0], published: state.fingerprints };
      });
    }
  };
}
