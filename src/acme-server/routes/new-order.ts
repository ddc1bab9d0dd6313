import { randomBytes } from "node:crypto";
import { isCertfleetError } from "../../core/errors.js";
import {
  MAX_NAMES_PER_CERTIFICATE,
  baseName,
  isWildcard,
  normalizeName,
  patternMatches,
} from "../../core/names.js";
import type { ChallengeRecord, ChallengeType, NewAuthorization } from "../../storage/acme-store.js";
import type { AcmeResponse, SignedAcmeRequest } from "../context.js";
import { problem, type Subproblem } from "../problems.js";
import { checkOrderRate, checkPendingAuthorizations, withAccountLock } from "../rate-limits.js";
import { orderObject } from "../resources.js";
import { requireEnabledOwner } from "./new-account.js";

const DAY_MS = 86_400_000;

/** An account whose EAB key an admin revoked may not order any more (its existing certificates stay). */
async function requireUnrevokedKey(req: SignedAcmeRequest): Promise<void> {
  const { ctx, signal } = req;
  const kid = await ctx.eab.keyOfAccount(req.jws.account!, signal);
  const key = kid === undefined ? undefined : await ctx.eab.get(kid, signal);
  if (key?.revokedAt) {
    throw problem("unauthorized", "the external account binding of this account was revoked", {
      internal: `EAB kid ${key.kid} revoked at ${key.revokedAt}`,
    });
  }
}
const ORDER_LIFETIME_MS = 7 * DAY_MS;
const PENDING_AUTHZ_LIFETIME_MS = DAY_MS;
const VALID_AUTHZ_LIFETIME_MS = 30 * DAY_MS;

/**
 * RFC 8555 §7.4 Applying for Certificate Issuance: newOrder. DNS identifiers only, no
 * notBefore/notAfter. In an `eab` profile every name must be covered by the account's grants and its
 * authorizations are valid at once (the order is `ready`); any other name is `rejectedIdentifier`. In a
 * `challenge` profile each name gets a pending authorization with HTTP-01, DNS-01 and TLS-ALPN-01
 * (wildcards DNS-01 only). `replaces` (RFC 9773 §5) names a certificate of this account that no
 * other order has replaced yet.
 */
export async function newOrder(req: SignedAcmeRequest): Promise<AcmeResponse> {
  const { ctx, urls, jws, signal } = req;
  const account = jws.account!;
  const payload = jws.payload;
  if (payload === undefined) throw problem("malformed", "newOrder needs a payload");
  if (payload.notBefore !== undefined || payload.notAfter !== undefined) {
    throw problem("malformed", "notBefore and notAfter are not supported");
  }
  if (payload.profile !== undefined && payload.profile !== ctx.profile.name) {
    throw problem("invalidProfile", `this directory serves the profile "${ctx.profile.name}" only`);
  }
  const names = parseIdentifiers(payload.identifiers);
  const now = ctx.clock.now();
  const eabMode = ctx.profile.mode === "eab";

  if (eabMode) {
    if (account.ownerId) await requireEnabledOwner(req, account.ownerId);
    await requireUnrevokedKey(req);
    const refused = names.filter((n) => !account.grants.some((g) => patternMatches(g, n)));
    if (refused.length > 0) {
      throw problem(
        "rejectedIdentifier",
        `this account may not obtain certificates for: ${refused.join(", ")}`,
        {
          subproblems: refused.map((value) => ({
            type: "rejectedIdentifier",
            detail: "not granted to this account",
            identifier: { type: "dns", value },
          })),
        },
      );
    }
  }
  // Check `replaces` and the limits, and create the order, under the account's lock: concurrent
  // requests (on any replica) cannot pass a limit together or replace one certificate twice.
  const orderId = await withAccountLock(ctx.locks, account.id, signal, async () => {
    const replaces = await checkReplaces(req, payload.replaces);

    const authorizations: NewAuthorization[] = names.map((name) => {
      const id = newId();
      const wildcard = isWildcard(name);
      return {
        id,
        accountId: account.id,
        profile: ctx.profile.name,
        identifier: baseName(name),
        wildcard,
        status: eabMode ? "valid" : "pending",
        expiresAt: new Date(now.getTime() + (eabMode ? VALID_AUTHZ_LIFETIME_MS : PENDING_AUTHZ_LIFETIME_MS)),
        challenges: eabMode ? [] : challengesFor(id, wildcard),
      };
    });
    const order = {
      id: newId(),
      accountId: account.id,
      profile: ctx.profile.name,
      status: eabMode ? ("ready" as const) : ("pending" as const),
      identifiers: names,
      authorizationIds: authorizations.map((a) => a.id),
      expiresAt: new Date(now.getTime() + ORDER_LIFETIME_MS),
      replaces,
    };
    await checkOrderRate(ctx.store, ctx.profile, account.id, now, signal);
    if (!eabMode)
      await checkPendingAuthorizations(ctx.store, ctx.profile, account.id, names.length, now, signal);
    await ctx.store.createOrder(order, authorizations, signal);
    return order.id;
  });
  const created = await ctx.store.getOrder(ctx.profile.name, orderId, signal);
  if (!created) throw problem("serverInternal", "the new order vanished");
  return { status: 201, location: urls.order(orderId), body: orderObject(created, urls) };
}

