import type { FastifyRequest } from "fastify";
import type { AuthRequest, Principal } from "../auth/authenticator.js";

/** The server's view of authentication: one function in, a Principal out (or a CertfleetError thrown). */
export type Authenticate = (request: AuthRequest, signal: AbortSignal) => Promise<Principal>;
export type AuthorizeNames = (principal: Principal, names: string[]) => void;

declare module "fastify" {
  interface FastifyRequest {
    principal?: Principal;
  }
}

export function authRequestOf(request: FastifyRequest): AuthRequest {
  const socket = request.raw.socket as import("node:tls").TLSSocket;
  const peer = typeof socket.getPeerCertificate === "function" && socket.authorized ? socket.getPeerCertificate(false) : undefined;
  return {
    headers: request.headers,
    remoteAddress: request.ip,
    peerCertificate: peer && peer.raw ? peer.raw : undefined,
  };
}

/** An AbortSignal that fires when the client goes away, so work done only for this caller stops. */
export function requestSignal(request: FastifyRequest): AbortSignal {
  const controller = new AbortController();
  request.raw.once("close", () => {
    if (!request.raw.complete || request.raw.destroyed) controller.abort(new Error("client disconnected"));
  });
  request.raw.socket.once("close", () => controller.abort(new Error("client disconnected")));
  return controller.signal;
}
