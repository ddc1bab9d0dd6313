import { X509Certificate } from "node:crypto";
import { describe, expect, it } from "vitest";
import { startCertfleet } from "../harness/certfleet-process.js";

/**
 * Renewal by time with short-lived certificates: the embedded CA issues 8-second certificates, the
 * scheduler checks every 300 ms and renews when a third of the lifetime remains. A client polling all
 * along must always get a currently valid certificate straight from the cache (no request waits for an
 * issuance), and must see new serials appear.
 */
describe("background renewal of short-lived certificates (a real process)", () => {
  it("serves a new certificate before the old one expires, without downtime", async () => {
    const cf = await startCertfleet({
      config: {
        issuers: [{ id: "short", type: "embedded", leafValidity: "8s" }],
        routing: { defaultIssuer: "short" },
        certificates: { checkInterval: "300ms", renewJitter: 0 },
      },
    });
    try {
      const first = await cf.post("/api/certificate", { domain: "short.example.com" });
      expect(first.status).toBe(200);
      const serials = new Set<string>([first.body.serial]);
      const deadline = Date.now() + 20_000;
      while (serials.size < 3 && Date.now() < deadline) {
        const res = await cf.post("/api/certificate", { domain: "short.example.com" });
        expect(res.status).toBe(200);
        expect(res.body.cached).toBe(true); // the scheduler renewed it; no caller waited for a CA
        const cert = new X509Certificate(res.body.certificate);
        expect(new Date(cert.validTo).getTime()).toBeGreaterThan(Date.now());
        serials.add(res.body.serial);
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(serials.size).toBeGreaterThanOrEqual(3);
    } finally {
      await cf.stop();
    }
  }, 60_000);
});
