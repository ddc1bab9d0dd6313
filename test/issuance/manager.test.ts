import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createManualClock } from "../../src/core/clock.js";
import { UpstreamError } from "../../src/core/errors.js";
import { silentLogger } from "../../src/core/logger.js";
import { createEmbeddedCa, type EmbeddedCa } from "../../src/internal-ca/embedded-ca.js";
import { createIssuerRouter } from "../../src/issuance/issuer-routing.js";
import type { IssueRequest, Issuer, RenewalInfo, RenewalInfoSource } from "../../src/issuance/issuer.js";
import { createCertificateManager, type ManagerDeps } from "../../src/issuance/manager.js";
import { createStorage } from "../../src/storage/create-storage.js";
import type { Storage } from "../../src/storage/storage.js";

const policy = {
  renewWhenRemaining: 1 / 3,
  renewJitter: 0,
  keyType: "ec256" as const,
  reuseKey: false,
  issueTimeoutMs: 30_000,
};

/** The real embedded CA behind a counter (and optional failure / ARI behaviour). */
function counting(ca: EmbeddedCa, extra: Partial<Issuer & RenewalInfoSource> & { failWith?: Error } = {}) {
  const requests: IssueRequest[] = [];
  const issuer: Issuer & Partial<RenewalInfoSource> = {
    id: "counted",
    async issue(request, signal) {
      requests.push(request);
      await new Promise((r) => setTimeout(r, 30)); // an order takes time: let concurrent callers pile up
      if (extra.failWith) throw extra.failWith;
      return ca.issue(request, signal);
    },
    ...(extra.renewalInfo ? { renewalInfo: extra.renewalInfo } : {}),
  };
  return { issuer, requests };
}

