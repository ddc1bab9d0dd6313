import type { AuthorizationRecord } from "../../storage/acme-store.js";
import type { AcmeResponse, SignedAcmeRequest } from "../context.js";
import { refreshAuthorizations } from "../order-state.js";
import { problem } from "../problems.js";
import { authorizationObject } from "../resources.js";
import { POLL_SECONDS } from "./order.js";

export async function ownAuthorization(req: SignedAcmeRequest, id: string): Promise<AuthorizationRecord> {
  const { ctx, signal } = req;
  const authz = await ctx.store.getAuthorization(ctx.profile.name, id, signal);
  if (!authz) throw problem("malformed", "no such authorization", { status: 404 });
  if (authz.accountId !== req.jws.account!.id)
    throw problem("unauthorized", "this authorization belongs to another account");
  const [fresh] = await refreshAuthorizations(ctx.store, [authz], ctx.clock.now(), signal);
  return fresh!;
}

/**
 * RFC 8555 §7.5 Identifier Authorization (POST-as-GET) and §7.5.2 Deactivating an Authorization.
 * A pending authorization carries Retry-After so clients poll briskly while a validation runs.
 */
export async function authorizationResource(req: SignedAcmeRequest): Promise<AcmeResponse> {
  const { ctx, urls, jws, signal } = req;
  let authz = await ownAuthorization(req, req.params.id!);
  const payload = jws.payload;
  if (payload !== undefined) {
    if (payload.status !== "deactivated")
      throw problem("malformed", "an authorization can only be deactivated");
    if (!(await ctx.store.transitionAuthorization(authz.id, ["pending", "valid"], "deactivated", signal))) {
      throw problem("malformed", `the authorization is ${authz.status}`);
    }
    authz = { ...authz, status: "deactivated" };
  }
  return {
    status: 200,
    body: authorizationObject(authz, urls),
    ...(authz.status === "pending" ? { retryAfter: POLL_SECONDS } : {}),
  };
}
