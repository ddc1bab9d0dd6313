import type { AcmeResponse, SignedAcmeRequest } from "../context.js";
import { problem } from "../problems.js";
import { requirePostAsGet } from "../request-auth.js";

export const PEM_CHAIN_CONTENT_TYPE = "application/pem-certificate-chain";

/**
 * RFC 8555 §7.4.2 Downloading the Certificate: the leaf followed by its chain, as
 * application/pem-certificate-chain, for the account that ordered it. Alternate chains are offered
 * with `Link: <…/cert/<id>/<n>>;rel="alternate"`.
 */
export async function certificateResource(req: SignedAcmeRequest): Promise<AcmeResponse> {
  const { ctx, urls, signal } = req;
  requirePostAsGet(req.jws);
  const cert = await ctx.store.getCertificate(ctx.profile.name, req.params.id!, signal);
  if (!cert) throw problem("malformed", "no such certificate", { status: 404 });
  if (cert.accountId !== req.jws.account!.id)
    throw problem("unauthorized", "this certificate belongs to another account");
  const index = req.params.alternate === undefined ? 0 : Number(req.params.alternate);
  if (!Number.isInteger(index) || index < 0 || index >= cert.chains.length) {
    throw problem("malformed", "no such alternate chain", { status: 404 });
  }
  const links = cert.chains
    .map((_chain, i) => i)
    .filter((i) => i !== index)
    .map((i) => `<${urls.certificate(cert.id, i)}>;rel="alternate"`);
  return {
    status: 200,
    contentType: PEM_CHAIN_CONTENT_TYPE,
    body: cert.certPem + cert.chains[index]!,
    links,
  };
}
