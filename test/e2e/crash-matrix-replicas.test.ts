import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect, createServer, type Server } from "node:net";
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
 * database. Replica A orders 10 names from Pebble (certificate downloads held 0.5 s by a proxy) and is
 * killed with SIGKILL while finalized certificates are on their way; replica B, asked for nothing,
 * finishes A's journaled orders by itself once their lock leases end. A comes back, B orders the next
 * 10 names and is killed the same way; A finishes those. Then every name is served. Counted at the
 * CA: one finalized order per name, its certificate is the one served, nothing ordered again.
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
  /** Pebble's HTTP-01 port, relayed to whichever replica's own HTTP-01 listener is alive (a load balancer). */
  let relay: Server;
  const http01Ports = new Map<string, number>();
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
    relay = createServer((client) => {
      const targets = [...http01Ports.values()];
      const attempt = (i: number): void => {
        if (i >= targets.length) return void client.destroy();
        const upstream = connect(targets[i]!, "127.0.0.1");
        upstream.once("connect", () => client.pipe(upstream).pipe(client));
        upstream.once("error", () => (upstream.readyState === "opening" ? attempt(i + 1) : client.destroy()));
      };
      client.on("error", () => undefined);
      attempt(0);
    });
    await new Promise<void>((resolve) => relay.listen(httpPort, "127.0.0.1", resolve));
  }, 60_000);

  afterAll(async () => {
    for (const cf of running) if (cf.child.exitCode === null) cf.child.kill("SIGKILL");
    await new Promise((r) => (relay ? relay.close(r) : r(undefined)));
    await proxy?.stop();
    await pebble?.stop();
    await dns?.stop();
    const client = new pg.Client({ connectionString: PG_BASE });
    await client.connect();
    await client.query(`drop schema if exists "${schema}" cascade`);
    await client.end();
    await rm(dir, { recursive: true, force: true });
  });

  /** Both replicas share the database and its master key; each answers HTTP-01 on its own port. */
  async function replica(name: string): Promise<CertfleetProcess> {
    const dataDir = join(dir, name);
    await mkdir(dataDir, { recursive: true });
    if (!http01Ports.has(name)) http01Ports.set(name, await freePort());
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
          http01: { enabled: true, bind: "127.0.0.1", port: http01Ports.get(name) },
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

  /**
   * Ask `victim` for `batch`, kill it (SIGKILL) while finalized certificates are held on their way,
   * and wait until `survivor`, asked for nothing, has fetched every orphaned certificate itself.
   * Returns the names whose orders were orphaned.
   */
  async function killDuring(victim: CertfleetProcess, batch: string[]): Promise<string[]> {
    const asks = batch.map((n) => victim.post("/api/certificate", { domain: n }).catch(() => undefined));
    await new Promise((r) => setTimeout(r, Math.random() * 300));
    expect(await until(() => proxy.held() > 0, 30_000)).toBe(true);
    const killedAt = Date.now();
    const exited = new Promise((r) => victim.child.once("exit", r));
    victim.child.kill("SIGKILL");
    await exited;
    await Promise.all(asks);
    // the kill landed after the CA finalized orders whose certificates the victim had not stored
    const orphaned = readLedger(proxy.exchanges).undeliveredAt(killedAt);
    expect(orphaned.length).toBeGreaterThan(0);
    const delivered = () => {
      const ledger = readLedger(proxy.exchanges);
      return orphaned.every((id) => {
        const serial = ledger.certificateOf.get(id);
        return serial !== undefined && ledger.downloaded.has(serial);
      });
    };
    expect(await until(delivered, 60_000)).toBe(true);
    const ledger = readLedger(proxy.exchanges);
    return orphaned.map((id) => ledger.orders.get(id)!.names[0]!);
  }

  it("each replica in turn is killed; the other finishes its finalized orders; nothing is ordered twice", async () => {
    const b = await replica("b");
    const a = await replica("a");
    const orphaned = await killDuring(a, names.slice(0, 10));
    const a2 = await replica("a"); // the same data directory: A comes back
    orphaned.push(...(await killDuring(b, names.slice(10))));

    const served = new Map<string, string>();
    const results = await Promise.all(names.map((n) => a2.post("/api/certificate", { domain: n })));
    for (const [i, res] of results.entries()) {
      expect(res.status, `${names[i]}: ${JSON.stringify(res.body)}`).toBe(200);
      served.set(names[i]!, res.body.serial);
      // what a survivor finished on its own is stored: served from storage
      if (orphaned.includes(names[i]!)) expect(res.body.cached).toBe(true);
    }
    expect(new Set(served.values()).size).toBe(names.length);
    expect(lostCertificates(readLedger(proxy.exchanges), served)).toEqual([]);
    await a2.stop();
  }, 170_000);
});
