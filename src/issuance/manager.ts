import { randomUUID } from "node:crypto";
import type { Clock } from "../core/clock.js";
import { sleep } from "../core/clock.js";
import { parseCertificate } from "../core/certificate-info.js";
import {
  CertfleetError,
  RateLimitedError,
  ValidationError,
  isCertfleetError,
  toCertfleetError,
} from "../core/errors.js";
import type { KeyType } from "../core/key-types.js";
import { createCsr, generatePrivateKey, parseCsr } from "../core/keys.js";
import type { Logger } from "../core/logger.js";
import { isRetryable, nextRetryDelayMs } from "../core/retry.js";
import type { IssuanceJournal, JournalEntry } from "../storage/issuance-journal.js";
import type { CertificateRecord, CertificateStore, KeyValueStore, LockStore } from "../storage/storage.js";
import { createAriRefresher } from "./ari-refresh.js";
import { certificateId } from "./certificate-id.js";
import type { IssuerRouter } from "./issuer-routing.js";
import { hasRenewalInfo, hasRevoke, type Issuer, type RenewalInfo, type RevocationReason } from "./issuer.js";
import { computeRenewAt, type RenewalPolicy } from "./renewal-window.js";
import { SingleFlight, waitFor } from "./single-flight.js";
import { TtlCache } from "./ttl-cache.js";

/**
 * The certificate manager: the one place that decides to talk to a CA. For each certificate it runs
 * lock → check again → issue → store all-or-nothing → emit an event, so N concurrent requests (in this
 * process or across replicas) cause one order. Issuance runs detached from the request that started it:
 * a caller that disconnects stops waiting, the certificate is still stored.
 */
export interface CertificateManager {
  /** Return the stored certificate for these names, issuing one if there is none (or it expired). */
  obtain(request: ObtainRequest, signal?: AbortSignal): Promise<ObtainResult>;
  /** Renew now. Refused with `renewal_not_due` (429) before the renewal time unless `force`. */
  renew(request: ObtainRequest & { force?: boolean }, signal?: AbortSignal): Promise<ObtainResult>;
  /** Renew every certificate that is due (the scheduler calls this). Failures are recorded, not thrown. */
  renewDue(signal?: AbortSignal): Promise<{ renewed: number; failed: number }>;
  /**
   * Revoke the stored certificate at its issuer and, with `replace` (default), issue its replacement at
   * once with a fresh key (never the revoked one, whatever `reuseKey` says). Runs under the
   * certificate's storage lock. `certificate_not_found` (404) when there is no such certificate,
   * `revocation_unsupported` (422) when its issuer cannot revoke. A certificate the CA already
   * revoked (a retry after a failed replacement) is not an error: it is recorded and replaced.
   */
  revoke(target: RevokeTarget, options: RevokeOptions, signal?: AbortSignal): Promise<RevokeResult>;
  /** How many issuances this process is running now (shutdown reports it; optional for fakes). */
  running?(): number;
  /**
   * Finish orders the issuance journal holds that nobody is working on (a crash, a SIGTERM that did
   * not wait, a replica that died): for each entry whose certificate lock is free, continue its order
   * in the background (download if valid, wait if processing, order anew only if invalid or expired).
   * Returns how many were started. The composition root calls it on start; renewDue calls it too,
   * so a replica takes over a dead one's orders once their lease ends.
   */
  resumeJournaled?(signal?: AbortSignal): Promise<number>;
  /**
   * Shutdown: wait up to `timeoutMs` for the issuances this process is running. Resolves with how
   * many are still running (0 = all finished); what did not finish is in the journal for the next start.
   */
  drain?(timeoutMs: number): Promise<number>;
  /**
   * Lift the backoff of every failed certificate whose issuer or solver settings changed since its
   * failure (see `configFingerprint`), so the scheduler retries it now. Returns how many. The
   * composition root calls it on start.
   */
  clearStaleBackoffs?(signal?: AbortSignal): Promise<number>;
}

