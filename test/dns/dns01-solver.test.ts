import { createHash, randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SolverChallenge } from "../../src/acme-client/challenge-solver.js";
import { systemClock } from "../../src/core/clock.js";
import type { CertfleetError } from "../../src/core/errors.js";
import { createLogger, silentLogger } from "../../src/core/logger.js";
import {
  createDns01Solver,
  dns01TxtValue,
  selectRoute,
  type Dns01Route,
} from "../../src/dns/dns01-solver.js";
import type { DnsProvider } from "../../src/dns/dns-provider.js";
import { createMemoryDnsProvider } from "../../src/dns/memory-provider.js";
import { createPropagationChecker } from "../../src/dns/propagation.js";
import {
  createRfc2136Provider,
  rfc2136ConfigSchema,
} from "../../src/dns/providers/rfc2136/rfc2136-provider.js";
import { createDnsResolver } from "../../src/dns/resolver.js";
import { startBind, type BindServer } from "../harness/bind.js";

const ZONE = "solver.test";
const DELEGATE = "acme-dns.test";

describe("selectRoute", () => {
  const routes = [
    { suffix: "" },
    { suffix: "example.com" },
    { suffix: "dev.example.com" },
    { suffix: "*.other.org" },
  ];

  it("picks the longest matching suffix, on label boundaries", () => {
    expect(selectRoute(routes, "example.com")).toBe(routes[1]);
    expect(selectRoute(routes, "www.example.com")).toBe(routes[1]);
    expect(selectRoute(routes, "a.dev.example.com")).toBe(routes[2]);
    expect(selectRoute(routes, "dev.example.com")).toBe(routes[2]);
    expect(selectRoute(routes, "notexample.com")).toBe(routes[0]);
    expect(selectRoute(routes, "x.other.org.")).toBe(routes[3]);
  });

  it("without a catch-all, an unmatched name has no route", () => {
    expect(selectRoute(routes.slice(1), "example.net")).toBeUndefined();
  });
});

