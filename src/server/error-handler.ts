import type { FastifyError, FastifyInstance, FastifyReply } from "fastify";
import { CertfleetError, toCertfleetError } from "../core/errors.js";
import { clientWentAway } from "./edge-errors.js";

/**
 * One error shape for every API response: `{ "error": { "code", "message", "details"? }, "requestId" }`.
 * Only errors marked `expose` show their message; anything else is "internal error" to the caller and the
 * full story goes to the log with the request id.
 */
export function sendError(reply: FastifyReply, error: CertfleetError): FastifyReply {
  if (error.retryAfter !== undefined) void reply.header("Retry-After", String(error.retryAfter));
  if (error.status === 401) void reply.header("WWW-Authenticate", 'APIKey, Bearer realm="certfleet"');
  return reply.status(error.status).send({
    error: {
      code: error.code,
      message: error.expose ? error.message : "internal error",
      ...(error.expose && error.details ? { details: error.details } : {}),
    },
    requestId: reply.request.id,
  });
}

export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((raw: FastifyError | Error, request, reply) => {
    let error: CertfleetError;
    const fe = raw as FastifyError;
    if (raw instanceof CertfleetError) error = raw;
    else if (fe.validation) error = new CertfleetError("request_invalid", fe.message, { status: 400 });
    else if (fe.code === "FST_ERR_CTP_BODY_TOO_LARGE")
      error = new CertfleetError("request_too_large", "request body too large", { status: 413 });
    else if (fe.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE")
      error = new CertfleetError("unsupported_media_type", "send application/json", { status: 415 });
    else if (
      fe.code === "FST_ERR_CTP_EMPTY_JSON_BODY" ||
      (fe.statusCode === 400 && raw instanceof SyntaxError)
    )
      error = new CertfleetError("request_invalid", "request body is not valid JSON", { status: 400 });
    else if (typeof fe.statusCode === "number" && fe.statusCode >= 400 && fe.statusCode < 500)
      error = new CertfleetError("request_invalid", fe.message, { status: fe.statusCode });
    else error = toCertfleetError(raw);

    if (clientWentAway(request, raw)) {
      // not a failure of ours: the client closed the connection before the answer
      request.log.info(
        { method: request.method, url: request.url, reason: fe.code ?? raw.message },
        "request aborted by the client",
      );
      return sendError(reply, error); // to a closed connection: a no-op that completes the reply
    }
    if (error.status >= 500)
      request.log.error({ err: raw, code: error.code, internal: error.internal }, "request failed");
    else request.log.info({ code: error.code, internal: error.internal }, "request refused");
    return sendError(reply, error);
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(
      reply,
      new CertfleetError("not_found", `no route for ${request.method} ${request.url.split("?")[0]}`, {
        status: 404,
      }),
    ),
  );
}
