import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/core/logger.js";
import { renderCertificateSection } from "../../src/server/metrics.js";
import { createStorage } from "../../src/storage/create-storage.js";
import { openSqlDatabase } from "../../src/storage/dialect.js";
import { parseStorageUrl } from "../../src/storage/storage-url.js";
import type { NewCertificate, Storage } from "../../src/storage/storage.js";

/**
 * /metrics at fleet size: aggregates cover every certificate, per-certificate series only the ones
 * that need attention, capped, on both databases.
 */
const DAY = 86_400_000;
const NOW = new Date(Date.UTC(2031, 5, 1));
const BUCKETS = [0, 7 * DAY, 30 * DAY];

function cert(id: string, issuerId: string, daysLeft: number, renewInDays: number): NewCertificate {
  const notAfter = new Date(NOW.getTime() + daysLeft * DAY);
  return {
    id,
    names: [`${id}.example`],
    issuerId,
    keyType: "ec256",
    custody: "csr",
    certPem: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    chainPem: "",
    privateKeyPem: null,
    notBefore: new Date(notAfter.getTime() - 90 * DAY),
    notAfter,
    serial: "01",
    ariCertId: null,
    renewAt: new Date(NOW.getTime() + renewInDays * DAY),
  };
}

/** 20 healthy (10 per issuer), 3 inside the renewal window, 1 failing, 1 expired. */
async function seed(storage: Storage) {
  await storage.migrate();
  for (let i = 0; i < 20; i++)
    await storage.certificates.putCertificate(cert(`ok${i}`, i % 2 ? "acme" : "embedded", 60 + i, 30 + i));
  for (let i = 0; i < 3; i++) await storage.certificates.putCertificate(cert(`due${i}`, "acme", 20 + i, -1));
  await storage.certificates.putCertificate(cert("failing", "acme", 10, -5));
  await storage.certificates.recordFailure("failing", {
    code: "acme_rejected",
    message: "no",
    at: NOW,
    failureCount: 4,
    nextAttemptAt: null,
  });
  await storage.certificates.putCertificate(cert("gone", "embedded", -2, -30));
}

function samples(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    const m = /^(\w+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m?.[1] === name) out.set(m[2] ?? "", Number(m[3]));
  }
  return out;
}

for (const kind of ["SQLite", "PostgreSQL"] as const) {
  describe(`certificate metrics on ${kind}`, () => {
    let storage: Storage;
    let cleanup: () => Promise<void>;

    beforeAll(async () => {
      if (kind === "SQLite") {
        const dir = await mkdtemp(join(tmpdir(), "cf-certmetrics-"));
        storage = createStorage({ url: `sqlite:${join(dir, "db.sqlite")}`, encryptionKey: randomBytes(32) });
        cleanup = async () => {
          await storage.close();
          await rm(dir, { recursive: true, force: true });
        };
      } else {
        const schema = `certfleet_certmetrics_${process.pid}_${Date.now().toString(36)}`;
        const url = `postgres://postgres@127.0.0.1:5432/test?schema=${schema}`;
        storage = createStorage({ url, encryptionKey: randomBytes(32) });
        cleanup = async () => {
          await storage.close();
          const raw = openSqlDatabase(parseStorageUrl(url), silentLogger()).db;
          try {
            await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(raw);
          } finally {
            await raw.destroy();
          }
        };
      }
      await seed(storage);
    }, 60_000);
    afterAll(async () => cleanup?.());

    it("counts every certificate by issuer and status, with a time-to-expiry histogram", async () => {
      const stats = await storage.certificates.certificateStatistics({
        at: NOW,
        expiryBucketsMs: BUCKETS,
        attentionLimit: 100,
      });
      const text = renderCertificateSection(stats, BUCKETS);
      const counts = samples(text, "certfleet_certificates");
      expect(Object.fromEntries(counts)).toEqual({
        '{issuer="acme",status="valid"}': 10,
        '{issuer="acme",status="renewal_due"}': 3,
        '{issuer="acme",status="failing"}': 1,
        '{issuer="embedded",status="valid"}': 10,
        '{issuer="embedded",status="expired"}': 1,
      });
      const earliest = samples(text, "certfleet_certificate_earliest_expiry_timestamp_seconds");
      expect(earliest.get('{issuer="embedded"}')).toBe((NOW.getTime() - 2 * DAY) / 1000);
      expect(earliest.get('{issuer="acme"}')).toBe((NOW.getTime() + 10 * DAY) / 1000);
      const buckets = samples(text, "certfleet_certificate_time_to_expiry_seconds_bucket");
      expect(buckets.get('{issuer="embedded",le="0"}')).toBe(1);
      expect(buckets.get('{issuer="acme",le="604800"}')).toBe(0);
      expect(buckets.get('{issuer="acme",le="2592000"}')).toBe(4);
      expect(buckets.get('{issuer="acme",le="+Inf"}')).toBe(14);
      expect(samples(text, "certfleet_certificate_time_to_expiry_seconds_count").get('{issuer="acme"}')).toBe(
        14,
      );
    });

    it("gives per-certificate series only to failing, due and expired certificates", async () => {
      const stats = await storage.certificates.certificateStatistics({
        at: NOW,
        expiryBucketsMs: BUCKETS,
        attentionLimit: 100,
      });
      const text = renderCertificateSection(stats, BUCKETS);
      const expiry = samples(text, "certfleet_certificate_expiry_timestamp_seconds");
      expect([...expiry.keys()].map((k) => /id="(\w+)"/.exec(k)![1]).sort()).toEqual([
        "due0",
        "due1",
        "due2",
        "failing",
        "gone",
      ]);
      const failures = samples(text, "certfleet_certificate_consecutive_failures");
      expect(failures.get('{id="failing",name="failing.example",issuer="acme"}')).toBe(4);
      expect(samples(text, "certfleet_certificate_series_omitted").get("")).toBe(0);
      expect(text).not.toContain("BEGIN CERTIFICATE");
    });

    it("caps the per-certificate series, soonest expiry first, and says how many it left out", async () => {
      const stats = await storage.certificates.certificateStatistics({
        at: NOW,
        expiryBucketsMs: BUCKETS,
        attentionLimit: 2,
      });
      const text = renderCertificateSection(stats, BUCKETS);
      const ids = [...samples(text, "certfleet_certificate_lifetime_seconds").keys()].map(
        (k) => /id="(\w+)"/.exec(k)![1],
      );
      expect(ids).toEqual(["gone", "failing"]);
      expect(samples(text, "certfleet_certificate_series_omitted").get("")).toBe(3);
      // aggregates are not capped
      expect(samples(text, "certfleet_certificates").get('{issuer="acme",status="valid"}')).toBe(10);
    });

    it("reports every certificate when asked to (small fleets), still capped", async () => {
      const all = await storage.certificates.certificateStatistics({
        at: NOW,
        expiryBucketsMs: BUCKETS,
        attentionLimit: 1000,
        allCertificates: true,
      });
      expect(all.attention).toHaveLength(25);
      const capped = await storage.certificates.certificateStatistics({
        at: NOW,
        expiryBucketsMs: BUCKETS,
        attentionLimit: 10,
        allCertificates: true,
      });
      expect(capped.attention).toHaveLength(10);
      expect(capped.attentionOmitted).toBe(15);
    });
  });
}
