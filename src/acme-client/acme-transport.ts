import { createSecureContext, rootCertificates } from "node:tls";
import { Agent, request } from "undici";
import { sleep } from "../core/clock.js";
import { throwIfAborted } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import {
  asProblem,
  problemShortType,
  protocolError,
  unreachableError,
  type AcmeHttpResponse,
} from "./acme-errors.js";
import { connectionRetryDelayMs, isConnectionError } from "./acme-retry.js";
import { createAccountSigner, type AccountSigner, type ExternalAccountBinding } from "./jws-signer.js";

/**
 * HTTP and JWS for one ACME CA (RFC 8555 §6). certfleet owns this small client rather than patching
 * acme-client: that library sends through one module-wide axios instance (one trust store per process,
 * no AbortSignal, hidden sleeps on 429/5xx), and reaching into it meant replacing its internal
 * `request` method. Here, on `jose` and undici:
 *
 * - one undici Agent per issuer with keep-alive: connections are reused across requests and issuances;
 *   idle sockets are closed after `keepAliveTimeoutMs` (default 4 s) or earlier when the server's
 *   `Keep-Alive: timeout=` says so, so we never send on a socket the CA is about to close;
 * - one TLS secure context per issuer, built once from Node's roots plus `caBundlePem` (building it
 *   per connection costs tens of milliseconds);
 * - the directory read once per session and cached for `get`-only use (`directoryTtlMs`), nonces kept in a small pool fed by every
 *   response's Replay-Nonce (a HEAD newNonce only when the pool is empty);
 * - `badNonce` answered by signing again with the nonce that came with the problem, up to
 *   BAD_NONCE_ATTEMPTS times;
 * - a connection error (reset, broken pipe, socket closed) on a request that is safe to repeat is
 *   retried up to `connectionRetries` times, each time signed again with a fresh nonce (acme-retry.ts);
 * - the caller's AbortSignal and a per-request timeout on every request; no other hidden retries:
 *   Retry-After and rate limits are decided by the issuer.
 *
 * JWS signing is in jws-signer.ts and shares its vocabulary with the ACME server.
 */
export interface AcmeTransportOptions {
  directoryUrl: string;
  /** Extra trusted roots (PEM) for the CA's TLS, added to Node's root store. */
  caBundlePem?: string;
  /** Per-request timeout. Default 30 s. */
  requestTimeoutMs?: number;
  /** Close idle keep-alive sockets after this long (a shorter server hint wins). Default 4 s. */
  keepAliveTimeoutMs?: number;
  /** Extra attempts for a repeatable request after a connection error. Default 2. */
  connectionRetries?: number;
  /** How long the cached directory is trusted. Default 1 h. */
  directoryTtlMs?: number;
  logger?: Logger;
}

export interface AcmeTransport {
  readonly directoryUrl: string;
  /**
   * Unsigned GET (directory, renewal info). Never throws for an HTTP status; throws `acme_unreachable`
   * on network errors (after the connection retries, a GET being safe to repeat).
   */
  get(url: string, signal: AbortSignal): Promise<AcmeHttpResponse>;
  /** The directory object (cached); `acme_protocol_error` when it is not JSON. */
  directory(signal: AbortSignal): Promise<Record<string, unknown>>;
  /** A signing session for one account key. */
  openSession(account: AcmeSessionAccount, signal: AbortSignal): Promise<AcmeSession>;
  /** Close the open connections; later requests open new ones. */
  close(): Promise<void>;
}

export interface AcmeSessionAccount {
  keyPem: string;
  url?: string;
  eab?: ExternalAccountBinding;
}

export interface PostOptions {
  /** Sign with the JWK (and the EAB binding when the session has one) instead of the account URL. */
  asNewAccount?: boolean;
  /**
   * Whether the request may be sent again, with a fresh nonce, after a connection error left its fate
   * unknown. Default: true for POST-as-GET (`payload` null), false otherwise; callers say why when they
   * pass true.
   */
  repeatable?: boolean;
}

