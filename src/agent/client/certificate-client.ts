import { rootCertificates } from "node:tls";
import { Agent, fetch } from "undici";
import { z } from "zod";
import { CertfleetError, isCertfleetError, UpstreamError } from "../../core/errors.js";
import { KEY_TYPES, type KeyType } from "../../core/key-types.js";
import type { Logger } from "../../core/logger.js";
import { AgentAuthError, errorText } from "../agent-errors.js";
import type { Credential, CredentialSource } from "../auth/credential-source.js";
import { serverError } from "./server-error.js";

/**
 * The agent's side of `POST /api/certificate`. One call = authenticate (the credential source), send
 * the names (and a CSR for local key custody), validate the answer's shape. A 401 that says a fresh
 * credential may help (`token_expired`, or a bare `unauthenticated`; not `identity_mismatch`) lets the
 * credential source drop the credential it refused and the request is retried once with a fresh one
 * (the exec plugin protocol's rule, applied to every method that can refresh). A 401 after that, or one
 * no fresh credential can fix, is an AgentAuthError carrying the server's code.
 *
 * Error codes: the server's own codes (with its status and Retry-After), plus server_unreachable,
 * server_timeout, server_answer_invalid.
 */

export interface CertificateRequest {
  domains: string[];
  keyType?: KeyType;
  /** PEM PKCS#10; the answer then carries no private key. */
  csrPem?: string;
}

const answerSchema = z.object({
  domain: z.string(),
  domains: z.array(z.string()),
  certificate: z.string().includes("BEGIN CERTIFICATE"),
  issuerCert: z.string(),
  fullchain: z.string(),
  privateKey: z.string().optional(),
  keyType: z.enum(KEY_TYPES),
  serial: z.string(),
  notBefore: z.iso.datetime({ offset: true }),
  notAfter: z.iso.datetime({ offset: true }),
  renewAt: z.iso.datetime({ offset: true }),
  issuer: z.string(),
  cached: z.boolean(),
});

/** `GET /api/assigned-certificates`: names are used as directory names here, so they are checked strictly. */
const assignedSchema = z.object({
  certificates: z
    .array(
      z.object({
        name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/),
        domains: z.array(z.string().min(1).max(253)).min(1).max(100),
        keyType: z.enum(KEY_TYPES),
      }),
    )
    .max(100),
});
export type AssignedCertificate = z.infer<typeof assignedSchema>["certificates"][number];

export interface IssuedCertificate {
  domains: string[];
  certPem: string;
  chainPem: string;
  privateKeyPem: string | undefined;
  keyType: KeyType;
  serial: string;
  notBefore: Date;
  notAfter: Date;
  renewAt: Date;
  issuer: string;
  cached: boolean;
}

export interface CertificateClient {
  obtain(request: CertificateRequest, signal: AbortSignal): Promise<IssuedCertificate>;
  /**
   * `POST /api/certificate/renew`: for a certificate past its renewAt, so the server renews it now rather
   * than at its next scheduler tick. Falls back to `obtain` when the server says it is not due yet.
   */
  renew(request: CertificateRequest, signal: AbortSignal): Promise<IssuedCertificate>;
  /** `GET /api/assigned-certificates`: what the server assigns this identity (agents with no local list). */
  assigned(signal: AbortSignal): Promise<AssignedCertificate[]>;
  /**
   * POST another JSON API of the server (e.g. /api/ssh/certificate) with the same credential handling
   * (one retry after a 401); returns the 2xx answer's text, throws the server's error otherwise.
   */
  post(path: string, body: unknown, signal: AbortSignal): Promise<string>;
  close(): Promise<void>;
}

export interface CertificateClientDeps {
  /** Server base URL, no trailing slash. */
  url: string;
  /** Extra PEM roots for the server's TLS (added to the system roots). */
  caBundlePem: string | undefined;
  credentials: CredentialSource;
  timeoutMs: number;
  logger: Logger;
  userAgent: string;
}

/**
 * Whether the server's 401 says a fresh credential could succeed: `details.freshCredentialMayHelp`
 * when the server sends it (`token_expired` → yes, `identity_mismatch` → no), else by the code; an
 * older server's bare `unauthenticated` keeps the exec protocol's one retry.
 */
export function freshCredentialMayHelp(error: CertfleetError): boolean {
  const stated = error.details?.freshCredentialMayHelp;
  if (typeof stated === "boolean") return stated;
  return error.code !== "identity_mismatch";
}

