import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { systemClock } from "../../src/core/clock.js";
import { silentLogger } from "../../src/core/logger.js";
import { buildApp } from "../../src/server/app.js";
import { createMetrics } from "../../src/server/metrics.js";
import { adminRoutes } from "../../src/server/routes/admin.js";
import { sessionRoutes } from "../../src/server/routes/session.js";
import { caRoutes } from "../../src/server/routes/ca.js";
import { assignedCertificateRoutes } from "../../src/server/routes/assigned-certificates.js";
import { eabKeyRoutes } from "../../src/acme-server/eab-api.js";

/** docs/openapi.yaml must list exactly the routes the app registers (the ACME protocol under /acme aside). */
describe("docs/openapi.yaml", () => {
  it("documents every API route the app registers, and nothing else", async () => {
    const doc = parse(await readFile(new URL("../../docs/openapi.yaml", import.meta.url), "utf8")) as {
      paths: Record<string, Record<string, unknown>>;
    };
    const documented = Object.entries(doc.paths)
      .flatMap(([path, ops]) =>
        Object.keys(ops)
          .filter((m) => m !== "parameters")
          .map((m) => `${m.toUpperCase()} ${path}`),
      )
      .sort();
    const registered: string[] = [];
    const unused = () => {
      throw new Error("not called");
    };
    const app = await buildApp({
      logger: silentLogger(),
      storage: { ping: async () => undefined },
      manager: { obtain: unused, renew: unused, renewDue: unused, revoke: unused, running: () => 0 },
      authenticate: unused,
      authorizeNames: unused,
      audit: Object.assign(async () => undefined, {
        flush: async () => undefined,
        committed: async () => undefined,
      }),
      bodyLimit: 1024,
      trustProxy: [],
      timeouts: { request: 30_000, headers: 10_000, keepAlive: 65_000, connection: 120_000 },
      plugins: [
        adminRoutes({
          identities: {} as never,
          inventory: {} as never,
          manager: {} as never,
          auditLog: {} as never,
          kv: {} as never,
          authenticate: unused,
          legacySwitch: {} as never,
          audit: Object.assign(async () => undefined, {
            flush: async () => undefined,
            committed: async () => undefined,
          }),
        }),
        sessionRoutes({ authenticate: unused, sessionTokens: {} as never }),
        assignedCertificateRoutes({
          identities: {} as never,
          authenticate: unused,
          audit: Object.assign(async () => undefined, {
            flush: async () => undefined,
            committed: async () => undefined,
          }),
        }),
        caRoutes({ ca: { rootPem: "", crl: unused } }),
        eabKeyRoutes({ acme: {} as never, authenticate: unused, identities: {} as never }),
        createMetrics({
          storage: { certificateStatistics: unused },
          clock: systemClock,
          version: "0",
          certificateSeries: "attention",
          certificateSeriesLimit: 1000,
        }).routes({ authenticate: unused, path: "/metrics" }),
      ],
    });
    // printRoutes draws a tree; rebuild full paths from the indentation
    const seen: string[] = [];
    const stack: string[] = [];
    for (const line of app.printRoutes({ commonPrefix: false }).split("\n")) {
      const at = line.indexOf("/");
      const m = /^(\S*?) \(([^)]+)\)/.exec(line.slice(at));
      if (at < 0 || !m) continue;
      const depth = Math.floor(at / 4);
      stack.length = depth;
      stack[depth] = (stack[depth - 1] ?? "") + m[1];
      for (const method of m[2]!.split(", ")) if (method !== "HEAD") seen.push(`${method} ${stack[depth]}`);
    }
    for (const entry of documented) {
      const [method, url] = entry.split(" ") as [string, string];
      if (app.hasRoute({ method: method as "GET", url: url.replace(/\{([^}]+)\}/g, ":$1") }))
        registered.push(entry);
    }
    expect(registered).toEqual(documented);
    const asOpenApi = (r: string) => r.replace(/:([A-Za-z]+)/g, "{$1}");
    expect(
      seen
        .filter((r) => !r.includes(" /acme/"))
        .map(asOpenApi)
        .sort(),
    ).toEqual(documented);
    await app.close();
  });
});
