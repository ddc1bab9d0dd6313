import type { OrderRecord } from "../../storage/acme-store.js";
import type { AcmeResponse, SignedAcmeRequest } from "../context.js";
import { refreshOrder } from "../order-state.js";
import { problem } from "../problems.js";
import { orderObject } from "../resources.js";
import { requirePostAsGet } from "../request-auth.js";

/** Seconds a client should wait before polling an order or authorization that is still moving. */
export const POLL_SECONDS = 1;

/** Load an order of the signing account, with its state brought up to date. */
export async function ownOrder(req: SignedAcmeRequest, id: string): Promise<OrderRecord> {
  const { ctx, signal } = req;
  const order = await ctx.store.getOrder(ctx.profile.name, id, signal);
  if (!order) throw problem("malformed", "no such order", { status: 404 });
  if (order.accountId !== req.jws.account!.id)
    throw problem("unauthorized", "this order belongs to another account");
  return (await refreshOrder(ctx.store, order, ctx.clock.now(), signal)).order;
}

export function orderResponse(req: SignedAcmeRequest, order: OrderRecord): AcmeResponse {
  const moving = order.status === "processing" || order.status === "pending";
  return {
    status: 200,
    location: req.urls.order(order.id),
    body: orderObject(order, req.urls),
    ...(moving ? { retryAfter: POLL_SECONDS } : {}),
  };
}

/** RFC 8555 §7.4: POST-as-GET of an order. */
export async function orderResource(req: SignedAcmeRequest): Promise<AcmeResponse> {
  requirePostAsGet(req.jws);
  return orderResponse(req, await ownOrder(req, req.params.id!));
}
