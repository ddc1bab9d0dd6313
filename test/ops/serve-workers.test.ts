import { readdirSync, readFileSync } from "node:fs";
import { Agent as HttpsAgent } from "node:https";
import acme from "acme-client";
import { Agent, request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCertfleet, type CertfleetProcess } from "../harness/certfleet-process.js";

/** Live child processes of `pid` (from /proc). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * `server.workers: 2` (issue 15): one supervising process and two workers behind the same listener.
 * An ACME client on new connections for every request lands on both workers, so nonces one worker
 * issued are redeemed at the other — they live in storage, so the flow works. SIGTERM stops them all.
 * Needs `npm run build`.
 */
describe("certfleet serve with two workers", () => {
  let cf: CertfleetProcess;
  beforeAll(async () => {
    cf = await startCertfleet({
      config: { server: { bind: "127.0.0.1", port: 0, workers: 2 }, logging: { level: "info" } },
      timeoutMs: 60_000,
    });
    // the banner comes from worker 1; wait for the second one
    const deadline = Date.now() + 60_000;
    while (!cf.stderr().includes("all workers listening") && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
  }, 90_000);
  afterAll(async () => {
    await cf?.stop();
  });

  it("issues new names at once on both workers without either taking the other's locks", async () => {
    // each worker's first issuance takes back "its previous life's" locks: with one instance id for
    // both, the second worker released the first one's live locks and its issuance failed lock_lost
    const names = Array.from({ length: 12 }, (_, i) => `n${i}.fresh.example.internal`);
    const results = await Promise.all(
      names.map(async (domain) => {
        const dispatcher = new Agent({ connect: { ca: cf.caPem, servername: "localhost" } });
        try {
          const res = await request(`${cf.url}/api/certificate`, {
            method: "POST",
            dispatcher,
            headers: { authorization: `APIKey ${cf.apiKey}`, "content-type": "application/json" },
            body: JSON.stringify({ domain }),
          });
          return { status: res.statusCode, body: (await res.body.json()) as { cached?: boolean } };
        } finally {
          await dispatcher.close();
        }
      }),
    );
    expect(results.map((r) => r.status)).toEqual(names.map(() => 200));
    expect(results.every((r) => r.body.cached === false)).toBe(true);
  }, 60_000);

  it("runs two worker processes behind one listener", async () => {
    expect(cf.stderr()).toContain("all workers listening");
    expect(childrenOf(cf.child.pid!)).toHaveLength(2);
    for (let i = 0; i < 10; i++) {
      // a new connection each time: node:cluster hands connections to the workers in turn
      const dispatcher = new Agent({ connect: { ca: cf.caPem, servername: "localhost" } });
      const res = await request(`${cf.url}/api/certificate`, {
        method: "POST",
        dispatcher,
        headers: { authorization: `APIKey ${cf.apiKey}`, "content-type": "application/json" },
        body: JSON.stringify({ domain: "workers.example.internal" }),
      });
      expect(res.statusCode).toBe(200);
      expect(((await res.body.json()) as { domain: string }).domain).toBe("workers.example.internal");
      await dispatcher.close();
    }
  });

  it("completes ACME flows whose nonces cross workers", async () => {
    const eab = await cf.post("/api/acme/eab-keys", { grants: ["*.workers.example.internal"] });
    expect(eab.status).toBe(201);
    // no keep-alive: every ACME request is a new connection, so consecutive requests alternate workers
    acme.axios.defaults.httpsAgent = new HttpsAgent({
      ca: cf.caPem,
      keepAlive: false,
      servername: "localhost",
    });
    const client = new acme.Client({
      directoryUrl: `${cf.url.replace("127.0.0.1", "localhost")}/acme/directory`,
      accountKey: await acme.crypto.createPrivateEcdsaKey(),
      externalAccountBinding: { kid: eab.body.kid, hmacKey: eab.body.hmacKey },
      backoffMin: 20,
      backoffMax: 200,
    });
    await client.createAccount({ termsOfServiceAgreed: true });
    for (const name of [
      "a.workers.example.internal",
      "b.workers.example.internal",
      "c.workers.example.internal",
    ]) {
      const [, csr] = await acme.crypto.createCsr({ commonName: name, altNames: [name] });
      const order = await client.createOrder({ identifiers: [{ type: "dns", value: name }] });
      const finalized = await client.finalizeOrder(order, csr);
      const pem = await client.getCertificate(finalized);
      expect(acme.crypto.readCertificateInfo(pem).domains.altNames).toEqual([name]);
    }
  }, 60_000);

  it("stops every worker on SIGTERM", async () => {
    const workers = childrenOf(cf.child.pid!);
    expect(workers).toHaveLength(2);
    cf.child.kill("SIGTERM");
    const code = await new Promise((r) => cf.child.once("exit", r));
    expect(code).toBe(0);
    expect(workers.filter(alive)).toEqual([]);
  }, 30_000);
});
