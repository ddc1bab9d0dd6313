import type { AcmeRequest, AcmeResponse } from "../context.js";
import { problem } from "../problems.js";

/** Clients should ask again after this long (RFC 9773 §4.3 suggests hours). */
export const RENEWAL_INFO_RETRY_SECONDS = 6 * 3600;

/**
 * RFC 9773 ACME Renewal Information: GET `<renewalInfo>/<certID>` (no JWS). The suggested window is
 * the last third of the lifetime, ending when a sixth remains, so clients renew early enough yet not
 * all at once; a revoked certificate gets a window in the past (renew now). Unknown ids are 404.
 */
export async function renewalInfo(req: AcmeRequest): Promise<AcmeResponse> {
  const { ctx, urls, signal } = req;
  const certId = req.params.certId ?? "";
  if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(certId))
    throw problem("malformed", "not an RFC 9773 certificate identifier");
  const cert = await ctx.store.findCertificateByAriId(ctx.profile.name, certId, signal);
  if (!cert)
    throw problem("malformed", "no certificate with this identifier was issued here", { status: 404 });

  let start: Date;
  let end: Date;
  if (cert.revokedAt) {
    end = cert.revokedAt;
    start = new Date(end.getTime() - 60_000);
  } else {
    const notBefore = cert.notBefore.getTime();
    const lifetime = cert.notAfter.getTime() - notBefore;
    start = new Date(notBefore + Math.round((lifetime * 2) / 3));
    end = new Date(notBefore + Math.round((lifetime * 5) / 6));
  }
  return {
    status: 200,
    body: {
      suggestedWindow: { start: start.toISOString(), end: end.toISOString() },
      explanationURL: ctx.profile.renewalExplanationUrl ?? urls.renewalExplanation,
    },
    retryAfter: RENEWAL_INFO_RETRY_SECONDS,
  };
}

/** The default explanationURL: what the window means, in a few lines of text. */
export function renewalExplanation(): AcmeResponse {
  return {
    status: 200,
    contentType: "text/plain; charset=utf-8",
    body:
      "certfleet ACME renewal information (RFC 9773)\n\n" +
      "The suggested window covers the certificate's last third of life, ending when a sixth remains.\n" +
      "Renew at a random time inside the window. A revoked certificate gets a window in the past:\n" +
      "renew it now.\n",
  };
}
