import { X509Certificate } from "node:crypto";
import { ariCertId } from "../../acme-client/ari.js";
import type { IssuedRecord } from "../acme-store.js";
import type { AcmeResponse, SignedAcmeRequest } from "../context.js";
import { jwkSpki } from "../jwk.js";
import { problem } from "../problems.js";

/** RFC 5280 CRLReason codes an ACME client may ask for (7 is unused; 8 removeFromCRL is not a revocation). */
const REASONS = new Set([0, 1, 2, 3, 4, 5, 6, 9, 10]);

/**
 * RFC 8555 §7.6 Certificate Revocation. Signed either with `kid` by the account that ordered the
 * certificate, or with `jwk` by the certificate's own key. Anyone else is `unauthorized`.
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
