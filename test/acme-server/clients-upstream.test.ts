import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createAcmeIssuer, type AcmeIssuer } from "../../src/acme-client/acme-issuer.js";
import type { ChallengeSolver } from "../../src/acme-client/challenge-solver.js";
import { systemClock } from "../../src/core/clock.js";
import { silentLogger } from "../../src/core/logger.js";
import { dns01TxtValue } from "../../src/dns/dns01-solver.js";
import {
  freePort,
  startChallTestSrv,
  startPebble,
  type ChallTestSrv,
  type PebbleServer,
} from "../harness/pebble.js";
import { opensslVerify, sanDnsNames } from "../harness/pki.js";
import { startAcmeTestServer, type AcmeTestServer } from "./harness.js";
import { runCaddy, runCertbot, runLego } from "./real-clients.js";

/**
 * `eab` mode proxied to an upstream ACME CA (Pebble): certfleet's ACME client finalizes at Pebble with
 * the edge client's own CSR, solving Pebble's DNS-01 challenges itself (here in pebble-challtestsrv,
 * Pebble's DNS). lego, certbot and Caddy never see a DNS credential, keep their keys, and get chains
 * that verify to Pebble's root.
 */
let dns: ChallTestSrv;
let pebble: PebbleServer;
let upstream: AcmeIssuer;
let server: AcmeTestServer;
let pebbleRoot: string;

/** certfleet's DNS-01 side for the upstream CA: TXT records in pebble-challtestsrv. */
function challTestSrvSolver(srv: ChallTestSrv): ChallengeSolver {
  return {
    type: "dns-01",
    present: (c) => srv.setTxt(`_acme-challenge.${c.domain}`, dns01TxtValue(c.keyAuthorization)),
    cleanup: (c) => srv.clearTxt(`_acme-challenge.${c.domain}`),
  };
}

beforeAll(async () => {
  dns = await startChallTestSrv();
  pebble = await startPebble({ dnsServer: dns.dnsAddress });
  pebbleRoot = await pebble.rootPem();
  server = await startAcmeTestServer({
    profiles: [{ name: "default", mode: "eab", issuer: "pebble" }],
    issuers: [],
    lateIssuers: (storage) => {
      upstream = createAcmeIssuer({
        id: "pebble",
        store: storage.kv,
        solvers: [challTestSrvSolver(dns)],
        logger: silentLogger(),
        clock: systemClock,
        options: {
          directoryUrl: pebble.directoryUrl,
          caBundlePem: pebble.caBundlePem,
          preferredChallenges: ["dns-01"],
          pollIntervalMs: 100,
        },
      });
      return [upstream];
    },
  });
});
afterAll(async () => {
  await server?.stop();
  await upstream?.close();
  await pebble?.stop();
  await dns?.stop();
});

function leafAndChain(pem: string): { leaf: string; chain: string } {
  const end = pem.indexOf("-----END CERTIFICATE-----") + "-----END CERTIFICATE-----".length;
  return { leaf: pem.slice(0, end) + "\n", chain: pem.slice(end).trim() + "\n" };
}

describe("real ACME clients, eab mode, upstream Pebble", () => {
  test("lego", async () => {
    const eab = await server.acme.eab.create(["*.up.example.com", "up.example.com"]);
    const res = await runLego({
      directoryUrl: server.directoryUrl(),
      caFile: server.caFile,
      domains: ["up.example.com", "*.up.example.com"],
      eab,
      solver: ["--http", "--http.port", `127.0.0.1:${await freePort()}`],
    });
    expect(res.code, res.output + pebble.log().slice(-2000)).toBe(0);
    const { leaf, chain } = leafAndChain(await res.certPem());
    expect(sanDnsNames(leaf)).toEqual(["*.up.example.com", "up.example.com"]);
    await opensslVerify(pebbleRoot, chain, leaf);
    await expect(opensslVerify(server.caPem, chain, leaf)).rejects.toThrow();
  });

  test("certbot", async () => {
    const eab = await server.acme.eab.create(["certbot.up.example.com"]);
    const res = await runCertbot({
      directoryUrl: server.directoryUrl(),
      caFile: server.caFile,
      domains: ["certbot.up.example.com"],
      eab,
      httpPort: await freePort(),
      keyType: "rsa",
    });
    expect(res.code, res.output + (await res.log()).slice(-3000)).toBe(0);
    const leaf = await res.livePem("cert.pem");
    expect(sanDnsNames(leaf)).toEqual(["certbot.up.example.com"]);
    await opensslVerify(pebbleRoot, await res.livePem("chain.pem"), leaf);
  });

  test("caddy", async () => {
    const eab = await server.acme.eab.create(["caddy.up.example.com"]);
    const res = await runCaddy({
      directoryUrl: server.directoryUrl(),
      caFile: server.caFile,
      domain: "caddy.up.example.com",
      eab,
      httpPort: await freePort(),
      httpsPort: await freePort(),
    });
    expect(res.obtained, res.output.slice(-4000)).toBe(true);
    const { leaf, chain } = leafAndChain(await res.certPem());
    expect(sanDnsNames(leaf)).toEqual(["caddy.up.example.com"]);
    await opensslVerify(pebbleRoot, chain, leaf);
  });
});