/** Which certificate: as a client asks for it, or by stored id. */
export type RevokeTarget = Pick<ObtainRequest, "names" | "keyType" | "csrPem"> | { id: string };

export interface RevokeOptions {
  reason: RevocationReason;
  actor: string | null;
  /** Issue a replacement now (default true). */
  replace?: boolean;
}

export interface RevokeResult {
  revoked: { id: string; serial: string; reason: RevocationReason };
  /** The replacement, when `replace`. */
  replacement?: CertificateRecord;
}

export interface ObtainRequest {
  names: string[];
  keyType?: KeyType;
  /** CSR mode: the caller keeps its key; names must match the request. */
  csrPem?: string;
  /** Who asked, for the audit log. */
  actor?: string | null;
  /** Who the certificate is for, in the inventory (`identity:<id>`, `acme:<profile>:<account>`). */
  owner?: string | null;
}

export interface ObtainResult {
  record: CertificateRecord;
  /** True when no CA was contacted for this call. */
  cached: boolean;
}

export type CertificateEvent =
  | {
      type: "certificate.issued" | "certificate.renewed";
      id: string;
      names: string[];
      issuerId: string;
      serial: string;
      notAfter: Date;
      actor: string | null;
    }
  | {
      type: "certificate.revoke";
      id: string;
      names: string[];
      issuerId: string;
      serial: string;
      reason: RevocationReason;
      replace: boolean;
      actor: string | null;
    }
  | {
      type: "certificate.failed";
      id: string;
      names: string[];
      issuerId: string;
      code: string;
      message: string;
      actor: string | null;
    };

export interface ManagerDeps {
  certificates: CertificateStore;
  /** Cross-replica: one issuance per certificate id at a time. */
  locks: LockStore;
  /** CSRs and revocation state beside the certificate row. */
  kv: KeyValueStore;
  /** Orders in flight, so a restart or another replica finishes them (issuance-journal.ts). */
  journal: IssuanceJournal;
  router: IssuerRouter;
  clock: Clock;
  logger: Logger;
  policy: RenewalPolicy & { keyType: KeyType; reuseKey: boolean; issueTimeoutMs: number };
  onEvent?: (event: CertificateEvent) => void;
  /** How long a stored certificate is served from memory (default 2 s; 0 disables). */
  cacheTtlMs?: number;
  /** Lock lease (default 15 s), renewed every `lockRenewMs` (default a third of it) while work runs. */
  lockTtlMs?: number;
  lockRenewMs?: number;
  /**
   * Stable per data directory (or instance): lock owners are `<instanceId>:<boot id>`, so a restarted
   * process recognises the locks its previous life left and takes them back at once.
   */
  instanceId?: string;
  /**
   * A digest of the settings that decide how an issuer obtains a certificate (its config entry, the
   * challenge solvers / DNS providers it may use). Stored with each failure's backoff: once it differs,
   * the configuration was changed since, and the backoff no longer holds (a fixed mistake is retried
   * at once, not after an hour). Without it, a backoff always holds until its time.
   */
  configFingerprint?: (issuerId: string) => string;
  random?: () => number;
}

interface Job {
  id: string;
  names: string[];
  keyType: KeyType;
  csrPem?: string;
  issuer: Issuer;
  actor: string | null;
  owner: string | null;
  /** Renewal: the record being replaced. */
  replacing?: CertificateRecord;
  /** Issue even if a stored certificate looks fine (forced renewal). */
  force: boolean;
}

const lockNameOf = (id: string) => `certificate:${id}`;

/** Revoked certificates by certificate id: `{serial, reason, at, actor}` of the last revoked version. */
export const REVOCATION_NAMESPACE = "certificate-revocations";

/** The issuer/solver settings fingerprint in force when a certificate's last failure was recorded. */
export const BACKOFF_CONFIG_NAMESPACE = "issuance-backoff-config";

/** Earliest retry after an error that waiting alone cannot fix. */
export const NON_RETRYABLE_DELAY_MS = 60 * 60_000;

