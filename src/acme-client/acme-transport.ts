import { createHash } from "node:crypto";
import { rootCertificates } from "node:tls";
import { Client, crypto as acmeCrypto } from "acme-client";
import { Agent, request } from "undici";
import { CertfleetError, throwIfAborted } from "../core/errors.js";
import { asProblem, problemShortType, unreachableError, type AcmeHttpResponse } from "./acme-errors.js";

/**
 * HTTP for one ACME CA. acme-client 5.4 signs JWS bodies, handles EAB and nonces, but sends through
 * one module-wide axios instance: one CA trust store for the whole process, no AbortSignal, and a
 * retry interceptor that sleeps up to 5 × Retry-After on 429/5xx. So each session replaces the
 * `request` method of its own acme-client HttpClient with one that goes through this transport:
 * an undici Agent per issuer (its own CA trust, so two issuers with different bundles never share
 * state), the caller's AbortSignal on every request, a per-request timeout, and no hidden retries —
 * Retry-After and rate limits are decided by the issuer.
 *
 * This touches acme-client internals (`client.http`, `HttpClient.request/signedRequest/
 * getResourceUrl`). The dependency is pinned to ~5.4 and `openSession` checks the shape at run time.
 */
export interface AcmeTransportOptions {
  directoryUrl: string;
  /** Extra trusted roots (PEM) for the CA's TLS, added to Node's root store. */
  caBundlePem?: string;
  /** Per-request timeout. Default 30 s. */
  requestTimeoutMs?: number;
}

export interface AcmeTransport {
  readonly directoryUrl: string;
  /** Unsigned GET (directory, renewal info). Never throws for an HTTP status; throws on network errors. */
  get(url: string, signal: AbortSignal): Promise<AcmeHttpResponse>;
  openSession(account: AcmeSessionAccount, signal: AbortSignal): AcmeSession;
  close(): Promise<void>;
}

export interface AcmeSessionAccount {
  keyPem: string;
  url?: string;
  eab?: { kid: string; hmacKey: string };
}

export interface AcmeSession {
  /**
   * Signed POST (`payload` null = POST-as-GET). Signed with the account URL as `kid`, or with the JWK
   * (and the EAB binding) when `asNewAccount`. Returns any response, problem documents included, once
   * `badNonce` has been retried.
   */
  post(url: string, payload: unknown, options?: { asNewAccount?: boolean }): Promise<AcmeHttpResponse>;
  resourceUrl(name: string): Promise<string>;
  directory(): Promise<Record<string, unknown>>;
  /** RFC 8555 §8.1 key authorization `token.thumbprint` (raw, for every challenge type). */
  keyAuthorization(token: string): string;
  /** The account URL sessions sign with (after registration). */
  setAccountUrl(url: string): void;
}

/** What we use of acme-client's HttpClient (src/http.js in 5.4). */
interface AcmeLibHttpClient {
  request(
    url: string,
    method: string,
    opts?: { data?: unknown; headers?: Record<string, string> },
  ): Promise<AcmeHttpResponse>;
  signedRequest(
    url: string,
    payload: unknown,
    opts: { kid?: string | null; nonce?: string | null; includeExternalAccountBinding?: boolean },
  ): Promise<AcmeHttpResponse>;
  getResourceUrl(resource: string): Promise<string>;
  getDirectory(): Promise<Record<string, unknown>>;
}

/** acme-client retries badNonce 5 times itself; each of our rounds gets 5 more. */
const BAD_NONCE_ROUNDS = 4;
const MAX_RESPONSE_BYTES = 1024 * 1024;
const USER_AGENT = "certfleet (acme-client/5.4)";

export function createAcmeTransport(options: AcmeTransportOptions): AcmeTransport {
  const ca = options.caBundlePem ? [...rootCertificates, options.caBundlePem] : undefined;
  const dispatcher = new Agent({
    connect: ca ? { ca } : {},
    maxResponseSize: MAX_RESPONSE_BYTES,
    headersTimeout: options.requestTimeoutMs ?? 30_000,
    bodyTimeout: options.requestTimeoutMs ?? 30_000,
  });
  const timeoutMs = options.requestTimeoutMs ?? 30_000;

  async function send(
    url: string,
    method: string,
    signal: AbortSignal,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<AcmeHttpResponse> {
    throwIfAborted(signal);
    const combined = AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]);
    try {
      const res = await request(url, {
        method: method.toUpperCase() as "GET" | "HEAD" | "POST",
        headers: {
          ...headers,
          "user-agent": USER_AGENT,
          ...(body === undefined ? {} : { "content-type": "application/jose+json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        dispatcher,
        signal: combined,
      });
      const text = await res.body.text();
      const flat: Record<string, string> = {};
      for (const [name, value] of Object.entries(res.headers)) {
        if (value !== undefined) flat[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : value;
      }
      return { status: res.statusCode, headers: flat, data: parseBody(text, flat["content-type"]) };
    } catch (e) {
      throwIfAborted(signal);
      throw unreachableError(url, e);
    }
  }

  return {
    directoryUrl: options.directoryUrl,
    get: (url, signal) => send(url, "GET", signal),
    openSession(account, signal) {
      const client = new Client({
        directoryUrl: options.directoryUrl,
        accountKey: account.keyPem,
        accountUrl: account.url,
        externalAccountBinding: account.eab,
      });
      const http = (client as unknown as { http?: Partial<AcmeLibHttpClient> }).http;
      if (
        typeof http?.request !== "function" ||
        typeof http.signedRequest !== "function" ||
        typeof http.getResourceUrl !== "function" ||
        typeof http.getDirectory !== "function"
      ) {
        throw new CertfleetError(
          "acme_client_incompatible",
          "the installed acme-client is not the expected 5.4 API",
          {
            status: 500,
          },
        );
      }
      const lib = http as AcmeLibHttpClient;
      lib.request = (url, method, opts = {}) => send(url, method, signal, opts.data, opts.headers);
      let accountUrl = account.url;
      // RFC 8555 §7.2: every response carries a fresh nonce; using it saves acme-client's HEAD newNonce.
      let nextNonce: string | null = null;
      // RFC 7638: acme-client's JWK has exactly the required members, sorted.
      const thumbprint = createHash("sha256")
        .update(JSON.stringify(acmeCrypto.getJwk(account.keyPem)))
        .digest("base64url");

      return {
        async post(url, payload, postOptions = {}) {
          for (let round = 0; ; round++) {
            throwIfAborted(signal);
            const kid = postOptions.asNewAccount ? null : (accountUrl ?? null);
            // acme-client adds the EAB binding to the payload it is given: pass a fresh copy each round.
            const body = payload === null || payload === undefined ? null : structuredClone(payload);
            const nonce = nextNonce;
            nextNonce = null;
            const res = await lib.signedRequest(url, body, {
              kid,
              nonce,
              includeExternalAccountBinding: postOptions.asNewAccount === true,
            });
            nextNonce = res.headers["replay-nonce"] ?? null;
            if (problemShortType(asProblem(res.data)) !== "badNonce" || round >= BAD_NONCE_ROUNDS) return res;
          }
        },
        resourceUrl: (name) => lib.getResourceUrl(name),
        directory: () => lib.getDirectory(),
        keyAuthorization: (token) => `${token}.${thumbprint}`,
        setAccountUrl(url) {
          accountUrl = url;
        },
      };
    },
    close: () => dispatcher.close(),
  };
}

function parseBody(text: string, contentType: string | undefined): unknown {
  if (contentType && /json/i.test(contentType)) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  }
  return text;
}
