import { mkdtemp, rm } from "node:fs/promises";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCertfleet } from "../../src/composition.js";
import { parseConfig } from "../../src/config/load.js";
import type { ConfigInput } from "../../src/config/schema.js";
import { resolveConfig } from "../../src/config/resolve.js";
import { systemClock } from "../../src/core/clock.js";
import { silentLogger } from "../../src/core/logger.js";

/**
 * Prometheus metrics through the whole server (real composition, SQLite, embedded CA, HTTPS): who may
 * scrape, and that the numbers follow what the server did.
 */
const ADMIN_KEY = "metrics-admin-0123456789abcdef-012345";
const LIMITED_KEY = "metrics-limited-0123456789abcdef-0123";
const TOKEN = "scrape-token-0123456789abcdef";

interface Res {
  status: number;
  text: string;
  headers: Record<string, string | string[] | undefined>;
}

async function startServer(extra: Partial<ConfigInput>) {
  const dir = await mkdtemp(join(tmpdir(), "cf-metrics-"));
  const config = resolveConfig(
    parseConfig({
      dataDir: dir,
      server: { bind: "127.0.0.1", port: 0 },
      auth: {
        apiKeys: [
          { name: "admin", key: ADMIN_KEY, admin: true, grants: [] },
          { name: "limited", key: LIMITED_KEY, grants: ["*.metrics.example.com"] },
        ],
      },
      ...extra,
    }),
  );
  const cf = await createCertfleet(config, { logger: silentLogger(), clock: systemClock, fetch, env: {} });
  const url = new URL((await cf.start()).url);
  const call = (method: string, path: string, headers: Record<string, string> = {}, body?: unknown) =>
    new Promise<Res>((resolve, reject) => {
      const req = httpsRequest(
        {
          host: "127.0.0.1",
          port: url.port,
          path,
          method,
          servername: "localhost",
          ca: cf.embeddedCa.rootPem,
          headers: { ...(body !== undefined ? { "content-type": "application/json" } : {}), ...headers },
        },
        (res) => {
          let text = "";
          res.on("data", (d: Buffer) => (text += d.toString()));
          res.on("end", () => resolve({ status: res.statusCode!, text, headers: res.headers }));
        },
      );
      req.on("error", reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });
  return {
    cf,
    call,
    async stop() {
      await cf.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The sum of the samples of one metric whose labels include `labels` (undefined: none matched). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  let sum: number | undefined;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const labelText = /\{(.*)\}/.exec(line)?.[1] ?? "";
    const have = Object.fromEntries([...labelText.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v))
      sum = (sum ?? 0) + Number(line.split(" ").pop());
  }
  return sum;
}

describe("metrics", () => {
  let server: Awaited<ReturnType<typeof startServer>>;
  const scrape = () => server.call("GET", "/metrics", { authorization: `Bearer ${TOKEN}` });

  beforeAll(async () => {
    server = await startServer({ metrics: { token: TOKEN } });
  }, 60_000);
  afterAll(async () => server?.stop());

  it("needs the scrape token or an admin credential", async () => {
    const anonymous = await server.call("GET", "/metrics");
    expect(anonymous.status).toBe(401);
    expect(JSON.parse(anonymous.text).error.code).toBe("unauthenticated");

    const wrongToken = await server.call("GET", "/metrics", { authorization: `Bearer ${TOKEN}x` });
    expect(wrongToken.status).toBe(401);

    const limited = await server.call("GET", "/metrics", { authorization: `APIKey ${LIMITED_KEY}` });
    expect(limited.status).toBe(403);
    expect(JSON.parse(limited.text).error.code).toBe("metrics_forbidden");

    const admin = await server.call("GET", "/metrics", { authorization: `APIKey ${ADMIN_KEY}` });
    expect(admin.status).toBe(200);
    expect(admin.headers["content-type"]).toContain("text/plain");

    const token = await scrape();
    expect(token.status).toBe(200);
    expect(sample(token.text, "certfleet_build_info", { version: "0.1.0" })).toBe(1);
    expect(token.text).toMatch(/^process_cpu_seconds_total /m);
    expect(token.text).not.toContain(TOKEN);
    expect(token.text).not.toContain(ADMIN_KEY);
  });

  it("follows issuance, authentication and requests", async () => {
    const before = await scrape();
    const issuedBefore =
      sample(before.text, "certfleet_events_total", { type: "certificate.issued", outcome: "success" }) ?? 0;
    const deniedBefore = sample(before.text, "certfleet_events_total", { type: "auth.deny" }) ?? 0;

    const issued = await server.call(
      "POST",
      "/api/certificate",
      { authorization: `APIKey ${LIMITED_KEY}` },
      { domain: "web.metrics.example.com" },
    );
    expect(issued.status).toBe(200);
    const cert = JSON.parse(issued.text) as { notAfter: string; renewAt: string };
    const refused = await server.call(
      "POST",
      "/api/certificate",
      { authorization: "APIKey not-a-key-0123456789abcdef0123" },
      { domain: "web.metrics.example.com" },
    );
    expect(refused.status).toBe(401);

    // metrics of stored certificates are cached for a few seconds; wait that out
    await new Promise((r) => setTimeout(r, 5_200));
    const after = await scrape();
    // a fresh certificate counts in the aggregates; it gets no series of its own until it needs attention
    expect(sample(after.text, "certfleet_certificates", { issuer: "embedded", status: "valid" })).toBe(1);
    expect(
      sample(after.text, "certfleet_certificate_earliest_expiry_timestamp_seconds", { issuer: "embedded" }),
    ).toBe(new Date(cert.notAfter).getTime() / 1000);
    expect(
      sample(after.text, "certfleet_certificate_time_to_expiry_seconds_count", { issuer: "embedded" }),
    ).toBe(1);
    expect(after.text).toMatch(/^# TYPE certfleet_certificate_expiry_timestamp_seconds gauge$/m);
    expect(sample(after.text, "certfleet_certificate_expiry_timestamp_seconds")).toBeUndefined();
    expect(new Date(cert.renewAt).getTime()).toBeGreaterThan(Date.now());
    expect(
      sample(after.text, "certfleet_events_total", { type: "certificate.issued", outcome: "success" }),
    ).toBe(issuedBefore + 1);
    expect(sample(after.text, "certfleet_events_total", { type: "auth.deny" })).toBe(deniedBefore + 1);
    expect(
      sample(after.text, "certfleet_http_requests_total", {
        method: "POST",
        route: "/api/certificate",
        status: "401",
      }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      sample(after.text, "certfleet_http_request_duration_seconds_count", {
        method: "POST",
        route: "/api/certificate",
      }),
    ).toBeGreaterThanOrEqual(2);
  }, 20_000);
});

describe("metrics switched off", () => {
  it("has no /metrics route", async () => {
    const server = await startServer({ metrics: { enabled: false } });
    try {
      const res = await server.call("GET", "/metrics", { authorization: `APIKey ${ADMIN_KEY}` });
      expect(res.status).toBe(404);
    } finally {
      await server.stop();
    }
  }, 60_000);
});
