import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCertfleet, type CertfleetProcess } from "../harness/certfleet-process.js";
import { startBind, type BindServer } from "../harness/bind.js";
import { freePort, startPebble, type PebbleServer } from "../harness/pebble.js";
import { startResetProxy, type ResetProxy } from "../harness/reset-proxy.js";

/**
 * An hour of lock-out after a config mistake (issue 14): a wildcard asked for before any DNS provider
 * is configured is refused with `acme_no_solver` (422) naming the missing setting, without an order at
 * the CA (counted by a proxy in front of Pebble). The failure backs off — for every caller, `/renew`
 * included, across a restart with the same config — until the operator adds a DNS provider: the next
 * start tries at once and the certificate is issued through it (RFC 2136 updates to BIND, which
 * Pebble resolves through).
 */
describe("acme_no_solver, its backoff, and the config change that lifts it", () => {
  const wildcard = "*.wild.nosolver.test";
  const zone = "nosolver.test";
  let bind: BindServer;
  let pebble: PebbleServer;
  let proxy: ResetProxy;
  let dir: string;
  let caBundle: string;
  let httpPort: number;
  const running: CertfleetProcess[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "cf-no-solver-"));
    bind = await startBind({ zone });
    httpPort = await freePort();
    pebble = await startPebble({ dnsServer: bind.address, httpPort });
    proxy = await startResetProxy(pebble);
    caBundle = join(dir, "pebble-ca.pem");
    await writeFile(caBundle, pebble.caBundlePem);
  }, 60_000);

  afterAll(async () => {
    for (const cf of running) if (cf.child.exitCode === null) cf.child.kill("SIGKILL");
    await proxy?.stop();
    await pebble?.stop();
    await bind?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  function config(providers: unknown[]): Record<string, unknown> {
    return {
      issuers: [
        {
          id: "pebble",
          type: "acme",
          caDirUrl: proxy.directoryUrl,
          caBundleFile: caBundle,
          email: "ops@example.com",
          pollInterval: "100ms",
          challenges: ["http-01", "dns-01"],
        },
      ],
      server: { bind: "127.0.0.1", port: 0, http01: { enabled: true, bind: "127.0.0.1", port: httpPort } },
      routing: { defaultIssuer: "pebble" },
      dns: {
        providers,
        resolvers: [bind.address],
        authoritativeServers: [bind.address],
        propagationInterval: "200ms",
        propagationTimeout: "15s",
      },
      logging: { level: "warn" },
    };
  }

  async function start(providers: unknown[]): Promise<CertfleetProcess> {
    const cf = await startCertfleet({ dataDir: dir, config: config(providers) });
    running.push(cf);
    return cf;
  }

  const orders = () => proxy.requests.filter((r) => r.startsWith("POST /order-plz")).length;

  it("422 naming dns.providers with no order at the CA; backoff until the provider is added", async () => {
    let cf = await start([]);
    const refused = await cf.post("/api/certificate", { domain: wildcard });
    expect(refused.status).toBe(422);
    expect(refused.body.error.code).toBe("acme_no_solver");
    expect(refused.body.error.message).toContain("dns.providers");
    expect(orders()).toBe(0);

    // every caller now gets the recorded failure instead of a new attempt, /renew included
    const again = await cf.post("/api/certificate", { domain: wildcard });
    expect(again.status).toBe(503);
    expect(again.body.error.code).toBe("issuance_backoff");
    expect(Number(again.headers.get("retry-after"))).toBeGreaterThan(3000);
    const renew = await cf.post("/api/certificate/renew", { domain: wildcard });
    expect(renew.status).toBe(503);
    expect(renew.body.error.code).toBe("issuance_backoff");
    // an admin may force an attempt: the same refusal, still nothing ordered
    const forced = await cf.post("/api/certificate/renew", { domain: wildcard, force: true });
    expect(forced.status).toBe(422);
    expect(orders()).toBe(0);

    // a restart with the same configuration keeps the backoff
    await cf.stop();
    cf = await start([]);
    expect((await cf.post("/api/certificate", { domain: wildcard })).status).toBe(503);
    await cf.stop();

    // the fix: a DNS provider for the zone. The next start tries at once.
    cf = await start([
      {
        id: "bind",
        type: "rfc2136",
        zones: [zone],
        config: {
          nameserver: bind.address,
          tsigKeyName: bind.tsig.name,
          tsigAlgorithm: bind.tsig.algorithm,
          tsigSecret: bind.tsig.secret,
        },
      },
    ]);
    const issued = await cf.post("/api/certificate", { domain: wildcard });
    expect(issued.status, JSON.stringify(issued.body)).toBe(200);
    expect(issued.body.domains).toEqual([wildcard]);
    expect(orders()).toBe(1);
    await cf.stop();
  }, 120_000);
});
