import Fastify, { LogController, type FastifyInstance } from "fastify";
import type { Logger } from "../core/logger.js";
import type { ChallengeTokenStore } from "../storage/storage.js";

/**
 * The plain-HTTP listener that answers ACME HTTP-01 challenges from storage, so whichever replica the
 * CA reaches can answer. It serves nothing else.
 */
const TOKEN = /^[A-Za-z0-9_-]{16,128}$/;

export function buildHttp01App(deps: {
  storage: Pick<ChallengeTokenStore, "getChallengeToken">;
  logger: Logger;
}): FastifyInstance {
  const app = Fastify({
    loggerInstance: deps.logger,
    logController: new LogController({ disableRequestLogging: true }),
  }) as unknown as FastifyInstance;
  app.get<{ Params: { token: string } }>("/.well-known/acme-challenge/:token", async (request, reply) => {
    const { token } = request.params;
    const keyAuthorization = TOKEN.test(token) ? await deps.storage.getChallengeToken(token) : undefined;
    if (!keyAuthorization) return reply.status(404).type("text/plain").send("not found\n");
    request.log.info({ token: token.slice(0, 8) + "…", from: request.ip }, "answered http-01 challenge");
    return reply.type("text/plain").send(keyAuthorization);
  });
  app.setNotFoundHandler((_request, reply) => reply.status(404).type("text/plain").send("not found\n"));
  return app;
}