function parseIdentifiers(input: unknown): string[] {
  if (!Array.isArray(input) || input.length === 0)
    throw problem("malformed", "identifiers must be a non-empty array");
  if (input.length > MAX_NAMES_PER_CERTIFICATE) {
    throw problem("rejectedIdentifier", `at most ${MAX_NAMES_PER_CERTIFICATE} identifiers per order`);
  }
  const names: string[] = [];
  const bad: Subproblem[] = [];
  for (const item of input as unknown[]) {
    const { type, value } = (item ?? {}) as { type?: unknown; value?: unknown };
    if (typeof value !== "string") throw problem("malformed", "every identifier needs a string value");
    if (type !== "dns") {
      throw problem("unsupportedIdentifier", "only dns identifiers are supported", {
        internal: `type ${String(type)}`,
      });
    }
    try {
      const name = normalizeName(value);
      if (!names.includes(name)) names.push(name);
    } catch (e) {
      bad.push({
        type: "rejectedIdentifier",
        detail: isCertfleetError(e) ? e.message : "invalid name",
        identifier: { type: "dns", value },
      });
    }
  }
  if (bad.length > 0)
    throw problem("rejectedIdentifier", "some identifiers are not acceptable", { subproblems: bad });
  return names;
}

async function checkReplaces(req: SignedAcmeRequest, replaces: unknown): Promise<string | null> {
  if (replaces === undefined) return null;
  if (typeof replaces !== "string" || !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(replaces)) {
    throw problem("malformed", "replaces must be an RFC 9773 certificate identifier");
  }
  const { ctx, signal } = req;
  const old = await ctx.store.findCertificateByAriId(ctx.profile.name, replaces, signal);
  if (!old) throw problem("malformed", "replaces names no certificate issued here");
  if (old.accountId !== req.jws.account!.id)
    throw problem("unauthorized", "replaces names another account's certificate");
  if (old.replacedBy) {
    const by = await ctx.store.getOrder(ctx.profile.name, old.replacedBy, signal);
    if (by && by.status !== "invalid")
      throw problem("alreadyReplaced", "this certificate has already been replaced");
  }
  return replaces;
}

function challengesFor(authorizationId: string, wildcard: boolean): ChallengeRecord[] {
  const types: ChallengeType[] = wildcard ? ["dns-01"] : ["http-01", "dns-01", "tls-alpn-01"];
  return types.map((type) => ({
    id: newId(),
    authorizationId,
    type,
    // 256 bits: RFC 8555 §8.1 asks for at least 128.
    token: randomBytes(32).toString("base64url"),
    status: "pending",
    validatedAt: null,
    error: null,
    processingAt: null,
  }));
}

function newId(): string {
  return randomBytes(16).toString("base64url");
}
