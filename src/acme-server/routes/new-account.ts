import { randomBytes } from "node:crypto";
import type { AcmeResponse, SignedAcmeRequest } from "../context.js";
import { parseContacts } from "../contacts.js";
import { verifyExternalAccountBinding, type EabKey } from "../eab.js";
import { jwkThumbprint } from "../jwk.js";
import { problem } from "../problems.js";
import { accountObject } from "../resources.js";

/**
 * RFC 8555 §7.3 Account Management: newAccount. Signed with `jwk`. An existing key answers 200 with
 * its account; `onlyReturnExisting` never creates one; an `eab` profile requires an External Account
 * Binding (§7.3.4), whose grants and owner the new account inherits.
 */
export async function newAccount(req: SignedAcmeRequest): Promise<AcmeResponse> {
  const { ctx, urls, jws, signal } = req;
  const payload = jws.payload;
  if (payload === undefined) throw problem("malformed", "newAccount needs a payload");
  const thumbprint = await jwkThumbprint(jws.jwk);

  const existing = await ctx.store.findAccountByThumbprint(ctx.profile.name, thumbprint, signal);
  if (existing) {
    if (existing.status !== "valid") throw problem("unauthorized", `the account is ${existing.status}`);
    return { status: 200, location: urls.account(existing.id), body: accountObject(existing, urls) };
  }
  if (payload.onlyReturnExisting === true)
    throw problem("accountDoesNotExist", "no account exists with this key");

  const contact = parseContacts(payload.contact);
  let eab: EabKey | undefined;
  if (payload.externalAccountBinding !== undefined) {
    eab = await verifyExternalAccountBinding(payload.externalAccountBinding, {
      accountJwk: jws.jwk,
      newAccountUrl: urls.newAccount,
      keys: ctx.eab,
      signal,
    });
  } else if (ctx.profile.mode === "eab") {
    throw problem("externalAccountRequired", "this ACME profile requires an external account binding");
  }
  if (eab?.ownerId) await requireEnabledOwner(req, eab.ownerId);

  const id = randomBytes(16).toString("base64url");
  const created = await ctx.store.createAccount(
    {
      id,
      profile: ctx.profile.name,
      status: "valid",
      jwk: jws.jwk,
      thumbprint,
      contact,
      eabKid: eab?.kid ?? null,
      grants: eab?.grants ?? [],
      ownerId: eab?.ownerId ?? null,
    },
    signal,
  );
  if (!created.ok) {
    if (created.conflict === "eab") {
      throw problem("unauthorized", "this external account binding key is already bound to another account");
    }
    // Another request registered the same key a moment ago: answer as for an existing account.
    const raced = await ctx.store.findAccountByThumbprint(ctx.profile.name, thumbprint, signal);
    if (!raced)
      throw problem("serverInternal", "account creation raced", {
        internal: "unique violation without a row",
      });
    return { status: 200, location: urls.account(raced.id), body: accountObject(raced, urls) };
  }
  const account = await ctx.store.getAccount(ctx.profile.name, id, signal);
  if (!account) throw problem("serverInternal", "the new account vanished");
  ctx.audit({
    type: "acme.account.create",
    actor: `acme:${ctx.profile.name}:${id}`,
    outcome: "success",
    remoteAddress: req.remoteAddress ?? null,
    data: { profile: ctx.profile.name, eabKid: eab?.kid ?? null, owner: eab?.ownerId ?? null },
  });
  return { status: 201, location: urls.account(id), body: accountObject(account, urls) };
}

/** An EAB key made by an identity stops working when that identity is disabled or deleted. */
export async function requireEnabledOwner(req: SignedAcmeRequest, ownerId: string): Promise<void> {
  const owner = await req.ctx.identities.getIdentity(ownerId, req.signal);
  if (!owner || !owner.enabled) {
    throw problem("unauthorized", "the identity that owns this account's binding is disabled", {
      internal: `owner ${ownerId}`,
    });
  }
}
