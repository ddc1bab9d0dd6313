import { X509Certificate } from "node:crypto";
import { ariCertId } from "../../acme-client/ari.js";
import type { IssuedRecord } from "../../storage/acme-store.js";
import type { AcmeResponse, SignedAcmeRequest } from "../context.js";
import { jwkSpki } from "../jwk.js";
import { problem } from "../problems.js";
import { isCertfleetError, toCertfleetError } from "../../core/errors.js";
import { hasRevoke, revocationReasonName } from "../../issuance/issuer.js";

/** RFC 5280 CRLReason codes an ACME client may ask for (7 is unused; 8 removeFromCRL is not a revocation). */
const REASONS = new Set([0, 1, 2, 3, 4, 5, 6, 9, 10]);

/** How long revoking at the upstream issuer may take. */
const UPSTREAM_TIMEOUT_MS = 60_000;

/**
 * RFC 8555 §7.6 Certificate Revocation. Signed either with `kid` by the account that ordered the
 * certificate, or with `jwk` by the certificate's own key. Anyone else is `unauthorized`.
 *
 * The profile's issuer is told first (an upstream ACME CA's revokeCert, or the embedded CA's CRL),
 * when it can revoke; only then is the revocation recorded here. If the issuer fails, nothing is
 * recorded and the client gets `serverInternal`, so it can try again. An issuer that says the
 * certificate is already revoked (an earlier attempt that was not recorded) counts as done.
 */
export async function revokeCert(req: SignedAcmeRequest): Promise<AcmeResponse> {
  const { ctx, jws, signal } = req;
  const payload = jws.payload;
  if (typeof payload?.certificate !== "string" || !/^[A-Za-z0-9_-]+$/.test(payload.certificate)) {
    throw problem("malformed", "revokeCert needs a base64url certificate");
  }
  const reason = payload.reason ?? 0;
  if (typeof reason !== "number" || !REASONS.has(reason))
    throw problem("badRevocationReason", "unsupported revocation reason");

  const cert = await findIssued(req, Buffer.from(payload.certificate, "base64url"));
  if (jws.account) {
    if (jws.account.id !== cert.accountId)
      throw problem("unauthorized", "this account did not order the certificate");
  } else if (
    !jwkSpki(jws.jwk).equals(
      new X509Certificate(cert.certPem).publicKey.export({ type: "spki", format: "der" }),
    )
  ) {
    throw problem("unauthorized", "the request is not signed by the certificate's key");
  }
  if (cert.revokedAt) throw problem("alreadyRevoked", "the certificate is already revoked");
  await revokeAtIssuer(req, cert, reason);
  if (!(await ctx.store.revokeCertificate(cert.id, reason, ctx.clock.now(), signal))) {
    throw problem("alreadyRevoked", "the certificate is already revoked");
  }
  ctx.audit({
    type: "acme.certificate.revoke",
    actor: jws.account ? `acme:${ctx.profile.name}:${jws.account.id}` : "acme:certificate-key",
    subject: cert.names.join(","),
    outcome: "success",
    remoteAddress: req.remoteAddress ?? null,
    data: { profile: ctx.profile.name, serial: cert.serial, reason },
  });
  return { status: 200 };
}

async function revokeAtIssuer(req: SignedAcmeRequest, cert: IssuedRecord, code: number): Promise<void> {
  const { ctx } = req;
  if (!hasRevoke(ctx.issuer)) return; // nothing upstream to tell: the local record is the revocation
  const reason = revocationReasonName(code) ?? "unspecified";
  try {
    await ctx.issuer.revoke(
      cert.certPem,
      reason,
      AbortSignal.any([req.signal, AbortSignal.timeout(UPSTREAM_TIMEOUT_MS)]),
    );
  } catch (e) {
    if (isCertfleetError(e) && e.code === "already_revoked") return;
    const err = toCertfleetError(e);
    ctx.logger.warn(
      {
        profile: ctx.profile.name,
        serial: cert.serial,
        issuer: ctx.issuer.id,
        code: err.code,
        internal: err.internal,
      },
      "revocation at the issuer failed; not recorded",
    );
    throw problem("serverInternal", "the certificate could not be revoked at its issuer; try again", {
      internal: `${err.code}: ${err.internal ?? err.message}`,
    });
  }
}

async function findIssued(req: SignedAcmeRequest, der: Buffer): Promise<IssuedRecord> {
  let pem: string;
  let certId: string;
  try {
    pem = new X509Certificate(der).toString();
    certId = ariCertId(pem);
  } catch {
    throw problem("malformed", "the certificate cannot be parsed");
  }
  const issued = await req.ctx.store.findCertificateByAriId(req.ctx.profile.name, certId, req.signal);
  // Same issuer key id and serial is not enough: the bytes must be the certificate we issued.
  if (!issued || !new X509Certificate(issued.certPem).raw.equals(der)) {
    throw problem("malformed", "this certificate was not issued by this ACME profile", { status: 404 });
  }
  return issued;
}
