import { X509Certificate, createPublicKey } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { z } from "zod";
import { splitPemChain } from "../core/certificate-info.js";
import type { Clock } from "../core/clock.js";
import { sleep } from "../core/clock.js";
import {
  CertfleetError,
  UpstreamError,
  ValidationError,
  isCertfleetError,
  throwIfAborted,
} from "../core/errors.js";
import { parseCsr } from "../core/keys.js";
import type { Logger } from "../core/logger.js";
import { parseRetryAfter } from "../core/retry.js";
import {
  alreadyRevokedError,
  REVOCATION_REASONS,
  type IssuedCertificate,
  type IssueRequest,
  type Issuer,
  type RenewalInfo,
  type RenewalInfoSource,
  type RevocationReason,
  type Revoker,
} from "../issuance/issuer.js";
import { accountStorageId, loadAccount, registerAccount, type AccountStore } from "./acme-account.js";
import {
  acmeProblemError,
  asProblem,
  missingSolverError,
  noSolverError,
  problemShortType,
  protocolError,
  type AcmeHttpResponse,
  type AcmeStep,
} from "./acme-errors.js";
import {
  authorizationSchema,
  orderSchema,
  type AcmeAuthorization,
  type AcmeChallenge,
  type AcmeOrder,
} from "./acme-resources.js";
import { pollDelayMs } from "./acme-retry.js";
import { createAcmeTransport, type AcmeSession } from "./acme-transport.js";
import { ariCertId, parseRenewalInfo } from "./ari.js";
import type { ChallengeSolver, SolverChallenge } from "./challenge-solver.js";

export type ChallengeType = ChallengeSolver["type"];

export interface AcmeIssuerOptions {
  directoryUrl: string;
  /** Account contact; also part of the stored account's identity. */
  email?: string;
  /** External account binding; `hmacKey` is base64url. */
  eab?: { kid: string; hmacKey: string };
  /** ACME profile (draft-aaron-acme-profiles), sent in newOrder when set. */
  profile?: string;
  /** Extra trusted roots for the CA's own TLS (PEM), added to Node's root store for this issuer only. */
  caBundlePem?: string;
  /** Challenge types in order of preference. Wildcards always use dns-01. Default http-01, dns-01, tls-alpn-01. */
  preferredChallenges?: ChallengeType[];
  /**
   * Longest wait between polls of an authorization or order when the CA sends no Retry-After; polls
   * start after 50 ms and double up to this. The CA's Retry-After always wins. Default 2000.
   */
  pollIntervalMs?: number;
  /** Give up polling one authorization / order after this long (`acme_timeout`). Default 5 min. */
  pollTimeoutMs?: number;
  /** Per-HTTP-request timeout. Default 30 s. */
  requestTimeoutMs?: number;
  /** Idle keep-alive connections to the CA are closed after this (a shorter server hint wins). Default 4 s. */
  keepAliveTimeoutMs?: number;
  /** Extra sends of a repeatable request after a connection error. Default 2. */
  connectionRetries?: number;
}

export interface AcmeIssuerDeps {
  id: string;
  store: AccountStore;
  solvers: ChallengeSolver[];
  logger: Logger;
  clock: Clock;
  options: AcmeIssuerOptions;
}

export interface AcmeIssuer extends Issuer, RenewalInfoSource, Revoker {
  /** Close idle connections to the CA. Issuance after close() opens new ones. */
  close(): Promise<void>;
}

interface PendingChallenge {
  solver: ChallengeSolver;
  challenge: SolverChallenge;
  url: string;
  authzUrl: string;
}

/**
 * An Issuer for any RFC 8555 CA, on certfleet's own small ACME client (acme-transport.ts: JWS on jose,
 * EAB, nonces, keep-alive, connection retries). One issue() call: check that every name has a solver
 * (before anything is ordered) → account (created once, persisted) → newOrder (with `profile` and ARI
 * `replaces`) → present every challenge, wait until ready, respond, poll → cleanup (always, for every
 * challenge whose present was called) → finalize with the caller's CSR → download and split the chain.
 * Each phase is logged at info. Polls follow the CA's Retry-After, else a short backoff (acme-retry.ts).
 * The signal is honoured between steps and inside every request and sleep. Error codes: acme-errors.ts.
 */