export function createCertificateManager(deps: ManagerDeps): CertificateManager {
  const { certificates, locks, kv, journal, clock, logger, policy } = deps;
  const flights = new SingleFlight<CertificateRecord>();
  const ownerPrefix = `${deps.instanceId ?? randomUUID()}:`;
  const owner = `${ownerPrefix}${randomUUID()}`;
  const lockTtl = deps.lockTtlMs ?? 15_000;
  const lockRenew = deps.lockRenewMs ?? lockTtl / 3;
  // locks this process holds: one owner per process, so two pieces of work here on one certificate
  // (an order and a revocation) take turns here rather than both "holding" the storage lock
  const localTurns = new Map<string, Promise<void>>();
  let staleReleased: Promise<void> | undefined;
  const random = deps.random ?? Math.random;
  // Hot certificates are served from memory for a few seconds; another replica's renewal shows up once
  // the entry expires (the old certificate is still valid meanwhile).
  const recent = new TtlCache<CertificateRecord>(deps.cacheTtlMs ?? 2000, 10_000, clock);
  const ari = createAriRefresher({ certificates, kv, router: deps.router, clock, logger, policy, random });

  async function describe(request: ObtainRequest): Promise<Omit<Job, "force">> {
    let keyType = request.keyType ?? policy.keyType;
    let publicKeyPem: string | undefined;
    if (request.csrPem) {
      const csr = await parseCsr(request.csrPem);
      const want = [...request.names].sort().join(",");
      if ([...csr.names].sort().join(",") !== want) {
        throw new ValidationError(
          "csr_names_mismatch",
          "the CSR's names must be exactly the requested names",
          {
            requested: request.names,
            csr: csr.names,
          },
        );
      }
      if (csr.keyType === "unknown") throw new ValidationError("csr_weak_key", "unsupported CSR key type");
      keyType = csr.keyType;
      publicKeyPem = csr.publicKeyPem;
    }
    return {
      id: certificateId(request.names, keyType, publicKeyPem),
      names: request.names,
      keyType,
      csrPem: request.csrPem,
      issuer: deps.router.select(request.names),
      actor: request.actor ?? null,
      owner: request.owner ?? null,
    };
  }

  /** Still worth handing out: not expired, with a margin of 5 % of its lifetime (at most a minute). */
  function usable(record: CertificateRecord | undefined): record is CertificateRecord {
    if (record === undefined) return false;
    const lifetime = record.notAfter.getTime() - record.notBefore.getTime();
    return record.notAfter.getTime() > clock.now().getTime() + Math.min(60_000, lifetime * 0.05);
  }

  /** Hold the certificate's storage lock (the one every order for it takes) while `work` runs. */
  async function withCertificateLock<T>(id: string, signal: AbortSignal, work: () => Promise<T>): Promise<T> {
    const lockName = lockNameOf(id);
    const before = localTurns.get(lockName) ?? Promise.resolve();
    let done!: () => void;
    const mine = new Promise<void>((r) => (done = r));
    const turn = before.then(() => mine);
    localTurns.set(lockName, turn);
    try {
      await waitFor(before, signal);
      await releaseOwnStaleLocks();
      while (!(await locks.tryLock(lockName, owner, lockTtl, signal))) {
        await sleep(250 + random() * 250, signal); // another replica is ordering it
      }
      const keepAlive = setInterval(
        () => void locks.refreshLock(lockName, owner, lockTtl).catch(() => undefined),
        lockRenew,
      );
      try {
        return await work();
      } finally {
        clearInterval(keepAlive);
        await locks.unlock(lockName, owner);
      }
    } finally {
      done();
      if (localTurns.get(lockName) === turn) localTurns.delete(lockName);
    }
  }

  /** Our previous life's locks are ours at once (no waiting for their lease to end). Once per process. */
  function releaseOwnStaleLocks(): Promise<void> {
    staleReleased ??= locks
      .releaseStaleLocks(ownerPrefix, owner)
      .then((n) => {
        if (n > 0) logger.info({ released: n }, "took back locks left by this instance's previous run");
      })
      .catch(() => undefined);
    return staleReleased;
  }

  /** The fence before a store: still ours (renewed now), else another replica has taken the work over. */
  async function checkLockStillOurs(id: string): Promise<void> {
    if (!(await locks.refreshLock(lockNameOf(id), owner, lockTtl))) {
      throw new CertfleetError(
        "lock_lost",
        "another process took over this certificate's lock; it finishes the journaled order",
        { status: 409 },
      );
    }
  }

  /** True when this exact version (serial) of the certificate was revoked through `revoke`. */
  async function isRevoked(record: CertificateRecord | undefined, signal?: AbortSignal): Promise<boolean> {
    if (!record) return false;
    const stored = await kv.getValue(REVOCATION_NAMESPACE, record.id, signal);
    return stored !== undefined && (JSON.parse(stored) as { serial?: string }).serial === record.serial;
  }

  /** lock → check again → act. Runs with its own timeout, never the caller's signal. */
  async function run(job: Job): Promise<CertificateRecord> {
    const signal = AbortSignal.timeout(policy.issueTimeoutMs);
    return withCertificateLock(job.id, signal, async () => {
      const current = await certificates.getCertificate(job.id, signal);
      // An order in flight for the current version (a crash, a dead replica): finish it whatever this
      // call wanted, since the CA may already have issued it. One for an older version is stale.
      const entry = await journal.get(job.id, signal);
      if (entry) {
        const issuer = deps.router.get(entry.issuerId);
        if ((entry.replacingVersion ?? 0) === (current?.version ?? 0) && issuer) {
          return await issue({ ...job, issuer, keyType: entry.keyType }, current, signal, entry);
        }
        await journal.delete(job.id);
      }
      const stillNeeded = job.force
        ? current?.version === job.replacing?.version
        : !usable(current) || (await isRevoked(current, signal));
      if (!stillNeeded && current) return current;
      return await issue(job, current, signal);
    });
  }

  async function issue(
    job: Job,
    current: CertificateRecord | undefined,
    signal: AbortSignal,
    resumed?: JournalEntry,
  ): Promise<CertificateRecord> {
    const started = clock.now();
    try {
      // a revoked certificate's key may be compromised: never reuse it, never name it in `replaces`
      const revoked = await isRevoked(current, signal);
      let entry = resumed;
      if (!entry) {
        let privateKeyPem: string | null = null;
        let csrPem = job.csrPem;
        if (!csrPem) {
          privateKeyPem =
            policy.reuseKey && current?.privateKeyPem && !revoked
              ? current.privateKeyPem
              : await generatePrivateKey(job.keyType);
          csrPem = await createCsr(privateKeyPem, job.names);
        }
        // journaled before the CA sees the CSR: whatever it issues for this key can be finished later
        entry = await journal.begin(
          {
            id: job.id,
            names: job.names,
            issuerId: job.issuer.id,
            keyType: job.keyType,
            custody: job.csrPem ? "csr" : "server",
            csrPem,
            privateKeyPem,
            replacingVersion: current?.version ?? null,
            actor: job.actor,
          },
          signal,
        );
      }
      const { privateKeyPem, csrPem } = entry;
      const replaces =
        current?.ariCertId && hasRenewalInfo(job.issuer) && !revoked ? current.ariCertId : undefined;
      const issued = await job.issuer.issue(
        {
          names: job.names,
          csrPem,
          keyType: job.keyType,
          replaces,
          resumeOrderUrl: entry.orderUrl ?? undefined,
          onOrder: (orderUrl) => journal.update(job.id, { orderUrl, state: "ordered" }),
          onFinalize: () => journal.update(job.id, { state: "finalizing" }),
        },
        signal,
      );
      const info = parseCertificate(issued.certPem);
      let renewal: RenewalInfo | undefined;
      if (hasRenewalInfo(job.issuer)) {
        renewal = await job.issuer.renewalInfo(issued.certPem, signal).catch((e: unknown) => {
          logger.warn({ err: toCertfleetError(e).message, id: job.id }, "renewal info unavailable");
          return undefined;
        });
      }
      const ariWindow = renewal && { start: renewal.windowStart, end: renewal.windowEnd };
      const ariCertId = renewal?.certId ?? null;
      await checkLockStillOurs(job.id);
      const record = await certificates.putCertificate({
        id: job.id,
        names: job.names,
        issuerId: job.issuer.id,
        keyType: job.keyType,
        custody: entry.custody,
        certPem: issued.certPem,
        chainPem: issued.chainPem,
        privateKeyPem,
        notBefore: info.notBefore,
        notAfter: info.notAfter,
        serial: info.serial,
        ariCertId,
        owner: job.owner ?? current?.owner ?? null,
        renewAt: computeRenewAt(policy, {
          notBefore: info.notBefore,
          notAfter: info.notAfter,
          ariWindow,
          now: clock.now(),
          random,
        }),
      });
      await journal
        .delete(job.id)
        .catch((e: unknown) =>
          logger.warn({ err: toCertfleetError(e).message, id: job.id }, "could not clear the journal entry"),
        );
      recent.set(job.id, record);
      if (renewal)
        await ari
          .remember(job.id, renewal)
          .catch((e: unknown) =>
            logger.warn({ err: toCertfleetError(e).message, id: job.id }, "could not store renewal info"),
          );
      // CSR mode: keep the caller's CSR so the scheduler can renew without the caller's key.
      if (entry.custody === "csr") await kv.putValue("csr", job.id, csrPem);
      const type = current ? "certificate.renewed" : "certificate.issued";
      logger.info(
        {
          id: job.id,
          names: job.names,
          issuer: job.issuer.id,
          serial: info.serial,
          notAfter: info.notAfter,
          ms: clock.now().getTime() - started.getTime(),
        },
        type,
      );
      deps.onEvent?.({
        type,
        id: job.id,
        names: job.names,
        issuerId: job.issuer.id,
        serial: info.serial,
        notAfter: info.notAfter,
        actor: job.actor,
      });
      return record;
    } catch (e) {
      const err = toCertfleetError(e);
      // our own timeout or shutdown, or another replica finishing the order: not the CA's verdict
      if (err.code === "aborted" || err.code === "lock_lost") throw err;
      // The CA's verdict before anything was finalized: no certificate exists to pick up, so the
      // journal entry goes (left there, every renewal pass would resume it past the backoff below —
      // a new order a minute for a name the CA refuses). One that reached finalization stays: its
      // certificate may exist, and resuming fetches it rather than ordering again.
      const journaled = await journal.get(job.id).catch(() => undefined);
      if (journaled && journaled.state !== "finalizing") await journal.delete(job.id).catch(() => undefined);
      const previous = current?.lastFailure ?? (await certificates.getFailure(job.id).catch(() => undefined));
      const failureCount = (previous?.failureCount ?? 0) + 1;
      // Waiting cannot fix a non-retryable error (bad credentials, a refused name), but the config may
      // be fixed meanwhile: try again on a slow step of the schedule, never in a storm.
      const backoff = nextRetryDelayMs(failureCount, err, random);
      const delay = isRetryable(err) ? backoff : Math.max(backoff, NON_RETRYABLE_DELAY_MS);
      const nextAttemptAt = new Date(clock.now().getTime() + delay);
      await certificates
        .recordFailure(
          job.id,
          {
            code: err.code,
            message: err.message,
            at: clock.now(),
            failureCount,
            nextAttemptAt,
          },
          undefined,
          {
            names: job.names,
            issuerId: job.issuer.id,
            owner: job.owner ?? current?.owner ?? null,
          },
        )
        .catch((se: unknown) =>
          logger.error({ err: toCertfleetError(se).message, id: job.id }, "could not record failure"),
        );
      if (deps.configFingerprint) {
        // sealed: the digest covers credentials
        await kv
          .putValue(BACKOFF_CONFIG_NAMESPACE, job.id, deps.configFingerprint(job.issuer.id), { secret: true })
          .catch((se: unknown) =>
            logger.warn({ err: toCertfleetError(se).message, id: job.id }, "could not record the settings"),
          );
      }
      logger.warn(
        {
          id: job.id,
          names: job.names,
          issuer: job.issuer.id,
          code: err.code,
          internal: err.internal,
          failureCount,
        },
        "issuance failed",
      );
      deps.onEvent?.({
        type: "certificate.failed",
        id: job.id,
        names: job.names,
        issuerId: job.issuer.id,
        code: err.code,
        message: err.message,
        actor: job.actor,
      });
      throw err;
    }
  }

  /** True when the issuer/solver settings now differ from those in force at the last failure. */
  async function settingsChangedSince(id: string, issuerId: string, signal?: AbortSignal): Promise<boolean> {
    if (!deps.configFingerprint) return false;
    const then = await kv.getValue(BACKOFF_CONFIG_NAMESPACE, id, signal);
    return then !== undefined && then !== deps.configFingerprint(issuerId);
  }

  /**
   * After a failure, callers get the recorded error until the retry time instead of a new order —
   * unless the issuer or solver settings were changed since (the failure may have been their fault).
   */
  async function refuseDuringBackoff(
    job: Pick<Job, "id" | "issuer">,
    stored: CertificateRecord | undefined,
    signal?: AbortSignal,
  ) {
    const id = job.id;
    const failure = stored ? stored.lastFailure : await certificates.getFailure(id, signal);
    const wait = failure?.nextAttemptAt ? failure.nextAttemptAt.getTime() - clock.now().getTime() : 0;
    if (failure && wait > 0 && (await settingsChangedSince(id, job.issuer.id, signal))) {
      logger.info(
        { id, code: failure.code },
        "issuer or solver settings changed since the last failure: backoff lifted",
      );
      return;
    }
    if (failure && wait > 0) {
      throw new CertfleetError(
        "issuance_backoff",
        `the last attempt failed (${failure.code}: ${failure.message}); next attempt after ${failure.nextAttemptAt!.toISOString()}`,
        {
          status: 503,
          expose: true,
          retryAfter: Math.ceil(wait / 1000),
          details: {
            lastFailure: {
              code: failure.code,
              at: failure.at.toISOString(),
              failureCount: failure.failureCount,
            },
          },
        },
      );
    }
  }

  async function obtain(request: ObtainRequest, signal?: AbortSignal): Promise<ObtainResult> {
    const job = await describe(request);
    const hot = recent.get(job.id);
    if (hot && usable(hot)) return { record: hot, cached: true };
    const stored = await certificates.getCertificate(job.id, signal);
    if (usable(stored) && !(await isRevoked(stored, signal))) {
      recent.set(job.id, stored);
      return { record: stored, cached: true };
    }
    await refuseDuringBackoff(job, stored, signal);
    const { value } = await flights.do(job.id, () => run({ ...job, force: false }), signal);
    return { record: value, cached: false };
  }

  async function renew(
    request: ObtainRequest & { force?: boolean },
    signal?: AbortSignal,
  ): Promise<ObtainResult> {
    const job = await describe(request);
    const stored = await certificates.getCertificate(job.id, signal);
    if (stored && !request.force && clock.now() < stored.renewAt) {
      const wait = (stored.renewAt.getTime() - clock.now().getTime()) / 1000;
      throw new RateLimitedError(
        "renewal_not_due",
        `not inside the renewal window yet (renews from ${stored.renewAt.toISOString()})`,
        wait,
      );
    }
    // a failed certificate waits out its backoff like any request, unless an admin forces it
    if (!request.force) await refuseDuringBackoff(job, stored, signal);
    const { value } = await flights.do(
      job.id,
      () => run({ ...job, replacing: stored, force: stored !== undefined }),
      signal,
    );
    return { record: value, cached: false };
  }

  async function renewDue(signal?: AbortSignal): Promise<{ renewed: number; failed: number }> {
    let renewed = 0;
    let failed = 0;
    // First let CAs that moved a renewal window (RFC 9773) pull certificates forward into this pass.
    await ari.refresh(signal).catch((e: unknown) => {
      const err = toCertfleetError(e);
      if (err.code !== "aborted") logger.warn({ err: err.message }, "renewal info refresh failed");
    });
    await resumeJournaled(signal).catch((e: unknown) => {
      const err = toCertfleetError(e);
      if (err.code !== "aborted") logger.warn({ err: err.message }, "resuming journaled orders failed");
    });
    const due = await certificates.listDueCertificates(clock.now(), 100, signal);
    for (const record of due) {
      if (signal?.aborted) break;
      try {
        const issuer = deps.router.get(record.issuerId) ?? deps.router.select(record.names);
        const csrPem = record.custody === "csr" ? await kv.getValue("csr", record.id, signal) : undefined;
        if (record.custody === "csr" && !csrPem)
          throw new CertfleetError("csr_missing", "the CSR for this certificate is no longer stored");
        const job: Job = {
          id: record.id,
          names: record.names,
          keyType: record.keyType,
          csrPem,
          issuer,
          actor: null,
          owner: record.owner,
          replacing: record,
          force: true,
        };
        await waitFor(
          flights.do(record.id, () => run(job)),
          signal,
        );
        renewed++;
      } catch (e) {
        if (e instanceof CertfleetError && e.code === "aborted") break;
        failed++;
      }
    }
    return { renewed, failed };
  }

  async function revoke(
    target: RevokeTarget,
    options: RevokeOptions,
    signal?: AbortSignal,
  ): Promise<RevokeResult> {
    const id = "id" in target ? target.id : (await describe({ ...target, actor: options.actor })).id;
    const replace = options.replace ?? true;
    // like an order, this runs to the end once started: revoked but not replaced would leave a gap
    const work = AbortSignal.timeout(policy.issueTimeoutMs);
    const result = withCertificateLock(id, work, async (): Promise<RevokeResult> => {
      const current = await certificates.getCertificate(id, work);
      if (!current) {
        throw new CertfleetError("certificate_not_found", "certfleet holds no such certificate", {
          status: 404,
        });
      }
      const issuer = deps.router.get(current.issuerId);
      if (!issuer || !hasRevoke(issuer)) {
        throw new CertfleetError(
          "revocation_unsupported",
          `the issuer "${current.issuerId}" cannot revoke certificates`,
          { status: 422, details: { issuer: current.issuerId } },
        );
      }
      if (!(await isRevoked(current, work))) {
        try {
          await issuer.revoke(current.certPem, options.reason, work);
        } catch (e) {
          // revoked at the CA by an earlier attempt that did not get to record it: record it now
          if (!isCertfleetError(e) || e.code !== "already_revoked") throw e;
          logger.warn({ id, serial: current.serial }, "certificate was already revoked at its issuer");
        }
        await kv.putValue(
          REVOCATION_NAMESPACE,
          id,
          JSON.stringify({
            serial: current.serial,
            reason: options.reason,
            at: clock.now().toISOString(),
            actor: options.actor,
          }),
          {},
          work,
        );
      }
      recent.delete(id);
      logger.info(
        {
          id,
          names: current.names,
          issuer: current.issuerId,
          serial: current.serial,
          reason: options.reason,
        },
        "certificate.revoke",
      );
      deps.onEvent?.({
        type: "certificate.revoke",
        id,
        names: current.names,
        issuerId: current.issuerId,
        serial: current.serial,
        reason: options.reason,
        replace,
        actor: options.actor,
      });
      const revoked = { id, serial: current.serial, reason: options.reason };
      if (!replace) return { revoked };
      // due now: should the replacement fail, the scheduler retries it on the failure's schedule
      await certificates.rescheduleRenewal(id, current.version, clock.now(), work);
      const csrPem = current.custody === "csr" ? await kv.getValue("csr", id, work) : undefined;
      if (current.custody === "csr" && !csrPem)
        throw new CertfleetError("csr_missing", "the CSR for this certificate is no longer stored");
      const replacement = await issue(
        {
          id,
          names: current.names,
          keyType: current.keyType,
          csrPem,
          issuer: deps.router.get(current.issuerId) ?? deps.router.select(current.names),
          actor: options.actor,
          owner: current.owner,
          replacing: current,
          force: true,
        },
        current,
        work,
      );
      return { revoked, replacement };
    });
    // detached like issuance: a caller that gives up stops waiting, the revocation still completes
    result.catch(() => undefined);
    return waitFor(result, signal);
  }

  async function resumeJournaled(signal?: AbortSignal): Promise<number> {
    let started = 0;
    for (const entry of await journal.list(signal)) {
      if (flights.has(entry.id)) continue; // this process is on it
      const lockName = lockNameOf(entry.id);
      await releaseOwnStaleLocks();
      // a free lock means nobody is on it; a held one is a live process's (or ends with its lease).
      // Probed under another owner name: our own owner would "win" against our own running work.
      const probe = `${owner}:probe`;
      if (!(await locks.tryLock(lockName, probe, lockTtl, signal))) continue;
      await locks.unlock(lockName, probe);
      if (flights.has(entry.id)) continue;
      const issuer = deps.router.get(entry.issuerId) ?? deps.router.select(entry.names);
      logger.info(
        { id: entry.id, names: entry.names, order: entry.orderUrl, state: entry.state },
        "resuming journaled issuance",
      );
      started++;
      const job: Job = {
        id: entry.id,
        names: entry.names,
        keyType: entry.keyType,
        csrPem: entry.custody === "csr" ? entry.csrPem : undefined,
        issuer,
        actor: entry.actor,
        owner: null, // the stored row (or failure) keeps the owner of the first attempt
        force: true,
      };
      void flights
        .do(entry.id, () => run(job))
        .catch((e: unknown) => {
          const err = toCertfleetError(e);
          logger.warn({ id: entry.id, code: err.code }, "journaled issuance did not finish");
        });
    }
    return started;
  }

  function routedIssuerId(names: readonly string[]): string | undefined {
    try {
      return deps.router.select(names).id;
    } catch {
      return undefined;
    }
  }

  async function clearStaleBackoffs(signal?: AbortSignal): Promise<number> {
    if (!deps.configFingerprint) return 0;
    const now = clock.now();
    const failed = [
      // a request never issued goes to whichever issuer its names route to now
      ...(await certificates.listUnissued(signal)).map((u) => ({
        ...u,
        issuerId: routedIssuerId(u.names) ?? u.issuerId,
        requested: u,
      })),
      ...(await certificates.listCertificates(signal)).flatMap((c) =>
        c.lastFailure
          ? [{ id: c.id, issuerId: c.issuerId, lastFailure: c.lastFailure, requested: undefined }]
          : [],
      ),
    ];
    let cleared = 0;
    for (const f of failed) {
      if (!f.lastFailure.nextAttemptAt || f.lastFailure.nextAttemptAt <= now) continue;
      if (!(await settingsChangedSince(f.id, f.issuerId, signal))) continue;
      await certificates.recordFailure(f.id, { ...f.lastFailure, nextAttemptAt: null }, signal, f.requested);
      cleared++;
    }
    if (cleared > 0) logger.info({ cleared }, "issuer or solver settings changed: backoffs lifted");
    return cleared;
  }

  async function drain(timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (flights.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, Math.min(100, Math.max(1, deadline - Date.now()))));
    }
    if (flights.size > 0)
      logger.warn({ running: flights.size }, "issuances still running at shutdown; journaled");
    return flights.size;
  }

  return {
    obtain,
    renew,
    renewDue,
    revoke,
    running: () => flights.size,
    resumeJournaled,
    drain,
    clearStaleBackoffs,
  };
}
