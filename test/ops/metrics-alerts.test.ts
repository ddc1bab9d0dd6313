import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { startCertfleet, type CertfleetProcess } from "../harness/certfleet-process.js";
import { evaluate, firing, parseScrape, type Sample } from "./promql-lite.js";

/**
 * The alert rules in docs/metrics.md, evaluated on real scrapes of a 6-day and a 90-day certificate at
 * simulated times: they follow each certificate's lifetime, where a fixed "< 7 days" would page for
 * the short-lived one from the moment it is issued.
 */
const DAY = 86_400;
let rules: Record<string, string>;
let samples: Sample[];
let processText: string;
const servers: CertfleetProcess[] = [];

async function issueAndScrape(leafValidity: string, domain: string): Promise<string> {
  const cf = await startCertfleet({
    config: {
      issuers: [{ id: "embedded", type: "embedded", leafValidity }],
      logging: { level: "warn" },
      // fresh certificates need no attention yet; the rules are evaluated at simulated later times
      metrics: { certificateSeries: "all" },
    },
  });
  servers.push(cf);
  expect((await cf.post("/api/certificate", { domain })).status).toBe(200);
  const scrape = await cf.get("/metrics");
  expect(scrape.status).toBe(200);
  return scrape.body as string;
}

beforeAll(async () => {
  const markdown = await readFile(new URL("../../docs/metrics.md", import.meta.url), "utf8");
  const block = /```yaml\n(groups:[\s\S]*?)```/.exec(markdown)![1]!;
  const doc = parse(block) as { groups: { rules: { alert: string; expr: string }[] }[] };
  rules = Object.fromEntries(doc.groups.flatMap((g) => g.rules).map((r) => [r.alert, r.expr]));
  const short = await issueAndScrape("6d", "short.example.internal");
  const long = await issueAndScrape("90d", "long.example.internal");
  processText = short;
  samples = [...parseScrape(short), ...parseScrape(long)].filter((s) =>
    s.name.startsWith("certfleet_certificate_"),
  );
}, 120_000);
afterAll(async () => {
  for (const s of servers) await s.stop();
});

function notBefore(name: string): number {
  const of = (metric: string) => samples.find((s) => s.name === metric && s.labels.name === name)!.value;
  return of("certfleet_certificate_expiry_timestamp_seconds") - of("certfleet_certificate_lifetime_seconds");
}

describe("docs/metrics.md alert rules on a real scrape", () => {
  it("exposes the lifetime and Node's process metrics under their standard names", () => {
    const lifetimes = samples.filter((s) => s.name === "certfleet_certificate_lifetime_seconds");
    expect(Object.fromEntries(lifetimes.map((s) => [s.labels.name, Math.round(s.value / DAY)]))).toEqual({
      "short.example.internal": 6,
      "long.example.internal": 90,
    });
    expect(processText).toMatch(/^process_cpu_seconds_total /m);
    expect(processText).toMatch(/^nodejs_eventloop_lag_seconds /m);
    expect(processText).not.toMatch(/^certfleet_process_/m);
  });

  it("nothing fires for freshly issued certificates, where a fixed 7-day rule would page", () => {
    const now = Date.now() / 1000;
    for (const [alert, expr] of Object.entries(rules)) {
      if (expr.includes("rate(")) continue; // counters: not about lifetimes
      expect(firing(expr, samples, now), alert).toEqual([]);
    }
    const naive = "max by (id, name) (certfleet_certificate_expiry_timestamp_seconds) - time() < 7 * 86400";
    expect(firing(naive, samples, now)).toEqual(["short.example.internal"]);
  });

  it("CertificateRenewalOverdue: past the renewal time by 5 % of the lifetime", () => {
    const expr = rules.CertificateRenewalOverdue!;
    const short = notBefore("short.example.internal");
    // renewal is due with a third of the lifetime left (4 days in, minus jitter)
    expect(firing(expr, samples, short + 3.5 * DAY)).toEqual([]);
    expect(firing(expr, samples, short + 4.5 * DAY)).toEqual(["short.example.internal"]);
    const long = notBefore("long.example.internal");
    expect(firing(expr, samples, long + 50 * DAY)).not.toContain("long.example.internal");
    expect(firing(expr, samples, long + 66 * DAY)).toContain("long.example.internal");
  });

  it("CertificateExpiresSoon: less than 15 % of the lifetime left", () => {
    const expr = rules.CertificateExpiresSoon!;
    const short = notBefore("short.example.internal");
    expect(firing(expr, samples, short + 5 * DAY)).toEqual([]); // 1 of 6 days left: 16.7 %
    expect(firing(expr, samples, short + 5.2 * DAY)).toEqual(["short.example.internal"]);
    const long = notBefore("long.example.internal");
    expect(firing(expr, samples, long + 75 * DAY)).not.toContain("long.example.internal"); // 15 days left
    expect(firing(expr, samples, long + 78 * DAY)).toContain("long.example.internal"); // 12 days left
    // and after expiry it keeps firing
    expect(firing(expr, samples, long + 91 * DAY)).toContain("long.example.internal");
  });

  it("CertificateRenewalFailing reads the failure gauge", () => {
    expect(firing(rules.CertificateRenewalFailing!, samples, Date.now() / 1000)).toEqual([]);
    const failing = samples.map((s) =>
      s.name === "certfleet_certificate_consecutive_failures" && s.labels.name === "long.example.internal"
        ? { ...s, value: 3 }
        : s,
    );
    expect(firing(rules.CertificateRenewalFailing!, failing, Date.now() / 1000)).toEqual([
      "long.example.internal",
    ]);
    expect(evaluate("1 + 2 * 3", samples, 0)).toBe(7);
  });
});