export function createAcmeIssuer(deps: AcmeIssuerDeps): AcmeIssuer {
  const { id, store, solvers, logger, clock, options } = deps;
  const transport = createAcmeTransport({
    directoryUrl: options.directoryUrl,
    caBundlePem: options.caBundlePem,
    requestTimeoutMs: options.requestTimeoutMs,
    keepAliveTimeoutMs: options.keepAliveTimeoutMs,
    connectionRetries: options.connectionRetries,
    logger,
  });
  const accountId = accountStorageId(options.directoryUrl, options.email);
  const pollIntervalMs = options.pollIntervalMs ?? 2000;
  const pollTimeoutMs = options.pollTimeoutMs ?? 5 * 60_000;
  const preferred = options.preferredChallenges ?? ["http-01", "dns-01", "tls-alpn-01"];

  const now = () => clock.now();

  function fail(res: AcmeHttpResponse, step: AcmeStep, identifier?: string): UpstreamError {
    return acmeProblemError(asProblem(res.data), step, {
      httpStatus: res.status,
      retryAfterHeader: res.headers["retry-after"],
      now: now(),
      identifier,
    });
  }

  function parse<T>(schema: z.ZodType<T>, data: unknown, what: string): T {
    const result = schema.safeParse(data);
    if (!result.success) throw protocolError(`the ACME CA sent an unusable ${what}`, result.error.message);
    return result.data;
  }

  // --- account ----------------------------------------------------------------------------------

  async function openAccountSession(signal: AbortSignal): Promise<AcmeSession> {
    const account = await loadAccount(store, accountId, signal);
    const session = await transport.openSession(
      { keyPem: account.keyPem, url: account.url, eab: options.eab },
      signal,
    );
    if (!account.url) {
      const url = await registerAccount({ store, session, id: accountId, email: options.email, now }, signal);
      logger.info({ account: url }, "acme account registered");
    }
    return session;
  }

  // --- order ------------------------------------------------------------------------------------

  async function createOrder(
    session: AcmeSession,
    request: IssueRequest,
    signal: AbortSignal,
  ): Promise<{ url: string; order: AcmeOrder }> {
    const newOrderUrl = await session.resourceUrl("newOrder");
    // RFC 9773 §5: `replaces` only goes to a CA that advertises renewalInfo.
    const supportsAri = typeof (await session.directory())["renewalInfo"] === "string";
    let replaces = supportsAri ? request.replaces : undefined;
    let reregistered = false;
    for (;;) {
      throwIfAborted(signal);
      const payload = {
        identifiers: request.names.map((value) => ({ type: "dns", value })),
        ...(options.profile ? { profile: options.profile } : {}),
        ...(replaces ? { replaces } : {}),
      };
      // Repeatable: if a lost connection hides a created order, the repeat makes a second pending order
      // that simply expires unused (no certificate, no duplicate-certificate limit spent).
      const res = await session.post(newOrderUrl, payload, { repeatable: true });
      if (res.status === 201) {
        const url = res.headers["location"];
        if (!url) throw protocolError("the ACME CA did not return an order URL");
        return { url, order: parse(orderSchema, res.data, "order") };
      }
      const type = problemShortType(asProblem(res.data));
      if (type === "accountDoesNotExist" && !reregistered) {
        // The CA forgot the stored account (a test CA restarted, or the account was deleted): register
        // the same key again and retry once.
        reregistered = true;
        logger.warn("acme account unknown to the CA; registering again");
        await registerAccount({ store, session, id: accountId, email: options.email, now }, signal);
        continue;
      }
      if (replaces && type === "alreadyReplaced") {
        // RFC 9773 §5: a CA may refuse `replaces`; the new certificate is still wanted.
        logger.warn({ replaces }, "acme CA refused ARI replaces; ordering without it");
        replaces = undefined;
        continue;
      }
      throw fail(res, "order");
    }
  }

  async function fetchResource<T>(
    session: AcmeSession,
    url: string,
    step: AcmeStep,
    schema: z.ZodType<T>,
  ): Promise<{ value: T; res: AcmeHttpResponse }> {
    const res = await session.post(url, null);
    if (res.status !== 200) throw fail(res, step);
    return { value: parse(schema, res.data, step), res };
  }

  /** POST-as-GET `url` until `done(status)`; waits the CA's Retry-After, else a short backoff (acme-retry.ts). */
  async function pollUntil<T extends { status: string }>(
    session: AcmeSession,
    url: string,
    step: AcmeStep,
    schema: z.ZodType<T>,
    done: (status: string) => boolean,
    signal: AbortSignal,
  ): Promise<T> {
    const deadline = performance.now() + pollTimeoutMs;
    for (let poll = 1; ; poll++) {
      const { value, res } = await fetchResource(session, url, step, schema);
      if (done(value.status)) return value;
      const retryAfterSeconds = parseRetryAfter(res.headers["retry-after"], now());
      const delay = pollDelayMs(poll, retryAfterSeconds, pollIntervalMs);
      if (performance.now() + delay > deadline) {
        throw new UpstreamError("acme_timeout", `the ACME CA did not finish the ${step} in time`, {
          retryable: true,
          internal: `${url} still ${value.status} after ${pollTimeoutMs} ms`,
          retryAfter: retryAfterSeconds,
        });
      }
      await sleep(delay, signal);
    }
  }

  /**
   * Before anything is ordered: every name needs a solver for a challenge type it may use (dns-01 for
   * a wildcard, else the preferred types) that covers it. Throws `acme_no_solver` (422) naming the
   * setting to add, so a configuration mistake costs no order at the CA.
   *
   * Skipped for an issuer with no solvers at all or with an external account binding: such CAs (an
   * upstream certfleet in eab mode, commercial CAs with pre-validated domains) may hand out orders
   * whose authorizations are already valid, which need no solver. For them a missing solver is found
   * when an authorization actually asks for a challenge (`acme_no_solver` too, after ordering).
   */
  function checkSolvers(names: readonly string[]): void {
    if (solvers.length === 0 || options.eab) return;
    for (const name of names) {
      const wildcard = name.startsWith("*.");
      const domain = wildcard ? name.slice(2) : name;
      const candidates: readonly ChallengeType[] = wildcard ? ["dns-01"] : preferred;
      const usable = candidates.some((type) =>
        solvers.some((s) => s.type === type && (s.covers?.(domain) ?? true)),
      );
      if (!usable) throw missingSolverError(name, { wildcard, issuer: id, challenges: candidates });
    }
  }

  function pickChallenge(authz: AcmeAuthorization): { solver: ChallengeSolver; challenge: AcmeChallenge } {
    const wildcard = authz.wildcard === true;
    const candidates: readonly ChallengeType[] = wildcard ? ["dns-01"] : preferred;
    for (const type of candidates) {
      const solver = solvers.find((s) => s.type === type && (s.covers?.(authz.identifier.value) ?? true));
      const challenge = authz.challenges.find((c) => c.type === type && c.token);
      if (solver && challenge) return { solver, challenge };
    }
    const name = wildcard ? `*.${authz.identifier.value}` : authz.identifier.value;
    throw noSolverError(
      name,
      authz.challenges.map((c) => c.type),
    );
  }

  function validationError(authz: AcmeAuthorization): UpstreamError {
    const failed =
      authz.challenges.find((c) => c.error) ?? authz.challenges.find((c) => c.status === "invalid");
    return acmeProblemError(failed?.error ?? { detail: `authorization is ${authz.status}` }, "validation", {
      now: now(),
      identifier: authz.identifier.value,
    });
  }

  async function authorize(
    session: AcmeSession,
    order: AcmeOrder,
    names: readonly string[],
    signal: AbortSignal,
  ): Promise<void> {
    const presented: PendingChallenge[] = [];
    try {
      const pending: PendingChallenge[] = [];
      for (const authzUrl of order.authorizations) {
        throwIfAborted(signal);
        const { value: authz } = await fetchResource(session, authzUrl, "authorization", authorizationSchema);
        if (authz.status === "valid") continue;
        if (authz.status !== "pending") throw validationError(authz);
        const { solver, challenge } = pickChallenge(authz);
        const keyAuthorization = session.keyAuthorization(challenge.token!);
        pending.push({
          solver,
          url: challenge.url,
          authzUrl,
          challenge: {
            domain: authz.identifier.value,
            wildcard: authz.wildcard === true,
            token: challenge.token!,
            keyAuthorization,
          },
        });
      }
      if (pending.length === 0) return;

      throwIfAborted(signal);
      await settleSolvers(
        pending.map(async (p) => {
          presented.push(p);
          await p.solver.present(p.challenge, signal);
        }),
      );
      const summary = pending.map(
        (p) => `${p.solver.type} ${p.challenge.wildcard ? "*." : ""}${p.challenge.domain}`,
      );
      logger.info({ names, challenges: summary }, "acme challenges presented");
      throwIfAborted(signal);
      const waiting = pending.filter((p) => p.solver.waitReady);
      if (waiting.length > 0) {
        // a DNS propagation wait can take minutes: say so, so a stuck wait is visible
        logger.info(
          { names, domains: waiting.map((p) => p.challenge.domain) },
          "acme waiting for challenge propagation",
        );
        await settleSolvers(waiting.map(async (p) => p.solver.waitReady?.(p.challenge, signal)));
      }

      logger.info({ names, challenges: pending.length }, "acme validating: challenges answered, CA checking");
      for (const p of pending) {
        throwIfAborted(signal);
        // Repeatable: if the lost first response reached the CA, the repeat may be refused (Pebble
        // answers "only status pending" once validated); the authorization poll below tells the truth.
        const res = await session.post(p.url, {}, { repeatable: true });
        if (res.status !== 200 && (res.attempts ?? 1) === 1) throw fail(res, "challenge", p.challenge.domain);
      }
      for (const p of pending) {
        const authz = await pollUntil(
          session,
          p.authzUrl,
          "authorization",
          authorizationSchema,
          (s) => s !== "pending",
          signal,
        );
        if (authz.status !== "valid") throw validationError(authz);
      }
    } finally {
      await cleanupAll(presented);
    }
  }

  async function cleanupAll(presented: readonly PendingChallenge[]): Promise<void> {
    const results = await Promise.allSettled(presented.map((p) => p.solver.cleanup(p.challenge)));
    results.forEach((r, i) => {
      if (r.status === "rejected") {
        const p = presented[i]!;
        logger.warn(
          { domain: p.challenge.domain, type: p.solver.type, err: errorText(r.reason) },
          "acme challenge cleanup failed",
        );
      }
    });
  }

  async function finalize(
    session: AcmeSession,
    orderUrl: string,
    csrPem: string,
    signal: AbortSignal,
    onFinalize?: () => Promise<void>,
  ): Promise<AcmeOrder> {
    let order = await pollUntil(session, orderUrl, "order", orderSchema, (s) => s !== "pending", signal);
    if (order.status === "ready") {
      throwIfAborted(signal);
      await onFinalize?.();
      // Repeatable: when a lost connection hides a finalize the CA accepted, the repeat is refused with
      // orderNotReady (the order is already processing or valid) and the order is polled below.
      const res = await session.post(order.finalize, { csr: csrDerBase64Url(csrPem) }, { repeatable: true });
      if (res.status === 200) {
        order = parse(orderSchema, res.data, "order");
      } else if (problemShortType(asProblem(res.data)) === "orderNotReady") {
        const { value } = await fetchResource(session, orderUrl, "finalize", orderSchema);
        if (value.status !== "processing" && value.status !== "valid") throw fail(res, "finalize");
        order = value;
      } else {
        throw fail(res, "finalize");
      }
    }
    if (order.status !== "valid" && order.status !== "invalid") {
      order = await pollUntil(
        session,
        orderUrl,
        "finalize",
        orderSchema,
        (s) => s === "valid" || s === "invalid",
        signal,
      );
    }
    if (order.status !== "valid") {
      throw acmeProblemError(order.error ?? { detail: `order is ${order.status}` }, "finalize", {
        now: now(),
      });
    }
    return order;
  }

  async function download(
    session: AcmeSession,
    order: AcmeOrder,
    csrPem: string,
  ): Promise<IssuedCertificate> {
    if (!order.certificate) throw protocolError("the ACME CA did not return a certificate URL");
    const res = await session.post(order.certificate, null);
    if (res.status !== 200) throw fail(res, "download");
    const blocks = typeof res.data === "string" ? splitPemChain(res.data) : [];
    const [certPem, ...chain] = blocks;
    if (!certPem) throw protocolError("the ACME CA returned no certificate");
    const leafKey = createPublicKey(certPem).export({ type: "spki", format: "pem" });
    if (leafKey !== parseCsr(csrPem).publicKeyPem) {
      throw new UpstreamError(
        "acme_certificate_mismatch",
        "the ACME CA returned a certificate for another key",
        {
          retryable: false,
        },
      );
    }
    return { certPem, chainPem: chain.join("") };
  }

  /**
   * A journaled order worth continuing: the CA still has it, for exactly these names, and it is
   * neither invalid nor expired (a valid order stays downloadable after its `expires`). Otherwise
   * undefined, and the caller orders anew.
   */
  async function resumableOrder(
    session: AcmeSession,
    url: string,
    names: readonly string[],
  ): Promise<AcmeOrder | undefined> {
    const res = await session.post(url, null);
    if (res.status !== 200) {
      logger.warn({ order: url, status: res.status }, "acme journaled order is gone; ordering again");
      return undefined;
    }
    const order = parse(orderSchema, res.data, "order");
    const ordered = (order.identifiers ?? [])
      .map((i) => i.value)
      .sort()
      .join(",");
    const expired = order.expires !== undefined && Date.parse(order.expires) <= now().getTime();
    if (
      ordered !== [...names].sort().join(",") ||
      order.status === "invalid" ||
      (expired && order.status !== "valid")
    ) {
      logger.warn(
        { order: url, status: order.status, expired },
        "acme journaled order unusable; ordering again",
      );
      return undefined;
    }
    logger.info({ names, order: url, status: order.status }, "acme resuming journaled order");
    return order;
  }

  async function issueOnce(request: IssueRequest, signal: AbortSignal): Promise<IssuedCertificate> {
    const session0 = request.resumeOrderUrl ? await openAccountSession(signal) : undefined;
    const resumed =
      session0 && request.resumeOrderUrl
        ? await resumableOrder(session0, request.resumeOrderUrl, request.names)
        : undefined;
    let url: string;
    let order: AcmeOrder;
    let session: AcmeSession;
    if (resumed && request.resumeOrderUrl && session0) {
      session = session0;
      url = request.resumeOrderUrl;
      order = resumed;
    } else {
      checkSolvers(request.names);
      session = session0 ?? (await openAccountSession(signal));
      ({ url, order } = await createOrder(session, request, signal));
      logger.info({ names: request.names, order: url, status: order.status }, "acme order created");
      await request.onOrder?.(url);
    }
    if (order.status === "invalid") {
      throw acmeProblemError(order.error ?? { detail: "order is invalid" }, "order", { now: now() });
    }
    if (order.status === "pending") await authorize(session, order, request.names, signal);
    throwIfAborted(signal);
    const valid = await finalize(session, url, request.csrPem, signal, request.onFinalize);
    throwIfAborted(signal);
    const issued = await download(session, valid, request.csrPem);
    logger.info({ names: request.names, order: url }, "acme order finalized, certificate downloaded");
    return issued;
  }

  // --- revocation -----------------------------------------------------------------------------

  /**
   * RFC 8555 §7.6, signed with the account key (`kid`): the account that ordered a certificate may
   * revoke it. `alreadyRevoked` becomes `already_revoked`; other problems map as in acme-errors.ts.
   */
  async function revokeOnce(certPem: string, reason: RevocationReason, signal: AbortSignal): Promise<void> {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(certPem);
    } catch (e) {
      throw new ValidationError("certificate_invalid", "not a valid PEM certificate", {
        reason: errorText(e),
      });
    }
    const der = cert.raw;
    const session = await openAccountSession(signal);
    const url = await session.resourceUrl("revokeCert");
    throwIfAborted(signal);
    // Repeatable: a repeat of a revocation the CA already did is answered alreadyRevoked (below).
    const res = await session.post(
      url,
      { certificate: der.toString("base64url"), reason: REVOCATION_REASONS[reason] },
      { repeatable: true },
    );
    const revoked = res.status === 200;
    const type = problemShortType(asProblem(res.data));
    if (revoked || (type === "alreadyRevoked" && (res.attempts ?? 1) > 1)) {
      logger.info({ serial: cert.serialNumber.toLowerCase(), reason }, "acme certificate revoked");
      return;
    }
    if (type === "alreadyRevoked") {
      throw alreadyRevokedError(asProblem(res.data)?.detail);
    }
    throw fail(res, "revoke");
  }

  // --- ARI --------------------------------------------------------------------------------------

  async function renewalInfo(certPem: string, signal: AbortSignal): Promise<RenewalInfo | undefined> {
    try {
      const base = (await transport.directory(signal))["renewalInfo"];
      if (typeof base !== "string") return undefined;
      let certId: string;
      try {
        certId = ariCertId(certPem);
      } catch (e) {
        if (isCertfleetError(e) && e.code === "ari_cert_id_unavailable") return undefined;
        throw e;
      }
      const res = await transport.get(`${base.replace(/\/+$/, "")}/${certId}`, signal);
      if (res.status === 404) return undefined;
      if (res.status !== 200) throw fail(res, "renewalInfo");
      const info = parseRenewalInfo(certId, res.data, parseRetryAfter(res.headers["retry-after"], now()));
      if (!info) {
        throw new UpstreamError("acme_renewal_info_invalid", "the ACME CA sent an unusable renewal window", {
          retryable: true,
        });
      }
      return info;
    } catch (e) {
      throw normalizeError(e, signal);
    }
  }

  return {
    id,
    async issue(request, signal) {
      try {
        throwIfAborted(signal);
        return await issueOnce(request, signal);
      } catch (e) {
        throw normalizeError(e, signal);
      }
    },
    renewalInfo,
    async revoke(certPem, reason, signal) {
      try {
        throwIfAborted(signal);
        await revokeOnce(certPem, reason, signal);
      } catch (e) {
        throw normalizeError(e, signal);
      }
    },
    close: () => transport.close(),
  };
}

