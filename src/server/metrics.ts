import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { constantTimeEqual } from "../auth/secrets.js";
import type { Clock } from "../core/clock.js";
import { ForbiddenError } from "../core/errors.js";
import type { AuditEvent, CertificateStore, CertificateSummary } from "../storage/storage.js";
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

const CERTIFICATE_LABELS = ["id", "name", "issuer"] as const;
/** Scrapes within this long share one storage query. */
const SNAPSHOT_TTL_MS = 5_000;

export function createMetrics(deps: {
  storage: Pick<CertificateStore, "listCertificates">;
  clock: Clock;
  version: string;
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

  let snapshot: { at: number; rows: Promise<CertificateSummary[]> } | undefined;
  function certificates(): Promise<CertificateSummary[]> {
    const now = deps.clock.now().getTime();
    if (!snapshot || now - snapshot.at > SNAPSHOT_TTL_MS) {
      const rows = deps.storage.listCertificates(AbortSignal.timeout(10_000));
      snapshot = { at: now, rows };
      rows.catch(() => (snapshot = undefined)); // a failed query is not cached
    }
    return snapshot.rows;
  }
  const labels = (c: CertificateSummary) => ({ id: c.id, name: c.names[0] ?? "", issuer: c.issuerId });
  const perCertificate = (name: string, help: string, value: (c: CertificateSummary) => number) =>
    new Gauge({
      name,
      help,
      labelNames: CERTIFICATE_LABELS,
      registers: [registry],
      async collect() {
        const rows = await certificates();
        this.reset(); // certificates deleted since the last scrape disappear
        for (const c of rows) this.set(labels(c), value(c));
      },
    });
  perCertificate(
    "certfleet_certificate_expiry_timestamp_seconds",
    "When the current certificate expires (notAfter), seconds since the epoch",
    (c) => c.notAfter.getTime() / 1000,
  );
  perCertificate(
    "certfleet_certificate_renewal_timestamp_seconds",
    "When the scheduler will renew the certificate, seconds since the epoch",
    (c) => c.renewAt.getTime() / 1000,
  );
  perCertificate(
    "certfleet_certificate_lifetime_seconds",
    "Validity period of the current certificate (notAfter - notBefore), for alerts relative to it",
    (c) => (c.notAfter.getTime() - c.notBefore.getTime()) / 1000,
  );
  perCertificate(
    "certfleet_certificate_consecutive_failures",
    "Failed issuance attempts since the last success (0 when healthy)",
    (c) => c.lastFailure?.failureCount ?? 0,
  );

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
          const body = await registry.metrics();
          return reply
            .header("content-type", registry.contentType)
            .header("cache-control", "no-store")
            .send(body);
        });
      };
    },
  };
}