describe("dns01TxtValue", () => {
  it("is base64url(sha256(keyAuthorization)) without padding", () => {
    const ka = "token.thumbprint";
    expect(dns01TxtValue(ka)).toBe(createHash("sha256").update(ka).digest("base64url"));
    expect(dns01TxtValue(ka)).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});

describe("dns-01 solver against BIND", () => {
  let bind: BindServer;
  let bindProvider: DnsProvider;

  beforeAll(async () => {
    bind = await startBind({
      zone: ZONE,
      extraZones: [DELEGATE],
      records: { [ZONE]: [`_acme-challenge.delegated.${ZONE}. CNAME d1.${DELEGATE}.`] },
    });
    bindProvider = createRfc2136Provider(
      rfc2136ConfigSchema.parse({
        nameserver: bind.address,
        tsigKeyName: bind.tsig.name,
        tsigAlgorithm: bind.tsig.algorithm,
        tsigSecret: bind.tsig.secret,
      }),
      { clock: systemClock },
    );
  });
  afterAll(async () => {
    await bind?.stop();
  });

  const propagation = { timeoutMs: 5_000, intervalMs: 100 };
  const challenge = (domain: string, wildcard = false): SolverChallenge => ({
    domain,
    wildcard,
    token: randomBytes(16).toString("base64url"),
    keyAuthorization: `${randomBytes(16).toString("base64url")}.thumbprint`,
  });

  function solver(routes: Dns01Route[], logger = silentLogger()) {
    const resolver = createDnsResolver({ servers: [bind.address], timeoutMs: 1_000, tries: 1 });
    return createDns01Solver({
      routes,
      resolver,
      propagation: createPropagationChecker({ resolver, logger, authoritativePort: bind.port }),
      logger,
    });
  }

  it("routes by longest suffix: present → waitReady → cleanup through the chosen provider", async () => {
    const other = createMemoryDnsProvider("catch-all");
    const dev = createMemoryDnsProvider("dev");
    const s = solver([
      { suffix: "", provider: other, propagation: { ...propagation, skip: true } },
      { suffix: ZONE, provider: bindProvider, propagation },
      { suffix: `dev.${ZONE}`, provider: dev, zone: ZONE, propagation: { ...propagation, skip: true } },
    ]);

    const www = challenge(`www.${ZONE}`);
    await s.present(www, AbortSignal.timeout(10_000));
    await s.waitReady!(www, AbortSignal.timeout(10_000));
    expect(await bind.dig(`_acme-challenge.www.${ZONE}`, "TXT")).toEqual([
      dns01TxtValue(www.keyAuthorization),
    ]);
    await s.cleanup(www);
    expect(await bind.dig(`_acme-challenge.www.${ZONE}`, "TXT")).toEqual([]);

    const api = challenge(`api.dev.${ZONE}`);
    await s.present(api, AbortSignal.timeout(10_000));
    expect(dev.values(`_acme-challenge.api.dev.${ZONE}`)).toEqual([dns01TxtValue(api.keyAuthorization)]);
    expect(dev.records()[0]?.zone).toBe(ZONE);
    expect(other.records()).toEqual([]);
    await s.cleanup(api);
    expect(dev.records()).toEqual([]);

    const elsewhere = challenge("example.net");
    await s.present(elsewhere, AbortSignal.timeout(10_000)).catch(() => undefined); // no zone via BIND
    await s.cleanup(elsewhere);
    expect(other.records()).toEqual([]);
  });

  it("apex and wildcard at the same name: both values live, cleaning one keeps the other", async () => {
    const s = solver([{ suffix: ZONE, provider: bindProvider, propagation }]);
    const apex = challenge(`shop.${ZONE}`);
    const wildcard = challenge(`shop.${ZONE}`, true);
    await Promise.all([
      s.present(apex, AbortSignal.timeout(10_000)),
      s.present(wildcard, AbortSignal.timeout(10_000)),
    ]);
    await Promise.all([
      s.waitReady!(apex, AbortSignal.timeout(10_000)),
      s.waitReady!(wildcard, AbortSignal.timeout(10_000)),
    ]);
    expect((await bind.dig(`_acme-challenge.shop.${ZONE}`, "TXT")).sort()).toEqual(
      [dns01TxtValue(apex.keyAuthorization), dns01TxtValue(wildcard.keyAuthorization)].sort(),
    );
    await s.cleanup(apex);
    expect(await bind.dig(`_acme-challenge.shop.${ZONE}`, "TXT")).toEqual([
      dns01TxtValue(wildcard.keyAuthorization),
    ]);
    await s.cleanup(wildcard);
    expect(await bind.dig(`_acme-challenge.shop.${ZONE}`, "TXT")).toEqual([]);
  });

  it("follows the _acme-challenge CNAME into the delegated zone and uses that zone's route", async () => {
    const domainRoute = createMemoryDnsProvider("domain-route");
    const s = solver([
      { suffix: ZONE, provider: domainRoute, propagation },
      { suffix: DELEGATE, provider: bindProvider, propagation },
    ]);
    const c = challenge(`delegated.${ZONE}`);
    await s.present(c, AbortSignal.timeout(10_000));
    await s.waitReady!(c, AbortSignal.timeout(10_000));
    expect(await bind.dig(`d1.${DELEGATE}`, "TXT")).toEqual([dns01TxtValue(c.keyAuthorization)]);
    expect(domainRoute.records()).toEqual([]);
    await s.cleanup(c);
    expect(await bind.dig(`d1.${DELEGATE}`, "TXT")).toEqual([]);
  });

  it("a delegated name with no route of its own is written through the domain's route", async () => {
    const s = solver([{ suffix: ZONE, provider: bindProvider, propagation }]);
    const c = challenge(`delegated.${ZONE}`);
    await s.present(c, AbortSignal.timeout(10_000));
    expect(await bind.dig(`d1.${DELEGATE}`, "TXT")).toEqual([dns01TxtValue(c.keyAuthorization)]);
    await s.cleanup(c);
  });

  it("waitReady fails with dns_propagation_timeout when the provider did not really write", async () => {
    const s = solver([
      { suffix: ZONE, provider: createMemoryDnsProvider(), propagation: { timeoutMs: 300, intervalMs: 100 } },
    ]);
    const c = challenge(`ghost.${ZONE}`);
    await s.present(c, AbortSignal.timeout(10_000));
    const err = (await s.waitReady!(c, AbortSignal.timeout(10_000)).catch(
      (e: unknown) => e,
    )) as CertfleetError;
    expect(err.code).toBe("dns_propagation_timeout");
    await s.cleanup(c);
  });

  it("no route for the domain fails with dns_route_missing", async () => {
    const s = solver([{ suffix: ZONE, provider: bindProvider, propagation }]);
    const err = (await s
      .present(challenge("example.org"), AbortSignal.timeout(10_000))
      .catch((e: unknown) => e)) as CertfleetError;
    expect(err.code).toBe("dns_route_missing");
  });

  it("cleanup never throws: a failing delete is logged as a warning", async () => {
    const lines: string[] = [];
    const logger = createLogger({
      level: "warn",
      destination: new Writable({
        write(chunk: Buffer, _enc, done) {
          lines.push(chunk.toString("utf8"));
          done();
        },
      }),
    });
    const broken: DnsProvider = {
      id: "broken",
      appendTxt: async () => undefined,
      deleteTxt: async () => {
        throw new Error("api down");
      },
    };
    const s = solver([{ suffix: ZONE, provider: broken, zone: ZONE, propagation }], logger);
    const c = challenge(`www.${ZONE}`);
    await s.present(c, AbortSignal.timeout(10_000));
    await expect(s.cleanup(c)).resolves.toBeUndefined();
    expect(lines.join("")).toContain('"provider":"broken"');
    // A challenge that was never presented: nothing to do, nothing thrown.
    await expect(s.cleanup(challenge(`never.${ZONE}`))).resolves.toBeUndefined();
  });
});
