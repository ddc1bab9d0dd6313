import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lostCertificates, readLedger } from "../harness/acme-ledger.js";
import { startCertfleet, type CertfleetProcess } from "../harness/certfleet-process.js";
import {
  freePort,
  startChallTestSrv,
  startPebble,
  type ChallTestSrv,
  type PebbleServer,
} from "../harness/pebble.js";
import { startResetProxy, type ResetProxy } from "../harness/reset-proxy.js";

/**
 * Nothing the CA issued is ever lost (issue 14). `certfleet serve` orders names from Pebble behind a
 * proxy that holds every certificate download for 0.5 s, and is killed (SIGKILL, or SIGTERM with a
 * short shutdown timeout) while downloads are held: each kill provably lands after the CA finalized
 * an order and before certfleet could store its certificate. Every restart runs on the same data
 * directory. Counted at the CA (the proxy sees every order, finalize and download): each name has
 * exactly one finalized order, nothing is ordered for it after that, and the certificate served is
 * the one the CA issued for that order.
 */
describe("crash matrix: kill during Pebble issuances", () => {
  let dns: ChallTestSrv;
  let pebble: PebbleServer;
  let proxy: ResetProxy;
  let dir: string;
  let caBundle: string;
  let httpPort: number;
  const running: CertfleetProcess[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "cf-crash-"));
    dns = await startChallTestSrv(); // every name resolves to 127.0.0.1
    httpPort = await freePort();
    pebble = await startPebble({ dnsServer: dns.dnsAddress, httpPort });
    proxy = await startResetProxy(pebble, {
      delayMs: (method, path) => (path.startsWith("/certZ/") ? 500 : 0),
    });
    caBundle = join(dir, "pebble-ca.pem");
    await writeFile(caBundle, pebble.caBundlePem);
  }, 60_000);

  afterAll(async () => {
    for (const cf of running) if (cf.child.exitCode === null) cf.child.kill("SIGKILL");
    await proxy?.stop();
    await pebble?.stop();
    await dns?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  function configFor(extra: { server?: Record<string, unknown> } = {}): Record<string, unknown> {
    return {
      issuers: [
        {
          id: "pebble",
          type: "acme",
          caDirUrl: proxy.directoryUrl,
          caBundleFile: caBundle,
          email: "ops@example.com",
          pollInterval: "100ms",
          challenges: ["http-01"],
        },
      ],
      server: {
        bind: "127.0.0.1",
        port: 0,
        http01: { enabled: true, bind: "127.0.0.1", port: httpPort },
        ...extra.server,
      },
      routing: { defaultIssuer: "pebble" },
      // A lease far longer than the test: a restart that waited for its own dead locks to expire
      // instead of taking them back at once would never serve the names.
      certificates: { lockLease: "10m", lockRenewInterval: "5s" },
      logging: { level: "warn" },
    };
  }

  async function start(dataDir: string, config = configFor()): Promise<CertfleetProcess> {
    const cf = await startCertfleet({ dataDir, config });
    running.push(cf);
    return cf;
  }

  async function stopWith(cf: CertfleetProcess, signal: "SIGKILL" | "SIGTERM"): Promise<void> {
    const exited = new Promise((r) => cf.child.once("exit", r));
    cf.child.kill(signal);
    await exited;
  }

  async function until(check: () => boolean, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!check()) {
      if (Date.now() > deadline) return false;
      await new Promise((r) => setTimeout(r, 20));
    }
    return true;
  }

  it("kill -9 between finalize and store, 20 names: every issued certificate is stored and served", async () => {
    const names = Array.from({ length: 20 }, (_, i) => `n${i}.crash.test`);
    const dataDir = join(dir, "kill9");
    await mkdir(dataDir);
    const served = new Map<string, string>(); // name -> serial
    const kills: { round: number; afterMs: number; undelivered: number }[] = [];
    // five lives, each given four new names on top of the ones not served yet, each killed at a
    // random moment while a finalized order's certificate is on its way
    for (let round = 0; round < 5; round++) {
      const cf = await start(dataDir);
      const began = Date.now();
      const asks = names
        .slice(0, (round + 1) * 4)
        .filter((n) => !served.has(n))
        .map((n) =>
          cf.post("/api/certificate", { domain: n }).then(
            (res) => {
              if (res.status === 200) served.set(n, res.body.serial);
            },
            () => undefined, // the server died under the request
          ),
        );
      await new Promise((r) => setTimeout(r, Math.random() * 300));
      const landed = await until(() => proxy.held() > 0, 15_000);
      const at = Date.now();
      await stopWith(cf, "SIGKILL");
      if (landed)
        kills.push({
          round,
          afterMs: at - began,
          undelivered: readLedger(proxy.exchanges).undeliveredAt(at).length,
        });
      await Promise.all(asks);
    }
    // the kills landed after the CA finalized orders whose certificates certfleet had not stored
    expect(kills.length, JSON.stringify(kills)).toBeGreaterThanOrEqual(4);
    for (const kill of kills) expect(kill.undelivered, JSON.stringify(kills)).toBeGreaterThan(0);

    // the last start: every name is served promptly (journaled orders resumed, not ordered again)
    const cf = await start(dataDir);
    const restartedAt = Date.now();
    const results = await Promise.all(names.map((n) => cf.post("/api/certificate", { domain: n })));
    const servedWithinMs = Date.now() - restartedAt;
    for (const [i, res] of results.entries()) {
      expect(res.status, `${names[i]}: ${JSON.stringify(res.body)}`).toBe(200);
      served.set(names[i]!, res.body.serial);
    }
    expect(new Set(served.values()).size).toBe(names.length);
    // far inside the 10-minute lock lease: no dead lock was waited out
    expect(servedWithinMs).toBeLessThan(60_000);

    // counted at the CA: one finalized order per name, its certificate is the one served, and no
    // name was ordered again after its order was finalized
    const ledger = readLedger(proxy.exchanges);
    expect(lostCertificates(ledger, served), JSON.stringify(kills)).toEqual([]);
    const issuedHere = [...ledger.finalized.keys()].filter((id) =>
      ledger.orders.get(id)?.names.some((n) => n.endsWith(".crash.test") && names.includes(n)),
    );
    expect(issuedHere).toHaveLength(names.length);

    // and they are stored: a restart serves each from storage without contacting the CA
    await stopWith(cf, "SIGKILL");
    const again = await start(dataDir);
    const cached = await Promise.all(names.map((n) => again.post("/api/certificate", { domain: n })));
    expect(cached.map((r) => r.body.cached)).toEqual(names.map(() => true));
    expect(cached.map((r) => r.body.serial)).toEqual(names.map((n) => served.get(n)));
    await again.stop();
  }, 170_000);

  it("SIGTERM right after finalize: the next start stores that certificate without a second order", async () => {
    const names = ["t0.term.test", "t1.term.test", "t2.term.test"];
    const dataDir = join(dir, "sigterm");
    await mkdir(dataDir);
    // shutdown does not wait for the held download: the order stays in the journal
    const config = configFor({ server: { shutdownTimeout: "100ms" } });
    const cf = await start(dataDir, config);
    const asks = names.map((n) => cf.post("/api/certificate", { domain: n }).catch(() => undefined));
    expect(await until(() => proxy.held() > 0, 30_000)).toBe(true);
    const at = Date.now();
    await stopWith(cf, "SIGTERM");
    expect(cf.child.exitCode).toBe(0);
    await Promise.all(asks);
    const finalizedBefore = readLedger(proxy.exchanges).undeliveredAt(at);
    expect(finalizedBefore.length).toBeGreaterThan(0);

    const again = await start(dataDir, config);
    const served = new Map<string, string>();
    for (const name of names) {
      // a request that arrives while the resumed order is still finishing waits for it
      let res = await again.post("/api/certificate", { domain: name });
      for (let i = 0; res.status === 503 && i < 50; i++) {
        await new Promise((r) => setTimeout(r, 200));
        res = await again.post("/api/certificate", { domain: name });
      }
      expect(res.status, `${name}: ${JSON.stringify(res.body)}`).toBe(200);
      served.set(name, res.body.serial);
    }
    const ledger = readLedger(proxy.exchanges);
    expect(lostCertificates(ledger, served)).toEqual([]);
    // the orders finalized before the signal are the ones whose certificates are served
    for (const id of finalizedBefore) {
      const name = ledger.orders.get(id)!.names[0]!;
      expect(ledger.ordersFor(name)).toEqual([id]);
    }
    await again.stop();
  }, 90_000);
});
