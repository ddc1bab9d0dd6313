import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
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

const PG_BASE = process.env.CERTFLEET_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/**
 * The crash matrix across replicas (issue 14): two `certfleet serve` processes on one PostgreSQL
 * database; replica A orders 20 names from Pebble (certificate downloads held 0.5 s by a proxy) and is
 * killed with SIGKILL while finalized certificates are on their way. Replica B, asked for nothing,
 * finishes A's journaled orders by itself once A's lock leases end; then every name is served by B.
 * Counted at the CA: one finalized order per name, its certificate is the one served, nothing ordered
 * again.
 */
describe("crash matrix: two PostgreSQL replicas, one killed", () => {
  const names = Array.from({ length: 20 }, (_, i) => `r${i}.replicas.test`);
  const schema = `certfleet_crash_${process.pid}_${Date.now().toString(36)}`;
  let dns: ChallTestSrv;
  let pebble: PebbleServer;
  let proxy: ResetProxy;
  let dir: string;
  let caBundle: string;
  let httpPort: number;
  const running: CertfleetProcess[] = [];
  const encryptionKey = randomBytes(32).toString("base64");

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "cf-crash-replicas-"));
    dns = await startChallTestSrv();
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
    const client = new pg.Client({ connectionString: PG_BASE });
    await client.connect();
    await client.query(`drop schema if exists "${schema}" cascade`);
    await client.end();
    await rm(dir, { recursive: true, force: true });
  });

  /** Both replicas share the database and its master key; only B answers Pebble's HTTP-01 checks. */
  async function replica(name: string, http01: boolean): Promise<CertfleetProcess> {
    const dataDir = join(dir, name);
    await mkdir(dataDir);
    const cf = await startCertfleet({
      dataDir,
      config: {
        database: { url: `${PG_BASE}?schema=${schema}`, encryptionKey },
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
          http01: http01 ? { enabled: true, bind: "127.0.0.1", port: httpPort } : { enabled: false },
        },
        routing: { defaultIssuer: "pebble" },
        certificates: { lockLease: "3s", lockRenewInterval: "1s", checkInterval: "1s" },
        logging: { level: "warn" },
      },
    });
    running.push(cf);
    return cf;
  }

  async function until(check: () => boolean, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!check()) {
      if (Date.now() > deadline) return false;
      await new Promise((r) => setTimeout(r, 50));
    }
    return true;
  }

  it("the surviving replica finishes the dead one's finalized orders; nothing is ordered twice", async () => {
    const b = await replica("b", true);
    const a = await replica("a", false);
    const asks = names.map((n) => a.post("/api/certificate", { domain: n }).catch(() => undefined));
    await new Promise((r) => setTimeout(r, Math.random() * 1000));
    expect(await until(() => proxy.held() > 0, 30_000)).toBe(true);
    const killedAt = Date.now();
    const exited = new Promise((r) => a.child.once("exit", r));
    a.child.kill("SIGKILL");
    await exited;
    await Promise.all(asks);
    // the kill landed after the CA finalized orders whose certificates A had not stored
    const orphaned = readLedger(proxy.exchanges).undeliveredAt(killedAt);
    expect(orphaned.length).toBeGreaterThan(0);

    // nobody asks B: it takes the orders over by itself (lease ended, journal entry found) and
    // fetches each orphaned certificate from the CA
    const delivered = () => {
      const ledger = readLedger(proxy.exchanges);
      return orphaned.every((id) => {
        const serial = ledger.certificateOf.get(id);
        return serial !== undefined && ledger.downloaded.has(serial);
      });
    };
    expect(await until(delivered, 60_000)).toBe(true);

    const ledgerBefore = readLedger(proxy.exchanges);
    const orphanedNames = orphaned.map((id) => ledgerBefore.orders.get(id)!.names[0]!);
    const served = new Map<string, string>();
    const results = await Promise.all(names.map((n) => b.post("/api/certificate", { domain: n })));
    for (const [i, res] of results.entries()) {
      expect(res.status, `${names[i]}: ${JSON.stringify(res.body)}`).toBe(200);
      served.set(names[i]!, res.body.serial);
      // what B finished on its own is stored: served from storage
      if (orphanedNames.includes(names[i]!)) expect(res.body.cached).toBe(true);
    }
    expect(new Set(served.values()).size).toBe(names.length);
    expect(lostCertificates(readLedger(proxy.exchanges), served)).toEqual([]);
    await b.stop();
  }, 150_000);
});
