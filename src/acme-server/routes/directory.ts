import type { AcmeRequest, AcmeResponse } from "../context.js";

/** RFC 8555 §7.1.1 Directory, with the RFC 9773 `renewalInfo` resource and draft-aaron-acme-profiles meta. */
export function directory(req: AcmeRequest): AcmeResponse {
  const { ctx, urls } = req;
  const { profile } = ctx;
  return {
    status: 200,
    body: {
      newNonce: urls.newNonce,
      newAccount: urls.newAccount,
      newOrder: urls.newOrder,
      revokeCert: urls.revokeCert,
      keyChange: urls.keyChange,
      renewalInfo: urls.renewalInfo,
      meta: {
        ...(profile.termsOfService ? { termsOfService: profile.termsOfService } : {}),
        ...(profile.website ? { website: profile.website } : {}),
        externalAccountRequired: profile.mode === "eab",
        profiles: { [profile.name]: ctx.descriptions[profile.name] ?? profile.name },
      },
    },
  };
}
