import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
 * Nothing the CA issued is ever lost (issue 14): `certfleet serve` is killed with SIGKILL at random
 * moments while it orders 20 names from Pebble, behind a proxy that holds every certificate download
 * for 0.5 s so kills land between finalize and store. Each restart runs on the same data directory.
 * Counted at the CA (the proxy in front of Pebble sees every finalize): every finalized order's
 * certificate ends up stored and served, so no name is finalized twice.
 */
describe("crash matrix: kill -9 during Pebble issuances", () => {
  const names = Array.from({ length: 20 }, (_, i) => `n${i}.crash.test`);
  let dns: ChallTestSrv;
  let pebble: PebbleServer;
  let proxy: ResetProxy;
  let dir: string;
  let config: Record<string, unknown>;
  const running: CertfleetProcess[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "cf-crash-"));
    dns = await startChallTestSrv(); // every name resolves to 127.0.0.1
    const httpPort = await freePort();
    pebble = await startPebble({ dnsServer: dns.dnsAddress, httpPort });
    proxy = await startResetProxy(pebble, {
      delayMs: (method, path) => (path.startsWith("/certZ/") ? 500 : 0),
    });
    const caBundle = join(dir, "pebble-ca.pem");
    await writeFile(caBundle, pebble.caBundlePem);
    config = {
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
      server: { bind: "127.0.0.1", port: 0, http01: { enabled: true, bind: "127.0.0.1", port: httpPort } },
      routing: { defaultIssuer: "pebble" },
      certificates: { lockLease: "3s", lockRenewInterval: "1s" },
      logging: { level: "warn" },
    };
  }, 60_000);

  afterAll(async () => {
    for (const cf of running) if (cf.child.exitCode === null) cf.child.kill("SIGKILL");
    await proxy?.stop();
    await pebble?.stop();
    await dns?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function start(): Promise<CertfleetProcess> {
    const cf = await startCertfleet({ dataDir: dir, config });
    running.push(cf);
    return cf;
  }

  async function kill9(cf: CertfleetProcess): Promise<void> {
    const exited = new Promise((r) => cf.child.once("exit", r));
    cf.child.kill("SIGKILL");
    await exited;
  }

  const finalized = () =>
    new Set(proxy.requests.filter((r) => r.startsWith("POST /finalize-order/")).map((r) => r.slice(5)));

  it("every certificate the CA issued is stored and served; no name is finalized twice", async () => {
    const served = new Map<string, string>(); // name -> serial
    const kills: number[] = [];
    for (let round = 0; round < 5 && served.size < names.length; round++) {
      const cf = await start();
      // clients keep asking for the names they do not have yet
      const asks = names
        .filter((n) => !served.has(n))
        .map((n) =>
          cf.post("/api/certificate", { domain: n }).then(
            (res) => {
              if (res.status === 200) served.set(n, res.body.serial);
            },
            () => undefined, // the server died under the request
          ),
        );
      const at = 300 + Math.floor(Math.random() * 2200);
      kills.push(at);
      await new Promise((r) => setTimeout(r, at));
      await kill9(cf);
      await Promise.all(asks);
    }
    const killedAfterFinalize = finalized().size;

    // the last start: every name is there (journaled orders resumed, not ordered again)
    const cf = await start();
    const ordersBefore = proxy.requests.filter((r) => r.startsWith("POST /order-plz")).length;
    const results = await Promise.all(names.map((n) => cf.post("/api/certificate", { domain: n })));
    for (const [i, res] of results.entries()) {
      expect(res.status, `${names[i]}: ${JSON.stringify(res.body)}`).toBe(200);
      served.set(names[i]!, res.body.serial);
    }
    const serials = new Set(served.values());
    expect(serials.size).toBe(names.length);

    // Counted at the CA: one finalized order per name. A certificate discarded after a crash would
    // have needed a second finalized order for its name.
    const all = finalized();
    expect(
      all.size,
      `kills at ${kills.join(", ")} ms; ${killedAfterFinalize} finalized before the last start`,
    ).toBe(names.length);
    // names finalized before the last start were resumed from the journal, not ordered again
    const newOrders = proxy.requests.filter((r) => r.startsWith("POST /order-plz")).length - ordersBefore;
    expect(newOrders).toBeLessThanOrEqual(names.length - killedAfterFinalize);

    // and they are stored: a restart serves each from storage without contacting the CA
    await kill9(cf);
    const again = await start();
    const cached = await Promise.all(names.map((n) => again.post("/api/certificate", { domain: n })));
    expect(cached.map((r) => r.body.cached)).toEqual(names.map(() => true));
    expect(cached.map((r) => r.body.serial)).toEqual(names.map((n) => served.get(n)));
    await again.stop();
  }, 170_000);
});
