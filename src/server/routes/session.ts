import type { FastifyInstance } from "fastify";
import type { SessionTokens } from "../../auth/session-token.js";
import { authRequestOf, requestSignal, type Authenticate } from "../auth-hook.js";

/**
 * POST /api/session: exchange any accepted proof (API key, cloud token, client secret, client
 * certificate) once for a short-lived certfleet session token, so cloud tokens are not verified again
 * on every call. The token carries the identity's grants as they were at issue time; a disabled identity
 * is refused when the token is used (see docs/auth/session-tokens.md).
 */
export function sessionRoutes(deps: { authenticate: Authenticate; sessionTokens: SessionTokens }) {
  return async (app: FastifyInstance) => {
    app.post("/api/session", async (request, reply) => {
      const signal = requestSignal(reply);
      const principal = await deps.authenticate(authRequestOf(request), signal);
      const { token, expiresAt } = await deps.sessionTokens.issue(principal, signal);
      return {
        token,
        tokenType: "Bearer",
        expiresAt: expiresAt.toISOString(),
        identity: principal.id,
        method: principal.method,
      };
    });
  };
}
