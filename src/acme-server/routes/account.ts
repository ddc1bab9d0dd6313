import type { AccountRecord } from "../../storage/acme-store.js";
import type { AcmeResponse, SignedAcmeRequest } from "../context.js";
import { parseContacts } from "../contacts.js";
import { problem } from "../problems.js";
import { accountObject } from "../resources.js";

/** The account named by the URL must be the one that signed (RFC 8555 §7.3.2). */
export function ownAccount(req: SignedAcmeRequest): AccountRecord {
  const account = req.jws.account!;
  if (account.id !== req.params.id)
    throw problem("unauthorized", "the request is not signed by this account's key");
  return account;
}

/**
 * RFC 8555 §7.3.2 Account Update (contact), §7.3.6 Account Deactivation, and POST-as-GET of the
 * account object. A deactivated account can do nothing afterwards (request-auth.ts refuses its kid).
 */
export async function accountResource(req: SignedAcmeRequest): Promise<AcmeResponse> {
  const { ctx, urls, jws, signal } = req;
  let account = ownAccount(req);
  const payload = jws.payload;
  if (payload !== undefined) {
    if (payload.status !== undefined && payload.status !== "deactivated") {
      throw problem("malformed", "an account can only be changed to status deactivated");
    }
    const contact = payload.contact === undefined ? undefined : parseContacts(payload.contact);
    const status = payload.status === "deactivated" ? ("deactivated" as const) : undefined;
    if (contact || status) {
      const updated = await ctx.store.updateAccount(account.id, { contact, status }, signal);
      if (!updated) throw problem("unauthorized", "the account is no longer valid");
      account = updated;
      if (status) {
        ctx.audit({
          type: "acme.account.deactivate",
          actor: `acme:${ctx.profile.name}:${account.id}`,
          outcome: "success",
          remoteAddress: req.remoteAddress ?? null,
        });
      }
    }
  }
  return { status: 200, location: urls.account(account.id), body: accountObject(account, urls) };
}

const ORDERS_PAGE = 100;

/** RFC 8555 §7.1.2.1 Orders List, paginated with Link rel="next". */
export async function accountOrders(req: SignedAcmeRequest): Promise<AcmeResponse> {
  const { ctx, urls, signal } = req;
  const account = ownAccount(req);
  if (req.jws.payload !== undefined) throw problem("malformed", "the orders list takes POST-as-GET");
  const after = req.query.cursor;
  const ids = await ctx.store.listOrderIds(account.id, ORDERS_PAGE + 1, after, signal);
  const page = ids.slice(0, ORDERS_PAGE);
  const links =
    ids.length > ORDERS_PAGE
      ? [
          `<${urls.accountOrders(account.id)}?cursor=${encodeURIComponent(page[page.length - 1]!)}>;rel="next"`,
        ]
      : [];
  return { status: 200, body: { orders: page.map((id) => urls.order(id)) }, links };
}
