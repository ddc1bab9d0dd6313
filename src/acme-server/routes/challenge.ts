import type { AccountRecord, AuthorizationRecord, ChallengeRecord } from "../../storage/acme-store.js";
import type { AcmeResponse, ProfileContext, SignedAcmeRequest } from "../context.js";
import { jwkThumbprint } from "../jwk.js";
import { problem, problemDocument, toProblem } from "../problems.js";
import { challengeObject } from "../resources.js";
import { POLL_SECONDS } from "./order.js";

/**
 * RFC 8555 §7.5.1 Responding to Challenges. POST `{}` starts the validation (once: the
 * pending → processing transition is conditional) and answers at once with the challenge in
 * `processing`; the validation runs in the background and moves the challenge and its authorization
 * to valid or invalid. POST-as-GET returns the challenge.
 */
export async function challengeResource(req: SignedAcmeRequest): Promise<AcmeResponse> {
  const { ctx, urls, jws, signal } = req;
  const found = await ctx.store.getChallenge(ctx.profile.name, req.params.id!, signal);
  if (!found) throw problem("malformed", "no such challenge", { status: 404 });
  const { authorization } = found;
  let { challenge } = found;
  const account = jws.account!;
  if (authorization.accountId !== account.id)
    throw problem("unauthorized", "this challenge belongs to another account");

  if (jws.payload !== undefined && authorization.status === "pending" && challenge.status === "pending") {
    const now = ctx.clock.now();
    if (await ctx.store.startChallenge(challenge.id, now, signal)) {
      void ctx.work.run("validate challenge", ctx.validationTimeoutMs, (s) =>
        validateChallenge(ctx, account, authorization, challenge, s),
      );
    }
    challenge = { ...challenge, status: "processing", processingAt: now };
  }
  return {
    status: 200,
    body: challengeObject(challenge, urls),
    links: [`<${urls.authorization(authorization.id)}>;rel="up"`],
    ...(challenge.status === "processing" || challenge.status === "pending"
      ? { retryAfter: POLL_SECONDS }
      : {}),
  };
}

async function validateChallenge(
  ctx: ProfileContext,
  account: AccountRecord,
  authorization: AuthorizationRecord,
  challenge: ChallengeRecord,
  signal: AbortSignal,
): Promise<void> {
  const keyAuthorization = `${challenge.token}.${await jwkThumbprint(account.jwk)}`;
  const log = ctx.logger.child({
    profile: ctx.profile.name,
    identifier: authorization.identifier,
    type: challenge.type,
  });
  try {
    await ctx.validator.validate(
      { type: challenge.type, domain: authorization.identifier, token: challenge.token, keyAuthorization },
      ctx.profile,
      signal,
    );
    await ctx.store.finishChallenge(challenge.id, authorization.id, { status: "valid", at: ctx.clock.now() });
    log.info("acme challenge valid");
  } catch (e) {
    const p = signal.aborted ? problem("connection", "the validation timed out") : toProblem(e);
    log.info({ problem: p.type, internal: p.internal }, "acme challenge invalid");
    await ctx.store.finishChallenge(challenge.id, authorization.id, {
      status: "invalid",
      at: ctx.clock.now(),
      error: problemDocument(p),
    });
  }
}