export interface AcmeSession {
  /**
   * Signed POST (`payload` null = POST-as-GET). Returns any response, problem documents included, once
   * `badNonce` and (for repeatable requests) connection errors have been retried. The response's
   * `attempts` counts the sends after a connection error (1 = first send went through).
   */
  post(url: string, payload: unknown, options?: PostOptions): Promise<AcmeHttpResponse>;
  /** A directory resource URL (`newOrder`, …); `acme_protocol_error` when the CA has none. */
  resourceUrl(name: string): Promise<string>;
  directory(): Promise<Record<string, unknown>>;
  /** RFC 8555 §8.1 key authorization `token.thumbprint` (raw, for every challenge type). */
  keyAuthorization(token: string): string;
  /** The account URL sessions sign with (after registration). */
  setAccountUrl(url: string): void;
}

/** Sends of one request while the CA keeps answering badNonce. */
export const BAD_NONCE_ATTEMPTS = 10;
const MAX_RESPONSE_BYTES = 1024 * 1024;
const MAX_POOLED_NONCES = 32;
const USER_AGENT = "certfleet-acme";

export function createAcmeTransport(options: AcmeTransportOptions): AcmeTransport {
  const timeoutMs = options.requestTimeoutMs ?? 30_000;
  const connectionRetries = options.connectionRetries ?? 2;
  const directoryTtlMs = options.directoryTtlMs ?? 60 * 60_000;
  const logger = options.logger;
  // Built once: a `ca` list in the connect options would make Node build a new context per connection.
  const secureContext = options.caBundlePem
    ? createSecureContext({ ca: [...rootCertificates, options.caBundlePem] })
    : undefined;
  const newAgent = () =>
    new Agent({
      connect: secureContext ? { secureContext } : {},
      maxResponseSize: MAX_RESPONSE_BYTES,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      keepAliveTimeout: options.keepAliveTimeoutMs ?? 4_000,
      keepAliveMaxTimeout: options.keepAliveTimeoutMs ?? 4_000,
      // a server hint "timeout=N" is used as N - 1 s, so our idle socket closes before the CA's does
      keepAliveTimeoutThreshold: 1_000,
    });
  let dispatcher = newAgent();
  const nonces: string[] = [];
  let directoryCache: { value: Record<string, unknown>; at: number } | undefined;

  function keepNonce(res: AcmeHttpResponse): void {
    const nonce = res.headers["replay-nonce"];
    if (nonce && /^[A-Za-z0-9_-]+$/.test(nonce)) {
      nonces.push(nonce);
      if (nonces.length > MAX_POOLED_NONCES) nonces.shift();
    }
  }

  async function sendOnce(
    url: string,
    method: "GET" | "HEAD" | "POST",
    signal: AbortSignal,
    body?: string,
  ): Promise<AcmeHttpResponse> {
    throwIfAborted(signal);
    const combined = AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]);
    try {
      const res = await request(url, {
        method,
        headers: {
          "user-agent": USER_AGENT,
          ...(body === undefined ? {} : { "content-type": "application/jose+json" }),
        },
        body,
        dispatcher,
        signal: combined,
      });
      const text = await res.body.text();
      const flat: Record<string, string> = {};
      for (const [name, value] of Object.entries(res.headers)) {
        if (value !== undefined) flat[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : value;
      }
      const response = { status: res.statusCode, headers: flat, data: parseBody(text, flat["content-type"]) };
      keepNonce(response);
      return response;
    } catch (e) {
      throwIfAborted(signal);
      throw unreachableError(url, e);
    }
  }

  /**
   * Run `attempt` (a fresh send each time), again after a connection error while `repeatable`, up to
   * `connectionRetries` extra times with a short pause.
   */
  async function withConnectionRetries(
    url: string,
    repeatable: boolean,
    signal: AbortSignal,
    attempt: () => Promise<AcmeHttpResponse>,
  ): Promise<AcmeHttpResponse> {
    for (let n = 1; ; n++) {
      try {
        const res = await attempt();
        return n === 1 ? res : { ...res, attempts: n };
      } catch (e) {
        if (!repeatable || n > connectionRetries || !isConnectionError(e)) throw e;
        logger?.info(
          { url, attempt: n, err: e instanceof Error ? e.message : String(e) },
          "acme request: connection lost, sending again",
        );
        await sleep(connectionRetryDelayMs(n), signal);
      }
    }
  }

  const get = (url: string, signal: AbortSignal) =>
    withConnectionRetries(url, true, signal, () => sendOnce(url, "GET", signal));

  async function directory(signal: AbortSignal, maxAgeMs = directoryTtlMs): Promise<Record<string, unknown>> {
    const at = performance.now();
    if (directoryCache && at - directoryCache.at < maxAgeMs) return directoryCache.value;
    const res = await get(options.directoryUrl, signal);
    if (res.status !== 200 || typeof res.data !== "object" || res.data === null) {
      throw protocolError(
        "the ACME directory is not usable",
        `HTTP ${res.status} from ${options.directoryUrl}`,
      );
    }
    directoryCache = { value: res.data as Record<string, unknown>, at };
    return directoryCache.value;
  }

  async function resourceUrl(name: string, signal: AbortSignal): Promise<string> {
    const url = (await directory(signal))[name];
    if (typeof url !== "string") throw protocolError(`the ACME directory has no ${name}`);
    return url;
  }

  async function takeNonce(signal: AbortSignal): Promise<string> {
    const pooled = nonces.pop();
    if (pooled) return pooled;
    const url = await resourceUrl("newNonce", signal);
    const res = await withConnectionRetries(url, true, signal, () => sendOnce(url, "GET", signal));
    const nonce = nonces.pop();
    if (!nonce) throw protocolError("the ACME CA sent no nonce", `HEAD ${url}: HTTP ${res.status}`);
    return nonce;
  }

  return {
    directoryUrl: options.directoryUrl,
    get,
    directory,
    async openSession(account, signal) {
      const signer: AccountSigner = await createAccountSigner(account.keyPem);
      // each session (one issuance) reads the directory once, so a CA's changes (renewalInfo, URLs)
      // are seen by the next issuance; renewal-info polling between issuances uses the cached copy
      await directory(signal, 0);
      let accountUrl = account.url;
      return {
        async post(url, payload, postOptions = {}) {
          const asNewAccount = postOptions.asNewAccount === true;
          const repeatable = postOptions.repeatable ?? payload === null;
          return withConnectionRetries(url, repeatable, signal, async () => {
            let nonce = await takeNonce(signal);
            for (let n = 1; ; n++) {
              const kid = asNewAccount ? undefined : accountUrl;
              const jws = await signer.sign(
                url,
                nonce,
                kid,
                payload === null ? undefined : payload,
                asNewAccount ? account.eab : undefined,
              );
              const res = await sendOnce(url, "POST", signal, JSON.stringify(jws));
              if (problemShortType(asProblem(res.data)) !== "badNonce" || n >= BAD_NONCE_ATTEMPTS) return res;
              logger?.debug({ url, attempt: n }, "acme request: badNonce, signing again");
              // RFC 8555 §6.5: the badNonce answer carries a fresh nonce; sendOnce pooled it.
              nonce = await takeNonce(signal);
            }
          });
        },
        resourceUrl: (name) => resourceUrl(name, signal),
        directory: () => directory(signal),
        keyAuthorization: (token) => `${token}.${signer.thumbprint}`,
        setAccountUrl(url) {
          accountUrl = url;
        },
      };
    },
    async close() {
      // a closed undici Agent refuses requests: later work gets a fresh one (with no open sockets)
      const closing = dispatcher;
      dispatcher = newAgent();
      await closing.close();
    },
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
