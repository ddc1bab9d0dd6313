import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Logger } from "../core/logger.js";
import { clientWentAway } from "../server/edge-errors.js";
import type { AcmeRequest, AcmeResponse, ProfileContext, SignedAcmeRequest } from "./context.js";
import { isAcmeProblem, problem, problemDocument, toProblem, type AcmeProblem } from "./problems.js";
import { authenticateRequest, type KeyRule } from "./request-auth.js";
import { accountOrders, accountResource } from "./routes/account.js";
import { authorizationResource } from "./routes/authorization.js";
import { certificateResource } from "./routes/certificate.js";
import { challengeResource } from "./routes/challenge.js";
import { directory } from "./routes/directory.js";
import { finalize } from "./routes/finalize.js";
import { keyChange } from "./routes/key-change.js";
import { newAccount } from "./routes/new-account.js";
import { newNonce } from "./routes/new-nonce.js";
import { newOrder } from "./routes/new-order.js";
import { orderResource } from "./routes/order.js";
import { renewalExplanation, renewalInfo } from "./routes/renewal-info.js";
import { revokeCert } from "./routes/revoke-cert.js";
import type { NonceService } from "./nonces.js";
import { ACME_PREFIX, acmeUrls } from "./urls.js";

/**
 * The ACME routes as one Fastify plugin, in its own encapsulated scope under /acme: its own body
 * parser (every body is read as text; request-auth.ts checks the content type), its own error and
 * not-found handlers (RFC 7807 problem documents, never the REST API's error shape), and an onSend
 * hook that gives every response — errors included — a fresh Replay-Nonce, Link rel="index" and
 * Cache-Control: no-store.
 */
export interface AcmePluginDeps {
  contexts: ProfileContext[];
  /** The profile /acme/directory serves. */
  defaultProfile: string;
  /** Configured external base URL; otherwise the request's scheme and Host. */
  externalUrl: string | undefined;
  nonces: NonceService;
  logger: Logger;
}

/** Bodies larger than this are refused before parsing (a CSR for 100 names is far smaller). */
const MAX_BODY_BYTES = 256 * 1024;

