import { randomUUID } from "node:crypto";
import { STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import type { Logger } from "../core/logger.js";

/**
 * Errors at the edge: what Node's HTTP parser and Fastify's router refuse before any route runs (an
 * unparsable request line or header, CR/LF/NUL in a header, a duplicate Content-Length, an unknown
 * method, headers too large, a request that did not arrive in time, a URL that is not valid
 * percent-encoding or whose path parameter is too long). Each gets certfleet's error shape — or, under
 * a prefix with its own dialect (the ACME server), that dialect's — never Node's or Fastify's own body.
 */
export interface EdgeError {
  status: number;
  /** Stable, e.g. `request_timeout`. */
  code: string;
  /** Safe to show: never echoes the request. */
  message: string;
  requestId: string;
}

/** Node's `clientError`: parse errors carry the bytes being parsed. */
export type ClientError = Error & { code?: string; rawPacket?: unknown };

export interface EdgeErrorDialect {
  /** The dialect answers for this path and everything below it, e.g. "/acme". */
  prefix: string;
  render(error: EdgeError): { headers: Record<string, string>; body: string };
}

/** The API's own shape: `{ "error": { "code", "message" }, "requestId" }`. */
export const apiDialect: EdgeErrorDialect = {
  prefix: "/",
  render: (e) => ({
    headers: { "content-type": "application/json; charset=utf-8" },
    body: JSON.stringify({ error: { code: e.code, message: e.message }, requestId: e.requestId }),
  }),
};

/** A client error from Node's HTTP server (`clientError` event) as an edge error, or undefined when the client is gone. */
export function classifyClientError(err: ClientError): Omit<EdgeError, "requestId"> | undefined {
  switch (err.code) {
    case "ECONNRESET":
    case "EPIPE":
      return undefined;
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return { status: 408, code: "request_timeout", message: "the request did not arrive in time" };
    case "HPE_HEADER_OVERFLOW":
      return { status: 431, code: "headers_too_large", message: "the request headers are too large" };
    case "HPE_INVALID_METHOD":
      return { status: 501, code: "method_not_implemented", message: "unknown request method" };
    case "HPE_INVALID_URL":
      return { status: 400, code: "url_invalid", message: "the request URL cannot be parsed" };
    default:
      return { status: 400, code: "request_invalid", message: "the request cannot be parsed as HTTP/1.1" };
  }
}

export interface EdgeErrorHandlers {
  /** Fastify's `clientErrorHandler`. */
  clientError(err: ClientError, socket: Socket): void;
  /** Fastify's `frameworkErrors`. */
  frameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void;
  /** An onRequest hook remembering which path a connection's current request is for. */
  onRequest(request: FastifyRequest, reply: FastifyReply): Promise<void>;
}

const REQUEST_LINE = /^[A-Za-z]+ (\S+) HTTP\//;

export function edgeErrorHandlers(dialects: EdgeErrorDialect[], logger: Logger): EdgeErrorHandlers {
  // the path of the request in flight on each connection, for errors raised on the socket (timeouts)
  const inFlight = new WeakMap<Socket, string>();
  const dialectFor = (path: string | undefined): EdgeErrorDialect =>
    (path !== undefined &&
      dialects.find(
        (d) => path === d.prefix || path.startsWith(`${d.prefix}/`) || path.startsWith(`${d.prefix}?`),
      )) ||
    apiDialect;

  return {
    clientError(err, socket) {
      const edge = classifyClientError(err);
      if (!edge || socket.destroyed) {
        logger.debug({ code: err.code }, "client closed the connection");
        socket.destroy();
        return;
      }
      const requestLine = Buffer.isBuffer(err.rawPacket)
        ? REQUEST_LINE.exec(err.rawPacket.toString("latin1", 0, 8192))
        : null;
      const path = inFlight.get(socket) ?? requestLine?.[1];
      const requestId = randomUUID();
      logger.info(
        { requestId, status: edge.status, code: edge.code, reason: err.code, path: path?.slice(0, 200) },
        "request refused at the edge",
      );
      if (socket.writable) {
        const { headers, body } = dialectFor(path).render({ ...edge, requestId });
        const head = Object.entries({
          ...headers,
          "content-length": String(Buffer.byteLength(body)),
          connection: "close",
        })
          .map(([k, v]) => `${k}: ${v}\r\n`)
          .join("");
        socket.end(`HTTP/1.1 ${edge.status} ${STATUS_CODES[edge.status] ?? ""}\r\n${head}\r\n${body}`);
      } else {
        socket.destroy();
      }
    },

    frameworkError(error, request, reply) {
      const edge =
        error.code === "FST_ERR_BAD_URL"
          ? { status: 400, code: "url_invalid", message: "the URL is not valid percent-encoding" }
          : error.code === "FST_ERR_MAX_PARAM_LENGTH"
            ? { status: 414, code: "url_too_long", message: "a path segment of the URL is too long" }
            : { status: 500, code: "internal", message: "internal error" };
      request.log.info({ code: edge.code, reason: error.code }, "request refused at the edge");
      const { headers, body } = dialectFor(request.url).render({ ...edge, requestId: String(request.id) });
      void reply.code(edge.status).headers(headers).send(body);
    },

    async onRequest(request, reply) {
      const socket = request.raw.socket as Socket | null;
      if (!socket) return;
      inFlight.set(socket, request.url);
      reply.raw.once("finish", () => inFlight.delete(socket));
    },
  };
}

/** Did the client go away before we answered (closed the connection mid-request)? */
export function clientWentAway(request: FastifyRequest, error?: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  const socket = request.raw.socket as Socket | null;
  return (
    code === "ECONNRESET" ||
    (request.raw.readableAborted && !request.raw.complete) ||
    !socket ||
    socket.destroyed
  );
}
