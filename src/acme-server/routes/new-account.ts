import { randomBytes } from "node:crypto";
import type { AcmeResponse, SignedAcmeRequest } from "../context.js";
import { parseContacts } from "../contacts.js";
import type { AccountRecord } from "../../storage/acme-store.js";
import { verifyExternalAccountBinding, type EabKey } from "../eab.js";
import { jwkThumbprint } from "../jwk.js";
import { problem } from "../problems.js";
import { accountObject } from "../resources.js";

/**
 * RFC 8555 §7.3 Account Management: newAccount. Signed with `jwk`. An existing key answers 200 with
 * its account; `onlyReturnExisting` never creates one; an `eab` profile requires an External Account
 * Binding (§7.3.4), whose grants and owner the new account inherits.
 *
 * An EAB key binds one account. The one exception is the same client binding it again with another
 * account key shortly after the first bind (`eabRebindWindow`, same contacts, first account still
 * valid): Caddy registers from each site at once with a fresh key per site, and refusing the second
 * makes that site wait 60 s. The second account gets the same grants and owner; it is audited with the
 * account it follows. After the window the key is spent, as before.
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

  await refuseCertificateKey(req, thumbprint);
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
  const newAccountRecord = {
    id,
    profile: ctx.profile.name,
    status: "valid" as const,
    jwk: jws.jwk,
    thumbprint,
    contact,
    eabKid: eab?.kid ?? null,
    grants: eab?.grants ?? [],
    ownerId: eab?.ownerId ?? null,
  };
  // noted before the row is written, so whoever loses the race for the key finds the winner
  if (eab) await ctx.eab.noteBinding(eab.kid, { accountId: id, profile: ctx.profile.name }, signal);
  let created = await ctx.store.createAccount(newAccountRecord, signal);
  let follows: AccountRecord | undefined;
  if (!created.ok && created.conflict === "eab") {
    follows = await sameClientRebind(req, eab!, contact);
    // its row holds no kid: noted first (a crash leaves at most a note for no account), so revoking
    // the key stops this account too
    await ctx.eab.noteAccount(id, eab!.kid, signal);
    created = await ctx.store.createAccount({ ...newAccountRecord, eabKid: null }, signal);
  }
  if (created.ok && eab && !follows) {
    await ctx.eab.replaceBinding(eab.kid, { accountId: id, profile: ctx.profile.name }, signal);
  }
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
    data: {
      profile: ctx.profile.name,
      eabKid: eab?.kid ?? null,
      owner: eab?.ownerId ?? null,
      ...(follows ? { rebindOf: follows.id } : {}),
    },
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

/**
 * The account that first bound `eab`, when this request may bind it again: within the profile's
 * `eabRebindWindow` of that account's creation, with the same contacts, that account still valid.
 * Anything else is the usual refusal.
 */
async function sameClientRebind(
  req: SignedAcmeRequest,
  eab: EabKey,
  contact: string[],
): Promise<AccountRecord> {
  const { ctx, signal } = req;
  const refuse = (internal: string) =>
    problem("unauthorized", "this external account binding key is already bound to another account", {
      internal,
    });
  const windowMs = ctx.profile.eabRebindWindow;
  if (windowMs === 0) throw refuse("rebinding is off (eabRebindWindow 0)");
  const binding = await ctx.eab.noteBinding(eab.kid, { accountId: "", profile: ctx.profile.name }, signal);
  const first =
    binding.profile === ctx.profile.name && binding.accountId !== ""
      ? await ctx.store.getAccount(ctx.profile.name, binding.accountId, signal)
      : undefined;
  if (!first || first.eabKid !== eab.kid || first.status !== "valid")
    throw refuse(`no valid first account for ${eab.kid} in this profile`);
  const age = ctx.clock.now().getTime() - first.createdAt.getTime();
  if (age > windowMs) throw refuse(`first bound ${Math.round(age / 1000)} s ago`);
  const same = (a: string[], b: string[]) =>
    a.length === b.length && [...a].sort().every((v, i) => v === [...b].sort()[i]);
  if (!same(first.contact, contact)) throw refuse("contacts differ from the first account's");
  return first;
}

/**
 * The mirror of RFC 8555 §11.1: a key certfleet asked a CA to certify is no account key. Whoever holds
 * the certificate's key (every machine it was handed to) could otherwise act as the account.
 */
export async function refuseCertificateKey(req: SignedAcmeRequest, thumbprint: string): Promise<void> {
  if (await req.ctx.issuedKeys.has(thumbprint, req.signal)) {
    throw problem("badPublicKey", "this key belongs to a certificate; use a separate account key");
  }
}