export function acmeRoutes(deps: AcmePluginDeps): (scope: FastifyInstance) => Promise<void> {
  const byName = new Map(deps.contexts.map((c) => [c.profile.name, c]));
  const baseOf = (request: FastifyRequest) => deps.externalUrl ?? `${request.protocol}://${request.host}`;
  const profileOf = (request: FastifyRequest): string => {
    const name = request.url.slice(ACME_PREFIX.length + 1).split(/[/?]/)[0] ?? "";
    return byName.has(name) ? name : deps.defaultProfile;
  };

  return async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(
      "*",
      { parseAs: "string", bodyLimit: MAX_BODY_BYTES },
      (_request, body, done) => done(null, body),
    );

    scope.addHook("onSend", async (request, reply, payload) => {
      const urls = acmeUrls(baseOf(request), profileOf(request));
      const existing = reply.getHeader("link");
      const links =
        existing === undefined ? [] : Array.isArray(existing) ? existing.map(String) : [String(existing)];
      void reply.header("Link", [...links, `<${urls.directory}>;rel="index"`]);
      void reply.header("Replay-Nonce", deps.nonces.issue());
      void reply.header("Cache-Control", "no-store");
      return payload;
    });

    scope.setErrorHandler((error: FastifyError | Error, request, reply) => {
      const p = fastifyProblem(error);
      if (clientWentAway(request, error)) {
        deps.logger.info({ url: request.url.slice(0, 200) }, "acme request aborted by the client");
        return sendProblem(reply, p); // to a closed connection: a no-op that completes the reply
      }
      logProblem(request, p);
      return sendProblem(reply, p);
    });
    scope.setNotFoundHandler((_request, reply) =>
      sendProblem(reply, problem("malformed", "no such ACME resource", { status: 404 })),
    );

    for (const ctx of deps.contexts) registerProfile(scope, ctx);
    scope.get("/directory", async (request, reply) =>
      send(reply, directory(acmeRequest(byName.get(deps.defaultProfile)!, request, reply))),
    );
  };

  function acmeRequest(ctx: ProfileContext, request: FastifyRequest, reply: FastifyReply): AcmeRequest {
    const controller = new AbortController();
    reply.raw.once("close", () => {
      if (!reply.raw.writableFinished) controller.abort(new Error("client went away"));
    });
    return {
      ctx,
      urls: acmeUrls(baseOf(request), ctx.profile.name),
      params: (request.params ?? {}) as Record<string, string>,
      query: (request.query ?? {}) as Record<string, string | undefined>,
      remoteAddress: request.ip,
      signal: controller.signal,
    };
  }

  function registerProfile(scope: FastifyInstance, ctx: ProfileContext): void {
    const p = `/${ctx.profile.name}`;
    const unsigned =
      (handler: (req: AcmeRequest) => AcmeResponse | Promise<AcmeResponse>) =>
      async (request: FastifyRequest, reply: FastifyReply) =>
        send(reply, await handler(acmeRequest(ctx, request, reply)));
    const signed = (
      path: string,
      rule: KeyRule,
      handler: (req: SignedAcmeRequest) => Promise<AcmeResponse>,
    ) => {
      scope.post(`${p}${path}`, async (request, reply) => {
        const req = acmeRequest(ctx, request, reply);
        const jws = await authenticateRequest(
          { contentType: request.headers["content-type"], body: request.body },
          {
            requestUrl: `${req.urls.base}${request.url}`,
            rule,
            urls: req.urls,
            profile: ctx.profile.name,
            store: ctx.store,
            nonces: ctx.nonces,
            signal: req.signal,
          },
        );
        return send(reply, await handler({ ...req, jws }));
      });
      // RFC 8555 §6.3: resources other than the directory and newNonce refuse GET.
      scope.get(`${p}${path}`, async () => {
        throw problem("malformed", "use POST-as-GET", { status: 405 });
      });
    };

    scope.get(`${p}/directory`, unsigned(directory));
    scope.head(
      `${p}/new-nonce`,
      unsigned(() => newNonce("HEAD")),
    );
    scope.get(
      `${p}/new-nonce`,
      { exposeHeadRoute: false },
      unsigned(() => newNonce("GET")),
    );
    scope.get(`${p}/renewal-info/:certId`, unsigned(renewalInfo));
    scope.get(`${p}/renewal-info-explained`, unsigned(renewalExplanation));

    signed("/new-account", "jwk", newAccount);
    signed("/account/:id", "kid", accountResource);
    signed("/account/:id/orders", "kid", accountOrders);
    signed("/key-change", "kid", keyChange);
    signed("/new-order", "kid", newOrder);
    signed("/order/:id", "kid", orderResource);
    signed("/order/:id/finalize", "kid", finalize);
    signed("/authz/:id", "kid", authorizationResource);
    signed("/chall/:id", "kid", challengeResource);
    signed("/cert/:id", "kid", certificateResource);
    signed("/cert/:id/:alternate", "kid", certificateResource);
    signed("/revoke-cert", "jwk-or-kid", revokeCert);
  }

  function logProblem(request: FastifyRequest, p: AcmeProblem): void {
    const entry = { url: request.url, problem: p.type, status: p.status, internal: p.internal };
    if (p.status >= 500)
      deps.logger.error(
        { ...entry, err: p.cause instanceof Error ? p.cause.message : undefined },
        "acme request failed",
      );
    else deps.logger.debug(entry, "acme request refused");
  }
}

function send(reply: FastifyReply, res: AcmeResponse): FastifyReply {
  void reply.status(res.status);
  if (res.location) void reply.header("Location", res.location);
  if (res.retryAfter !== undefined)
    void reply.header("Retry-After", String(Math.max(1, Math.ceil(res.retryAfter))));
  if (res.links && res.links.length > 0) void reply.header("Link", res.links);
  if (res.body === undefined) return reply.send();
  if (typeof res.body === "string")
    return reply.type(res.contentType ?? "text/plain; charset=utf-8").send(res.body);
  return reply.type("application/json").send(JSON.stringify(res.body));
}

function sendProblem(reply: FastifyReply, p: AcmeProblem): FastifyReply {
  void reply.status(p.status);
  if (p.retryAfter !== undefined) void reply.header("Retry-After", String(p.retryAfter));
  if (p.location) void reply.header("Location", p.location);
  return reply.type("application/problem+json").send(JSON.stringify(problemDocument(p)));
}

/** Fastify's own errors (body too large, unreadable body) as problems; ours pass through. */
function fastifyProblem(error: FastifyError | Error): AcmeProblem {
  if (isAcmeProblem(error)) return error;
  const fe = error as FastifyError;
  if (fe.code === "FST_ERR_CTP_BODY_TOO_LARGE")
    return problem("malformed", "request body too large", { status: 413 });
  if (typeof fe.statusCode === "number" && fe.statusCode >= 400 && fe.statusCode < 500) {
    return problem("malformed", "the request cannot be read", {
      status: fe.statusCode,
      internal: fe.message,
    });
  }
  return toProblem(error);
}
