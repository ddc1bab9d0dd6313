import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { silentLogger } from "../../src/core/logger.js";
import { createAuditSink } from "../../src/server/audit.js";
import { createStorage } from "../../src/storage/create-storage.js";
import type { AuditEvent } from "../../src/storage/storage.js";

describe("audit sink", () => {
  it("stores every event, batching concurrent ones into few writes, and resolves after the write", async () => {
    const storage = createStorage({ url: "sqlite::memory:", encryptionKey: randomBytes(32) });
    await storage.migrate();
    let writes = 0;
    const counting = {
      appendAudit: async (e: AuditEvent | readonly AuditEvent[]) => {
        writes++;
        await storage.audit.appendAudit(e);
      },
    };
    const sink = createAuditSink(counting, silentLogger());
    await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        sink({ type: "auth.allow", actor: `a${i}`, outcome: "allow", reason: "ok" }),
      ),
    );
    const stored = await storage.audit.listAudit({ limit: 100 });
    expect(stored).toHaveLength(50);
    expect(new Set(stored.map((r) => r.actor)).size).toBe(50);
    expect(writes).toBeLessThan(5);
    await storage.close();
  });

  it("a failing write is logged, never thrown at the caller", async () => {
    const sink = createAuditSink(
      { appendAudit: async () => Promise.reject(new Error("disk full")) },
      silentLogger(),
    );
    await expect(sink({ type: "x", actor: null, outcome: "success" })).resolves.toBeUndefined();
    await sink.flush();
  });
});
