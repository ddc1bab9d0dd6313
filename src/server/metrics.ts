import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { constantTimeEqual } from "../auth/secrets.js";
import type { Clock } from "../core/clock.js";
import { ForbiddenError } from "../core/errors.js";
import type {
  AuditEvent,
  CertificateStatistics,
  CertificateStore,
  CertificateSummary,
} from "../storage/storage.js";
import { authRequestOf, requestSignal, type Authenticate } from "./auth-hook.js";

/**
 * Prometheus metrics, one registry per server (tests run several in one process):
 *
 * - `certfleet_events_total{type,outcome,method}`: every audited event — authentication decisions,
 *   issuances, renewals, failures, downloads, ACME and admin actions. Types are a fixed set, so the
 *   label stays small.
 * - `certfleet_http_requests_total` / `certfleet_http_request_duration_seconds` by route template.
 * - `certfleet_certificate_{expiry,renewal}_timestamp_seconds` and
 *   `certfleet_certificate_consecutive_failures` per stored certificate, read from storage at scrape
 *   time (cached briefly, so several scrapers cost one query), with `..._lifetime_seconds`
 *   (notAfter − notBefore) so alerts can be relative to each certificate's lifetime: a 6-day
 *   certificate must not page at "< 7 days" (docs/metrics.md has the rules).
 * - Node's process metrics under their standard names (`process_*`, `nodejs_*`), no prefix.
 *
 * Reading them needs the admin permission or the configured scrape token (`Authorization: Bearer`),
 * compared in constant time: certificate names and failure counts are not for everyone.
 */
export interface Metrics {
  readonly registry: Registry;
  /** Count one audited event (wraps the audit sink). */
  countEvent(event: AuditEvent): void;
  /** Root-level onResponse hook: request counts and latency by route. */
  onResponse(request: FastifyRequest, reply: FastifyReply): Promise<void>;
  /** The scrape route. */
  routes(deps: {
    authenticate: Authenticate;
    path: string;
    token?: string;
  }): (app: FastifyInstance) => Promise<void>;
}

/** Scrapes within this long share one storage query and one rendering. */
const SNAPSHOT_TTL_MS = 5_000;
/** Upper bounds of the time-to-expiry histogram, seconds (0: expired). */
const EXPIRY_BUCKETS_S = [0, 1, 3, 7, 14, 30, 60, 90, 180, 365].map((d) => d * 86_400);

export function createMetrics(deps: {
  storage: Pick<CertificateStore, "certificateStatistics">;
  clock: Clock;
  version: string;
  /** At most this many certificates get per-certificate series (metrics.certificateSeriesLimit). */
  certificateSeriesLimit: number;
  /** "attention": only failing certificates and those inside their renewal window; "all": every one. */
  certificateSeries: "attention" | "all";
}): Metrics {
  const registry = new Registry();
  // standard names (process_*, nodejs_*), so the usual Node.js dashboards work unchanged
  collectDefaultMetrics({ register: registry });

  new Gauge({
    name: "certfleet_build_info",
    help: "Always 1; the version label says which certfleet runs",
    labelNames: ["version"],
    registers: [registry],
  }).set({ version: deps.version }, 1);

  const events = new Counter({
    name: "certfleet_events_total",
    help: "Audited events by type and outcome (auth.allow, auth.deny, certificate.issued, ...)",
    labelNames: ["type", "outcome", "method"],
    registers: [registry],
  });
  const requests = new Counter({
    name: "certfleet_http_requests_total",
    help: "HTTP requests by method, route template and status code",
    labelNames: ["method", "route", "status"],
    registers: [registry],
  });
  const latency = new Histogram({
    name: "certfleet_http_request_duration_seconds",
    help: "HTTP request duration by method and route template",
    labelNames: ["method", "route"],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30, 120],
    registers: [registry],
  });

  /** The certificate section, rendered once per SNAPSHOT_TTL_MS however many scrapers ask. */
  let snapshot: { at: number; text: Promise<string> } | undefined;
  function certificateSection(): Promise<string> {
    const now = deps.clock.now();
    if (!snapshot || now.getTime() - snapshot.at > SNAPSHOT_TTL_MS) {
      const text = deps.storage
        .certificateStatistics(
          {
            at: now,
            expiryBucketsMs: EXPIRY_BUCKETS_S.map((s) => s * 1000),
            attentionLimit: deps.certificateSeriesLimit,
            allCertificates: deps.certificateSeries === "all",
          },
          AbortSignal.timeout(10_000),
        )
        .then((stats) => renderCertificateSection(stats));
      snapshot = { at: now.getTime(), text };
      text.catch(() => (snapshot = undefined)); // a failed query is not cached
    }
    return snapshot.text;
  }

  return {
    registry,
    countEvent(event) {
      events.inc({ type: event.type, outcome: event.outcome, method: event.method ?? "" });
    },
    async onResponse(request, reply) {
      // the route template keeps the label set small; unmatched URLs share one label
      const route = request.routeOptions.url ?? "unmatched";
      requests.inc({ method: request.method, route, status: String(reply.statusCode) });
      latency.observe({ method: request.method, route }, reply.elapsedTime / 1000);
    },
    routes({ authenticate, path, token }) {
      return async (app) => {
        app.get(path, async (request, reply) => {
          const presented = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? "")?.[1];
          const byToken =
            token !== undefined && presented !== undefined && constantTimeEqual(presented, token);
          if (!byToken) {
            const principal = await authenticate(authRequestOf(request), requestSignal(reply));
            request.principal = principal;
            if (!principal.admin) {
              throw new ForbiddenError(
                "metrics_forbidden",
                "reading metrics needs the admin permission or the metrics token",
                `${principal.id} is not an admin`,
              );
            }
          }
          const [process, certificates] = await Promise.all([registry.metrics(), certificateSection()]);
          const body = process + certificates;
          return reply
            .header("content-type", registry.contentType)
            .header("cache-control", "no-store")
            .send(body);
        });
      };
    },
  };
}