export function createCertificateClient(deps: CertificateClientDeps): CertificateClient {
  const ca = deps.caBundlePem ? [...rootCertificates, deps.caBundlePem] : undefined;
  const dispatchers = new Map<string, Agent>();

  // One connection pool per client certificate (mTLS identity), so a rotated certificate gets new connections.
  function dispatcherFor(credential: Credential): Agent {
    const cert = credential.clientCertificate;
    const key = cert ? cert.certPem : "";
    let agent = dispatchers.get(key);
    if (!agent) {
      agent = new Agent({
        connect: { ...(ca ? { ca } : {}), ...(cert ? { cert: cert.certPem, key: cert.keyPem } : {}) },
        headersTimeout: deps.timeoutMs,
        bodyTimeout: deps.timeoutMs,
      });
      for (const [k, old] of dispatchers) {
        dispatchers.delete(k);
        void old.close();
      }
      dispatchers.set(key, agent);
    }
    return agent;
  }

  async function send(path: string, credential: Credential, body: string | undefined, signal: AbortSignal) {
    const joined = AbortSignal.any([signal, AbortSignal.timeout(deps.timeoutMs)]);
    try {
      const res = await fetch(`${deps.url}${path}`, {
        method: body === undefined ? "GET" : "POST",
        dispatcher: dispatcherFor(credential),
        signal: joined,
        headers: {
          ...(body === undefined ? {} : { "content-type": "application/json" }),
          accept: "application/json",
          "user-agent": deps.userAgent,
          ...credential.headers,
        },
        body,
      });
      return { status: res.status, retryAfter: res.headers.get("retry-after"), text: await res.text() };
    } catch (e) {
      if (signal.aborted) throw e;
      if (joined.aborted) {
        throw new CertfleetError(
          "server_timeout",
          `no answer from the server within ${Math.round(deps.timeoutMs / 1000)} s`,
          {
            status: 504,
            expose: true,
          },
        );
      }
      const cause = (e as { cause?: unknown }).cause;
      throw new UpstreamError("server_unreachable", `cannot reach the certfleet server at ${deps.url}`, {
        internal: errorText(cause ?? e),
        cause: e,
      });
    }
  }

  /** Send with a credential; a 401 refreshes it once; a second 401 is an AgentAuthError; non-2xx throws. */
  async function exchange(path: string, body: string | undefined, signal: AbortSignal) {
    const credential = await deps.credentials.get(signal);
    let res = await send(path, credential, body, signal);
    if (
      res.status === 401 &&
      freshCredentialMayHelp(serverError(res.status, res.text, res.retryAfter)) &&
      deps.credentials.refused(credential)
    ) {
      deps.logger.info(
        { method: deps.credentials.method, code: serverError(res.status, res.text, null).code },
        "the server refused the credential; retrying with a fresh one",
      );
      res = await send(path, await deps.credentials.get(signal), body, signal);
    }
    if (res.status === 401) {
      const e = serverError(res.status, res.text, res.retryAfter);
      throw new AgentAuthError(deps.credentials.method, e.code, "the server refused the credential", {
        internal: e.message,
      });
    }
    if (res.status < 200 || res.status >= 300) throw serverError(res.status, res.text, res.retryAfter);
    return res;
  }

  /** POST a JSON body; returns the 2xx body text. */
  async function postJson(path: string, body: string, signal: AbortSignal): Promise<string> {
    return (await exchange(path, body, signal)).text;
  }

  async function call(
    path: string,
    request: CertificateRequest,
    signal: AbortSignal,
  ): Promise<IssuedCertificate> {
    const body = JSON.stringify({
      domains: request.domains,
      ...(request.keyType ? { keyType: request.keyType } : {}),
      ...(request.csrPem ? { csr: request.csrPem } : {}),
    });
    const res = await exchange(path, body, signal);
    let parsed: z.infer<typeof answerSchema>;
    try {
      parsed = answerSchema.parse(JSON.parse(res.text));
    } catch (e) {
      throw new UpstreamError("server_answer_invalid", "the server's answer is not a certificate", {
        internal: errorText(e).slice(0, 500),
        retryable: false,
      });
    }
    return {
      domains: parsed.domains,
      certPem: parsed.certificate,
      chainPem: parsed.issuerCert,
      privateKeyPem: parsed.privateKey,
      keyType: parsed.keyType,
      serial: parsed.serial,
      notBefore: new Date(parsed.notBefore),
      notAfter: new Date(parsed.notAfter),
      renewAt: new Date(parsed.renewAt),
      issuer: parsed.issuer,
      cached: parsed.cached,
    };
  }

  return {
    obtain: (request, signal) => call("/api/certificate", request, signal),
    async assigned(signal) {
      const res = await exchange("/api/assigned-certificates", undefined, signal);
      try {
        return assignedSchema.parse(JSON.parse(res.text)).certificates;
      } catch (e) {
        throw new UpstreamError(
          "server_answer_invalid",
          "the server's list of assigned certificates is invalid",
          {
            internal: errorText(e).slice(0, 500),
            retryable: false,
          },
        );
      }
    },
    post: (path, body, signal) => postJson(path, JSON.stringify(body), signal),
    async renew(request, signal) {
      try {
        return await call("/api/certificate/renew", request, signal);
      } catch (e) {
        // The server's clock says it is not due yet: take what it has.
        if (isCertfleetError(e) && e.code === "renewal_not_due")
          return call("/api/certificate", request, signal);
        throw e;
      }
    },
    async close() {
      await Promise.all([...dispatchers.values()].map((d) => d.close()));
      dispatchers.clear();
      await deps.credentials.close?.();
    },
  };
}