describe("certificate manager (real SQLite storage, real embedded CA)", () => {
  let dir: string;
  let storage: Storage;
  let ca: EmbeddedCa;
  const clock = createManualClock(new Date());
  const key = randomBytes(32);

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "cf-manager-"));
    storage = createStorage({ url: `sqlite:${join(dir, "db.sqlite")}`, encryptionKey: key });
    await storage.migrate();
    clock.set(new Date());
    ca = await createEmbeddedCa({
      store: storage.kv,
      clock,
      logger: silentLogger(),
      options: { leafValidityDays: 30 },
    });
  });
  afterEach(async () => {
    await storage.close();
    await rm(dir, { recursive: true, force: true });
  });

  function manager(issuer: Issuer, over: Partial<ManagerDeps> = {}) {
    return createCertificateManager({
      certificates: storage.certificates,
      locks: storage.locks,
      kv: storage.kv,
      journal: storage.journal,
      router: createIssuerRouter([issuer], [], issuer.id),
      clock,
      logger: silentLogger(),
      policy,
      ...over,
    });
  }

  it("50 concurrent requests for a new name cause exactly one order", async () => {
    const { issuer, requests } = counting(ca);
    const m = manager(issuer);
    const results = await Promise.all(
      Array.from({ length: 50 }, () => m.obtain({ names: ["new.example.com"] })),
    );
    expect(requests).toHaveLength(1);
    expect(new Set(results.map((r) => r.record.serial)).size).toBe(1);
    expect((await m.obtain({ names: ["new.example.com"] })).cached).toBe(true);
  });

  it("two replicas on one database order once (storage lock, then check again)", async () => {
    const { issuer, requests } = counting(ca);
    const other = createStorage({ url: `sqlite:${join(dir, "db.sqlite")}`, encryptionKey: key });
    try {
      const a = manager(issuer);
      const b = manager(issuer, { certificates: other.certificates, locks: other.locks, kv: other.kv });
      const results = await Promise.all([
        a.obtain({ names: ["ha.example.com"] }),
        b.obtain({ names: ["ha.example.com"] }),
      ]);
      expect(requests).toHaveLength(1);
      expect(results[0].record.serial).toBe(results[1].record.serial);
    } finally {
      await other.close();
    }
  });

  it("a caller that disconnects does not lose the certificate", async () => {
    const { issuer, requests } = counting(ca);
    const m = manager(issuer);
    const ac = new AbortController();
    const pending = m.obtain({ names: ["gone.example.com"] }, ac.signal);
    while (requests.length === 0) await new Promise((r) => setTimeout(r, 2)); // the order has started
    ac.abort(new Error("client went away"));
    await expect(pending).rejects.toThrow("client went away");
    await new Promise((r) => setTimeout(r, 300));
    const later = await m.obtain({ names: ["gone.example.com"] });
    expect(later.cached).toBe(true);
    expect(requests).toHaveLength(1);
  });

  it("renews due certificates by time with a fresh key, keeping the old version in history", async () => {
    const { issuer, requests } = counting(ca);
    const m = manager(issuer);
    const first = await m.obtain({ names: ["due.example.com"] });
    expect((await m.renewDue()).renewed).toBe(0);
    clock.set(new Date(first.record.renewAt.getTime() + 1000));
    expect(await m.renewDue()).toEqual({ renewed: 1, failed: 0 });
    const now = await storage.certificates.getCertificate(first.record.id);
    expect(now!.serial).not.toBe(first.record.serial);
    expect(now!.privateKeyPem).not.toBe(first.record.privateKeyPem);
    expect(requests).toHaveLength(2);
    const history = await storage.certificates.listCertificateHistory(first.record.id);
    expect(history.map((h) => h.serial)).toContain(first.record.serial);
  });

  it("keeps the key across renewals when reuseKey is set", async () => {
    const { issuer } = counting(ca);
    const m = manager(issuer, { policy: { ...policy, reuseKey: true } });
    const first = await m.obtain({ names: ["reuse.example.com"] });
    const renewed = await m.renew({ names: ["reuse.example.com"], force: true });
    expect(renewed.record.serial).not.toBe(first.record.serial);
    expect(renewed.record.privateKeyPem).toBe(first.record.privateKeyPem);
  });

  it("refuses renewal before the window with renewal_not_due", async () => {
    const { issuer } = counting(ca);
    const m = manager(issuer);
    await m.obtain({ names: ["early.example.com"] });
    await expect(m.renew({ names: ["early.example.com"] })).rejects.toMatchObject({
      code: "renewal_not_due",
      status: 429,
    });
  });

  it("records the last failure and schedules the retry after an upstream Retry-After", async () => {
    const { issuer } = counting(ca);
    const m = manager(issuer);
    const first = await m.obtain({ names: ["fail.example.com"] });
    clock.set(new Date(first.record.renewAt.getTime() + 1000));
    const failing = counting(ca, {
      failWith: new UpstreamError("acme_rate_limited", "too many certificates", { retryAfter: 3600 }),
    });
    const m2 = manager({ ...failing.issuer, id: "counted" });
    expect(await m2.renewDue()).toEqual({ renewed: 0, failed: 1 });
    const stored = await storage.certificates.getCertificate(first.record.id);
    expect(stored!.serial).toBe(first.record.serial); // the old certificate is still served
    expect(stored!.lastFailure).toMatchObject({ code: "acme_rate_limited", failureCount: 1 });
    expect(stored!.lastFailure!.nextAttemptAt!.getTime()).toBeGreaterThanOrEqual(
      clock.now().getTime() + 3_600_000,
    );
    expect(await m2.renewDue()).toEqual({ renewed: 0, failed: 0 }); // not due again before the retry time
  });

  it("after a failure, callers get the recorded error until the retry time: no retry storm", async () => {
    const failing = counting(ca, {
      failWith: new UpstreamError("dns_provider_auth", "cloudflare: bad token for zone example.com", {
        retryable: false,
      }),
    });
    const m = manager(failing.issuer);
    await expect(m.obtain({ names: ["storm.example.com"] })).rejects.toMatchObject({
      code: "dns_provider_auth",
    });
    const again = await m.obtain({ names: ["storm.example.com"] }).catch((e: unknown) => e);
    expect(again).toMatchObject({
      code: "issuance_backoff",
      status: 503,
      details: { lastFailure: { code: "dns_provider_auth" } },
    });
    expect((again as { retryAfter: number }).retryAfter).toBeGreaterThanOrEqual(3600);
    expect(failing.requests).toHaveLength(1);
    clock.advance(2 * 3_600_000);
    await expect(m.obtain({ names: ["storm.example.com"] })).rejects.toMatchObject({
      code: "dns_provider_auth",
    });
    expect(failing.requests).toHaveLength(2);
  });

  it("a change of the issuer's or solver's settings lifts a backoff; renew honours it unless forced", async () => {
    const extra: { failWith?: Error } = {
      failWith: new UpstreamError("acme_no_solver", "*.wild.example.com needs a DNS provider", {
        retryable: false,
        status: 422,
      }),
    };
    const failing = counting(ca, extra);
    let settings = "without a DNS provider";
    const m = manager(failing.issuer, { configFingerprint: () => settings });
    const names = ["wild.example.com"];
    await expect(m.obtain({ names })).rejects.toMatchObject({ code: "acme_no_solver" });
    await expect(m.obtain({ names })).rejects.toMatchObject({ code: "issuance_backoff" });
    // an ordinary renew call does not get around the backoff; an admin's forced one does
    await expect(m.renew({ names })).rejects.toMatchObject({ code: "issuance_backoff" });
    expect(failing.requests).toHaveLength(1);
    await expect(m.renew({ names, force: true })).rejects.toMatchObject({ code: "acme_no_solver" });
    expect(failing.requests).toHaveLength(2);
    // nothing changed: a restart keeps the backoff
    const restarted = manager(failing.issuer, { configFingerprint: () => settings });
    expect(await restarted.clearStaleBackoffs!()).toBe(0);
    await expect(restarted.obtain({ names })).rejects.toMatchObject({ code: "issuance_backoff" });

    // the operator adds the DNS provider: the next request is tried at once, well inside the hour
    settings = "with a DNS provider";
    delete extra.failWith;
    const fixed = await restarted.obtain({ names });
    expect(fixed.cached).toBe(false);
    expect(failing.requests).toHaveLength(3);
  });

  it("a CA's refusal before finalization leaves no journal entry: renewal passes do not order again", async () => {
    const refusing = counting(ca, {
      failWith: new UpstreamError("acme_authorization_failed", "the CA refuses this name", {
        retryable: false,
      }),
    });
    const m = manager(refusing.issuer);
    await expect(m.obtain({ names: ["refused.example.com"] })).rejects.toMatchObject({
      code: "acme_authorization_failed",
    });
    expect(await storage.journal.list()).toEqual([]);
    // the scheduler's pass (which resumes journaled orders) waits out the backoff like everyone
    expect(await m.resumeJournaled!()).toBe(0);
    await m.renewDue();
    expect(refusing.requests).toHaveLength(1);
  });

  it("a failure after finalization keeps the journal entry, so the certificate is fetched, not reordered", async () => {
    let fail = true;
    const issuer: Issuer = {
      id: "counted",
      async issue(request, signal) {
        await request.onOrder?.("https://ca.example/order/1");
        await request.onFinalize?.();
        if (fail) throw new UpstreamError("acme_unreachable", "connection reset", { retryable: true });
        return ca.issue(request, signal);
      },
    };
    const m = manager(issuer);
    await expect(m.obtain({ names: ["finalized.example.com"] })).rejects.toMatchObject({
      code: "acme_unreachable",
    });
    const [entry] = await storage.journal.list();
    expect(entry).toMatchObject({ state: "finalizing", orderUrl: "https://ca.example/order/1" });
    fail = false;
    expect(await m.resumeJournaled!()).toBe(1);
    for (let i = 0; i < 100 && (await storage.journal.list()).length > 0; i++)
      await new Promise((r) => setTimeout(r, 20));
    expect(await storage.journal.list()).toEqual([]);
    const stored = await storage.certificates.getCertificate(entry!.id);
    expect(stored?.names).toEqual(["finalized.example.com"]);
  });

  it("on start, a failed renewal whose settings changed is due again at once", async () => {
    const extra: { failWith?: Error } = {};
    const { issuer, requests } = counting(ca, extra);
    let settings = "v1";
    const m = manager(issuer, { configFingerprint: () => settings });
    const first = await m.obtain({ names: ["sweep.example.com"] });
    clock.set(first.record.renewAt);
    extra.failWith = new UpstreamError("dns_provider_auth", "bad token", { retryable: false });
    expect(await m.renewDue()).toEqual({ renewed: 0, failed: 1 });
    expect(await m.renewDue()).toEqual({ renewed: 0, failed: 0 }); // backing off for an hour
    settings = "v2";
    delete extra.failWith;
    expect(await m.clearStaleBackoffs!()).toBe(1);
    expect(await m.renewDue()).toEqual({ renewed: 1, failed: 0 });
    expect(requests).toHaveLength(3);
    const stored = await storage.certificates.getCertificate(first.record.id);
    expect(stored!.serial).not.toBe(first.record.serial);
    expect(stored!.lastFailure).toBeNull();
  });

  it("uses the CA's ARI window and sends `replaces` on renewal", async () => {
    const windows: RenewalInfo[] = [];
    const renewalInfo = async (certPem: string): Promise<RenewalInfo> => {
      const start = new Date(clock.now().getTime() + 86_400_000);
      const info = {
        certId: "aki." + Buffer.from(certPem.slice(-40)).toString("base64url"),
        windowStart: start,
        windowEnd: new Date(start.getTime() + 3_600_000),
      };
      windows.push(info);
      return info;
    };
    const { issuer, requests } = counting(ca, { renewalInfo });
    const m = manager(issuer);
    const first = await m.obtain({ names: ["ari.example.com"] });
    expect(first.record.ariCertId).toBe(windows[0]!.certId);
    expect(first.record.renewAt.getTime()).toBeGreaterThanOrEqual(windows[0]!.windowStart.getTime());
    expect(first.record.renewAt.getTime()).toBeLessThanOrEqual(windows[0]!.windowEnd.getTime());
    clock.set(new Date(first.record.renewAt.getTime() + 1));
    await m.renewDue();
    expect(requests[1]!.replaces).toBe(windows[0]!.certId);
  });

  it("keeps polling ARI: an unchanged window keeps its moment, a window moved into the past renews now", async () => {
    let window = { start: 86_400_000, end: 2 * 86_400_000 }; // offsets from issuance
    const issuedAt = clock.now().getTime();
    const polls: string[] = [];
    const renewalInfo = async (certPem: string): Promise<RenewalInfo> => {
      polls.push(certPem);
      return {
        certId: "aki." + Buffer.from(certPem.slice(-40)).toString("base64url"),
        windowStart: new Date(issuedAt + window.start),
        windowEnd: new Date(issuedAt + window.end),
        retryAfterSeconds: 3600,
      };
    };
    const { issuer, requests } = counting(ca, { renewalInfo });
    const m = manager(issuer, { random: () => 0.5 });
    const first = await m.obtain({ names: ["moved.example.com"] });
    expect(first.record.renewAt.getTime()).toBe(issuedAt + 1.5 * 86_400_000);
    expect(polls).toHaveLength(1);

    // Before Retry-After has passed nobody asks the CA again.
    clock.set(new Date(issuedAt + 1800_000));
    expect(await m.renewDue()).toEqual({ renewed: 0, failed: 0 });
    expect(polls).toHaveLength(1);

    // After it: asked again; the same window keeps the renewal time.
    clock.set(new Date(issuedAt + 3601_000));
    expect(await m.renewDue()).toEqual({ renewed: 0, failed: 0 });
    expect(polls).toHaveLength(2);
    expect((await storage.certificates.getCertificate(first.record.id))?.renewAt).toEqual(
      first.record.renewAt,
    );

    // The CA revokes: the window moves into the past, and the next pass renews with `replaces`.
    window = { start: -120_000, end: -60_000 };
    clock.set(new Date(issuedAt + 2 * 3601_000));
    expect(await m.renewDue()).toEqual({ renewed: 1, failed: 0 });
    expect(polls).toHaveLength(4); // the moved window, then the new certificate's first window
    expect(requests).toHaveLength(2);
    expect(requests[1]!.replaces).toBe(first.record.ariCertId);
    const renewed = await storage.certificates.getCertificate(first.record.id);
    expect(renewed?.version).toBe(2);
    expect(renewed?.serial).not.toBe(first.record.serial);
  });
});
