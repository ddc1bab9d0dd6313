import { join } from "node:path";
import Database from "better-sqlite3";
import { Pool } from "undici";
import { afterAll, describe, expect, it } from "vitest";
import { startCertfleet, type CertfleetProcess } from "../harness/certfleet-process.js";

/**
 * The audit sink batches download and auth.allow records (issue 15), but a response is only sent once
 * its records are committed: killing the server (SIGKILL, no shutdown flush) in the middle of a load of cached requests
 * must leave an audit record for every 200 a client received. Needs `npm run build`.
 */
describe("audit durability under SIGKILL", () => {
  let cf: CertfleetProcess | undefined;
  afterAll(async () => {
    await cf?.stop();
  });

  it("has a certificate.download record for every response received before the kill", async () => {
    cf = await startCertfleet({ config: { logging: { level: "warn" } } });
    const names = ["a.durable.test", "b.durable.test", "c.durable.test", "d.durable.test"];
    for (const domain of names) expect((await cf.post("/api/certificate", { domain })).status).toBe(200);

    const origin = new URL(cf.url).origin;
    const pool = new Pool(origin, { connections: 8, connect: { ca: cf.caPem, servername: "localhost" } });
    const received = new Map(names.map((n) => [n, 0]));
    let stopped = false;
    let failures = 0;
    const deadline = Date.now() + 20_000;
    async function client(domain: string): Promise<void> {
      while (!stopped && Date.now() < deadline) {
        try {
          const res = await pool.request({
            path: "/api/certificate",
            method: "POST",
            headers: { "content-type": "application/json", authorization: `APIKey ${cf!.apiKey}` },
            body: JSON.stringify({ domain }),
          });
          const body = (await res.body.json()) as { cached?: boolean };
          if (res.statusCode === 200 && body.cached === true) received.set(domain, received.get(domain)! + 1);
        } catch {
          failures++; // the connection died with the server
          return;
        }
      }
    }
    const clients = names.flatMap((n) => [client(n), client(n)]);
    // kill once the load is well under way (a few hundred responses), with requests in flight
    while (Date.now() < deadline && [...received.values()].reduce((a, b) => a + b, 0) < 300)
      await new Promise((r) => setTimeout(r, 20));
    cf.child.kill("SIGKILL");
    await new Promise((r) => cf!.child.once("exit", r));
    stopped = true;
    await Promise.all(clients);
    await pool.destroy();
    expect(failures).toBeGreaterThan(0); // requests were in flight when it died

    const db = new Database(join(cf.dataDir, "certfleet.db"), { readonly: true });
    try {
      for (const domain of names) {
        const { n } = db
          .prepare("select count(*) as n from audit_log where type = 'certificate.download' and subject = ?")
          .get(domain) as { n: number };
        // +1: the first (issuing) request of each name is a download too
        expect(n, domain).toBeGreaterThanOrEqual(received.get(domain)! + 1);
      }
      // the auth.allow record of each of those requests is appended without waiting, yet committed
      // before its response too (the response waits for everything appended before it)
      const { allowed } = db
        .prepare("select count(*) as allowed from audit_log where type = 'auth.allow'")
        .get() as { allowed: number };
      const total = [...received.values()].reduce((a, b) => a + b, 0);
      expect(allowed).toBeGreaterThanOrEqual(total + names.length);
    } finally {
      db.close();
    }
    expect([...received.values()].every((n) => n > 0)).toBe(true);
  }, 60_000);
});
