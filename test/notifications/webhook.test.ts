import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createManualClock } from "../../src/core/clock.js";
import { UpstreamError } from "../../src/core/errors.js";
import { silentLogger } from "../../src/core/logger.js";
import { createEmbeddedCa, type EmbeddedCa } from "../../src/internal-ca/embedded-ca.js";
import { createIssuerRouter } from "../../src/issuance/issuer-routing.js";
import type { Issuer } from "../../src/issuance/issuer.js";
import { createCertificateManager } from "../../src/issuance/manager.js";
import { createNotifier } from "../../src/notifications/notifier.js";
import { createStorage } from "../../src/storage/create-storage.js";
import type { AuditEvent } from "../../src/storage/audit-log.js";
import type { Storage } from "../../src/storage/storage.js";

const SECRET = "s3cret-s3cret-s3cret";

describe("webhook notifications through the real manager and embedded CA", () => {
  let dir: string;
  let storage: Storage;
  let ca: EmbeddedCa;
  let server: Server;
  let url: string;
  const received: { type: string; names: string[]; valid: boolean }[] = [];
  const clock = createManualClock(new Date());

  beforeEach(async () => {
    received.length = 0;
    dir = await mkdtemp(join(tmpdir(), "cf-notify-"));
    storage = createStorage({ url: `sqlite:${join(dir, "db.sqlite")}`, encryptionKey: randomBytes(32) });
    await storage.migrate();
    ca = await createEmbeddedCa({
      store: storage.kv,
      clock,
      logger: silentLogger(),
      options: { leafValidityDays: 30 },
    });
    server = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(req.headers["x-certfleet-signature"]));
        const expected = createHmac("sha256", SECRET).update(`${m?.[1]}.${body}`).digest();
        const valid = !!m && timingSafeEqual(expected, Buffer.from(m[2]!, "hex"));
        const ev = JSON.parse(body) as { type: string; certificate: { names: string[] } };
        received.push({ type: ev.type, names: ev.certificate.names, valid });
        res.writeHead(valid ? 204 : 401).end();
      });
    });
    server.requestTimeout = 5000;
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  });
  afterEach(async () => {
    await new Promise((r) => server.close(r));
    await storage.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("failure, recovery and expiry are each delivered once, signed, and audited", async () => {
    const audits: AuditEvent[] = [];
    const notifier = createNotifier({
      config: {
        channels: [
          {
            type: "webhook",
            name: "ops",
            url,
            secret: SECRET,
            events: ["certificate.renewal_failed", "certificate.recovered", "certificate.expiring"],
            names: ["*.example.com"],
          },
        ],
        expiringWhenRemaining: 0.2,
        retryAttempts: 2,
        retryDelayMs: 10,
        allowPrivateAddresses: true,
      },
      kv: storage.kv,
      certificates: storage.certificates,
      audit: async (e) => void audits.push(e),
      clock,
      logger: silentLogger(),
    });
    let failing = true;
    const issuer: Issuer = {
      id: "scripted",
      async issue(request, signal) {
        if (failing) throw new UpstreamError("ca_down", "the CA is down", { retryable: true });
        return ca.issue(request, signal);
      },
    };
    const manager = createCertificateManager({
      certificates: storage.certificates,
      locks: storage.locks,
      journal: storage.journal,
      kv: storage.kv,
      router: createIssuerRouter([issuer], [], issuer.id),
      clock,
      logger: silentLogger(),
      policy: {
        renewWhenRemaining: 1 / 3,
        renewJitter: 0,
        keyType: "ec256",
        reuseKey: false,
        issueTimeoutMs: 30_000,
      },
      onEvent: (e) => notifier.onCertificateEvent(e),
    });
    const names = ["www.example.com"];
    for (let i = 0; i < 3; i++) {
      await expect(manager.obtain({ names, actor: null })).rejects.toThrow();
      clock.set(new Date(clock.now().getTime() + 7 * 3_600_000)); // past the backoff: a real retry
      await notifier.idle();
    }
    failing = false;
    await manager.obtain({ names, actor: null });
    await manager.obtain({ names, actor: null });
    await notifier.idle();
    // expiry: past 80 % of the lifetime, checked on three passes
    clock.set(new Date(clock.now().getTime() + 25 * 86_400_000));
    for (let i = 0; i < 3; i++) await notifier.checkExpiring();
    await notifier.idle();
    await notifier.stop();

    expect(received.map((r) => r.type)).toEqual([
      "certificate.renewal_failed",
      "certificate.recovered",
      "certificate.expiring",
    ]);
    expect(received.every((r) => r.valid && r.names[0] === "www.example.com")).toBe(true);
    expect(audits.filter((a) => a.type === "notification.delivered")).toHaveLength(3);
  });
});