const escapeLabel = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
const labelText = (labels: Record<string, string>) =>
  `{${Object.entries(labels)
    .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
    .join(",")}}`;

/** Prometheus text for the certificate series: aggregates for all, per-certificate for the capped few. */
export function renderCertificateSection(
  stats: CertificateStatistics,
  expiryBucketsMs: readonly number[] = EXPIRY_BUCKETS_S.map((s) => s * 1000),
): string {
  const out: string[] = [];
  const family = (name: string, type: string, help: string) =>
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);

  family(
    "certfleet_certificates",
    "gauge",
    "Stored certificates by issuer and status (valid, renewal_due, failing, expired)",
  );
  for (const g of stats.groups)
    out.push(`certfleet_certificates${labelText({ issuer: g.issuerId, status: g.status })} ${g.count}`);

  const byIssuer = new Map<string, CertificateStatistics["groups"]>();
  for (const g of stats.groups) byIssuer.set(g.issuerId, [...(byIssuer.get(g.issuerId) ?? []), g]);

  family(
    "certfleet_certificate_earliest_expiry_timestamp_seconds",
    "gauge",
    "The soonest notAfter among the issuer's certificates, seconds since the epoch",
  );
  for (const [issuer, groups] of byIssuer) {
    const earliest = Math.min(...groups.map((g) => g.earliestNotAfter.getTime()));
    out.push(
      `certfleet_certificate_earliest_expiry_timestamp_seconds${labelText({ issuer })} ${earliest / 1000}`,
    );
  }

  const histogram = "certfleet_certificate_time_to_expiry_seconds";
  family(histogram, "histogram", "Time left until notAfter at scrape time, by issuer (le=0: expired)");
  for (const [issuer, groups] of byIssuer) {
    const count = groups.reduce((n, g) => n + g.count, 0);
    expiryBucketsMs.forEach((le, i) => {
      const inBucket = groups.reduce((n, g) => n + (g.bucketCounts[i] ?? 0), 0);
      out.push(`${histogram}_bucket${labelText({ issuer, le: String(le / 1000) })} ${inBucket}`);
    });
    out.push(`${histogram}_bucket${labelText({ issuer, le: "+Inf" })} ${count}`);
    const sum = groups.reduce((n, g) => n + g.sumTimeToExpiryMs, 0) / 1000;
    out.push(
      `${histogram}_sum${labelText({ issuer })} ${sum}`,
      `${histogram}_count${labelText({ issuer })} ${count}`,
    );
  }

  family(
    "certfleet_certificate_series_omitted",
    "gauge",
    "Certificates needing attention left without per-certificate series by metrics.certificateSeriesLimit",
  );
  out.push(`certfleet_certificate_series_omitted ${stats.attentionOmitted}`);

  const perCertificate: [string, string, (c: CertificateSummary) => number][] = [
    [
      "certfleet_certificate_expiry_timestamp_seconds",
      "When the current certificate expires (notAfter), seconds since the epoch",
      (c) => c.notAfter.getTime() / 1000,
    ],
    [
      "certfleet_certificate_renewal_timestamp_seconds",
      "When the scheduler will renew the certificate, seconds since the epoch",
      (c) => c.renewAt.getTime() / 1000,
    ],
    [
      "certfleet_certificate_lifetime_seconds",
      "Validity period of the current certificate (notAfter - notBefore), for alerts relative to it",
      (c) => (c.notAfter.getTime() - c.notBefore.getTime()) / 1000,
    ],
    [
      "certfleet_certificate_consecutive_failures",
      "Failed issuance attempts since the last success (0 when healthy)",
      (c) => c.lastFailure?.failureCount ?? 0,
    ],
  ];
  for (const [name, help, value] of perCertificate) {
    family(name, "gauge", `${help}; only certificates that are failing or inside their renewal window`);
    for (const c of stats.attention)
      out.push(`${name}${labelText({ id: c.id, name: c.names[0] ?? "", issuer: c.issuerId })} ${value(c)}`);
  }
  return out.join("\n") + "\n";
}
