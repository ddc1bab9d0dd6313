import type { Clock } from "../core/clock.js";
import { systemClock } from "../core/clock.js";
import type { ChallengeTokenStore } from "../storage/storage.js";
import type { ChallengeSolver } from "./challenge-solver.js";

export interface Http01SolverDeps {
  store: Pick<ChallengeTokenStore, "putChallengeToken" | "deleteChallengeToken">;
  /** How long a token stays answerable if cleanup never runs (crash); the store expires it then. */
  ttlMs: number;
  clock?: Clock;
}

/**
 * HTTP-01 through shared storage: `present` stores token → key authorization, and whichever replica
 * receives the CA's request for /.well-known/acme-challenge/<token> answers it from storage (the HTTP
 * listener reads getChallengeToken). The token is not removed when first fetched — CAs fetch several
 * times, from several vantage points — only by `cleanup`.
 */
export function createHttp01Solver(deps: Http01SolverDeps): ChallengeSolver {
  const clock = deps.clock ?? systemClock;
  return {
    type: "http-01",
    async present(challenge, signal) {
      const expiresAt = new Date(clock.now().getTime() + deps.ttlMs);
      await deps.store.putChallengeToken(challenge.token, challenge.keyAuthorization, expiresAt, signal);
    },
    async cleanup(challenge) {
      await deps.store.deleteChallengeToken(challenge.token);
    },
  };
}
