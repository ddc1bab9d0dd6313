import { X509Certificate } from "node:crypto";
import { ariCertId } from "../../acme-client/ari.js";
import type { AccountRecord, IssuedRecord } from "../../storage/acme-store.js";
import type { AcmeResponse, SignedAcmeRequest } from "../context.js";
import { patternMatches } from "../../core/names.js";
import { jwkSpki } from "../jwk.js";
import { problem } from "../problems.js";
import { isCertfleetError, toCertfleetError } from "../../core/errors.js";
import { hasRevoke, revocationReasonName } from "../../issuance/issuer.js";

/** RFC 5280 CRLReason codes an ACME client may ask for (7 is unused; 8 removeFromCRL is not a revocation). */
const REASONS = new Set([0, 1, 2, 3, 4, 5, 6, 9, 10]);

/** How long revoking at the upstream issuer may take. */
const UPSTREAM_TIMEOUT_MS = 60_000;

/** At most this many of an account's orders are searched for authorizations covering a certificate. */
const MAX_ORDERS_SEARCHED = 2_000;
const ORDER_PAGE = 100;

/**
 * RFC 8555 §7.6 Certificate Revocation. Signed with `kid` by the account that ordered the
 * certificate or by an account that holds valid authorizations for every name in it (in an `eab`
 * profile the account's grants are standing authorizations: it could get them at once), or with
 * `jwk` by the certificate's own key. Anyone else is `unauthorized`.
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
    if (jws.account.id !== cert.accountId && !(await holdsAuthorizations(req, jws.account, cert.names)))
      throw problem(
        "unauthorized",
        "this account neither ordered the certificate nor holds valid authorizations for all its names",
      );
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

/** Does `account` hold a valid, unexpired authorization (or, in an eab profile, a grant) for every name? */
async function holdsAuthorizations(
  req: SignedAcmeRequest,
  account: AccountRecord,
  names: readonly string[],
): Promise<boolean> {
  const { ctx, signal } = req;
  const now = ctx.clock.now().getTime();
  let missing = new Set(names);
  if (ctx.profile.mode === "eab") {
    missing = new Set([...missing].filter((n) => !account.grants.some((g) => patternMatches(g, n))));
  }
  let after: string | undefined;
  for (let searched = 0; missing.size > 0 && searched < MAX_ORDERS_SEARCHED; searched += ORDER_PAGE) {
    const ids = await ctx.store.listOrderIds(account.id, ORDER_PAGE, after, signal);
    if (ids.length === 0) break;
    after = ids[ids.length - 1];
    for (const id of ids) {
      const order = await ctx.store.getOrder(ctx.profile.name, id, signal);
      if (!order || !order.identifiers.some((n) => missing.has(n))) continue;
      const authorizations = await ctx.store.getAuthorizations(
        ctx.profile.name,
        order.authorizationIds,
        signal,
      );
      for (const a of authorizations) {
        if (a.accountId !== account.id || a.status !== "valid" || a.expiresAt.getTime() <= now) continue;
        missing.delete(a.wildcard ? `*.${a.identifier}` : a.identifier);
      }
    }
  }
  return missing.size === 0;
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
