import type { TLSSocket } from "node:tls";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { AuthRequest, Principal } from "../auth/authenticator.js";

/** The server's view of authentication: one function in, a Principal out (or a CertfleetError thrown). */
export type Authenticate = (request: AuthRequest, signal: AbortSignal) => Promise<Principal>;
export type AuthorizeNames = (principal: Principal, names: string[]) => void;

declare module "fastify" {
  interface FastifyRequest {
    principal?: Principal;
    /** Set once the request is handed to the auth chain: its response waits for the audit sink (app.ts). */
    awaitsAudit?: boolean;
  }
}

/** The request as the auth chain sees it. Marks it: the auth chain may append audit records unawaited. */
export function authRequestOf(request: FastifyRequest): AuthRequest {
  request.awaitsAudit = true;
  const socket = request.raw.socket as TLSSocket;
  const peer =
    typeof socket.getPeerCertificate === "function" && socket.authorized
      ? socket.getPeerCertificate(true)
      : undefined;
  // The issuer links of a detailed peer certificate: the path OpenSSL verified (it ends self-linked).
  const chain: Buffer[] = [];
  for (let c = peer?.issuerCertificate; c && c.raw && chain.length < 8; c = c.issuerCertificate) {
    if (c.raw.equals(chain.at(-1) ?? peer!.raw)) break;
    chain.push(c.raw);
  }
  return {
    headers: request.headers,
    remoteAddress: request.ip,
    peerCertificate: peer && peer.raw ? peer.raw : undefined,
    peerChain: chain,
  };
}

/**
 * An AbortSignal that fires when the client goes away before we answered, so work done only for this
 * caller stops waiting. (The request stream's own "close" fires once its body is read, so the response
 * is what tells.)
 */
export function requestSignal(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once("close", () => {
    if (!reply.raw.writableFinished) controller.abort(new Error("client disconnected"));
  });
  return controller.signal;
}