/**
 * Wait for every solver call, then throw the first failure (so nothing is still running when cleanup
 * starts). A solver's own CertfleetError (e.g. a DNS provider's) keeps its code; anything else becomes
 * `acme_solver_failed` (retryable).
 */
async function settleSolvers(work: readonly Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(work);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (!failed) return;
  if (isCertfleetError(failed.reason)) throw failed.reason;
  throw new UpstreamError("acme_solver_failed", "a challenge could not be set up", {
    retryable: true,
    internal: errorText(failed.reason),
    cause: failed.reason,
  });
}

function normalizeError(e: unknown, signal: AbortSignal): CertfleetError {
  if (signal.aborted) {
    return isCertfleetError(e) && e.code === "aborted"
      ? e
      : new CertfleetError("aborted", "operation was cancelled", { status: 499, cause: signal.reason });
  }
  if (isCertfleetError(e)) return e;
  // anything else thrown while talking to the CA (e.g. an unusable account key) is a protocol problem
  return protocolError("the ACME CA answered something certfleet cannot use", errorText(e));
}

function csrDerBase64Url(csrPem: string): string {
  const body = csrPem.replace(/-----(BEGIN|END) (NEW )?CERTIFICATE REQUEST-----/g, "").replace(/\s+/g, "");
  return Buffer.from(body, "base64").toString("base64url");
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
