import { describe, expect, it } from "vitest";
import { silentLogger } from "../../src/core/logger.js";
import { buildApp } from "../../src/server/app.js";
import { createAuditSink } from "../../src/server/audit.js";
import type { AuditEvent } from "../../src/storage/storage.js";

/**
 * Group commit (issue 15): a request may append audit records without waiting (the auth chain's
 * `auth.allow`), so the app holds every response until the sink has stored what was appended before.
 */
describe("responses wait for the audit records appended before them", () => {
  it("sends nothing until the batch holding the request's record is written", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const written: AuditEvent[] = [];
    const sink = createAuditSink(
      {
        appendAudit: async (events) => {
          await gate; // a slow disk
          written.push(...(Array.isArray(events) ? events : [events]));
        },
      },
      silentLogger(),
    );
    const unused = () => {
      throw new Error("not called");
    };
    const app = await buildApp({
      logger: silentLogger(),
      storage: { ping: async () => undefined },
      manager: { obtain: unused, renew: unused, renewDue: unused, revoke: unused },
      authenticate: unused,
      authorizeNames: unused,
      audit: sink,
      bodyLimit: 1024,
      trustProxy: [],
      timeouts: { request: 30_000, headers: 10_000, keepAlive: 65_000, connection: 120_000 },
      plugins: [
        async (scope) => {
          scope.get("/api/test-unawaited", async () => {
            void sink({ type: "auth.allow", outcome: "allow", actor: "a", method: "apikey" });
            return { ok: true };
          });
        },
      ],
    });
    try {
      let answered = false;
      const response = app.inject({ method: "GET", url: "/api/test-unawaited" }).then((r) => {
        answered = true;
        return r;
      });
      // let the handler run and the batch start; the write is still held at the gate
      await new Promise((r) => setTimeout(r, 50));
      expect(answered).toBe(false);
      expect(written).toHaveLength(0);
      release();
      const r = await response;
      expect(r.statusCode).toBe(200);
      expect(written.map((e) => e.type)).toEqual(["auth.allow"]);
    } finally {
      await app.close();
    }
  });
});
