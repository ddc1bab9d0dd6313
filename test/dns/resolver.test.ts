import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { systemClock } from "../../src/core/clock.js";
import type { CertfleetError } from "../../src/core/errors.js";
import { silentLogger } from "../../src/core/logger.js";
import type { DnsProvider } from "../../src/dns/dns-provider.js";
import { createPropagationChecker } from "../../src/dns/propagation.js";
import {
  createRfc2136Provider,
  rfc2136ConfigSchema,
} from "../../src/dns/providers/rfc2136/rfc2136-provider.js";
import { createDnsResolver, type DnsResolver } from "../../src/dns/resolver.js";
import { startBind, type BindServer } from "../harness/bind.js";

const PARENT = "parent.test";
const CHILD = "sub.parent.test";
const DELEGATE = "delegate.test";

let bind: BindServer;
let resolver: DnsResolver;
let provider: DnsProvider;

beforeAll(async () => {
  bind = await startBind({
    zone: PARENT,
    extraZones: [CHILD, DELEGATE],
    records: {
      [PARENT]: [
        `_acme-challenge.alias.${PARENT}. CNAME x1.${DELEGATE}.`,
        `_acme-challenge.chain.${PARENT}. CNAME hop.${PARENT}.`,
        `hop.${PARENT}. CNAME x2.${DELEGATE}.`,
        `_acme-challenge.loop.${PARENT}. CNAME loop2.${PARENT}.`,
        `loop2.${PARENT}. CNAME _acme-challenge.loop.${PARENT}.`,
        `apexalias.${PARENT}. CNAME ${DELEGATE}.`,
      ],
    },
  });
  resolver = createDnsResolver({ servers: [bind.address], timeoutMs: 1_000, tries: 1 });
  provider = createRfc2136Provider(
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

const signal = () => AbortSignal.timeout(10_000);
const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => "resolved",
    (e: CertfleetError) => e.code,
  );

describe("findZone (SOA walk-up against BIND)", () => {
  it("finds the apex for the apex, a deep name and a trailing-dot name", async () => {
    expect(await resolver.findZone(PARENT, signal())).toBe(PARENT);
    expect(await resolver.findZone(`_acme-challenge.a.b.${PARENT}`, signal())).toBe(PARENT);
    expect(await resolver.findZone(`WWW.${PARENT}.`, signal())).toBe(PARENT);
  });

  it("finds a child zone rather than its parent", async () => {
    expect(await resolver.findZone(`_acme-challenge.x.${CHILD}`, signal())).toBe(CHILD);
  });

  it("does not mistake an alias of an apex for an apex", async () => {
    expect(await resolver.findZone(`apexalias.${PARENT}`, signal())).toBe(PARENT);
  });

  it("a name in no zone fails with dns_zone_not_found", async () => {
    expect(await codeOf(resolver.findZone("a.nowhere.invalid", signal()))).toBe("dns_zone_not_found");
  });

  it("an unreachable resolver fails with dns_lookup_failed", async () => {
    const dead = createDnsResolver({ servers: ["127.0.0.1:1"], timeoutMs: 300, tries: 1 });
    expect(await codeOf(dead.findZone(`www.${PARENT}`, signal()))).toBe("dns_lookup_failed");
  });

  it("an aborted signal rejects with aborted", async () => {
    expect(await codeOf(resolver.findZone(PARENT, AbortSignal.abort()))).toBe("aborted");
  });
});

describe("followChallengeCname", () => {
  it("returns the name itself when it is not an alias", async () => {
    expect(await resolver.followChallengeCname(`_acme-challenge.www.${PARENT}`, signal())).toBe(
      `_acme-challenge.www.${PARENT}`,
    );
  });

  it("follows a delegation into another zone, over several hops", async () => {
    expect(await resolver.followChallengeCname(`_acme-challenge.alias.${PARENT}`, signal())).toBe(
      `x1.${DELEGATE}`,
    );
    expect(await resolver.followChallengeCname(`_acme-challenge.chain.${PARENT}`, signal())).toBe(
      `x2.${DELEGATE}`,
    );
    expect(await resolver.findZone(`x1.${DELEGATE}`, signal())).toBe(DELEGATE);
  });

  it("a CNAME loop fails with dns_cname_loop", async () => {
    expect(await codeOf(resolver.followChallengeCname(`_acme-challenge.loop.${PARENT}`, signal()))).toBe(
      "dns_cname_loop",
    );
  });
});

describe("nameservers and addresses", () => {
  it("reads the zone's NS set and its address", async () => {
    expect(await resolver.nameservers(PARENT, signal())).toEqual([`ns1.${PARENT}`]);
    expect(await resolver.addresses(`ns1.${PARENT}`, signal())).toEqual(["127.0.0.1"]);
    expect(await resolver.addresses(`missing.${PARENT}`, signal())).toEqual([]);
  });
});

describe("waitForTxt (authoritative servers)", () => {
  const record = () => ({
    zone: PARENT,
    name: `_acme-challenge.p${randomBytes(3).toString("hex")}.${PARENT}`,
    value: randomBytes(32).toString("base64url"),
    ttl: 60,
  });

  it("succeeds after the update, finding the servers through NS → A", async () => {
    // The zone's NS (ns1.parent.test → 127.0.0.1) answers on BIND's port, not 53.
    const checker = createPropagationChecker({
      resolver,
      logger: silentLogger(),
      authoritativePort: bind.port,
    });
    const r = record();
    await provider.appendTxt(r, signal());
    await checker.waitForTxt({
      fqdn: r.name,
      value: r.value,
      timeoutMs: 5_000,
      intervalMs: 100,
      signal: signal(),
    });
    await provider.deleteTxt(r);
  });

  it("waits for a value that appears while it polls (explicit server list)", async () => {
    const checker = createPropagationChecker({
      resolver,
      logger: silentLogger(),
      authoritativeServers: [bind.address],
    });
    const r = record();
    const started = Date.now();
    const waiting = checker.waitForTxt({
      fqdn: r.name,
      value: r.value,
      timeoutMs: 5_000,
      intervalMs: 100,
      signal: signal(),
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    await provider.appendTxt(r, signal());
    await waiting;
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    await provider.deleteTxt(r);
  });

  it("times out with dns_propagation_timeout naming the pending servers", async () => {
    const checker = createPropagationChecker({
      resolver,
      logger: silentLogger(),
      authoritativePort: bind.port,
    });
    const r = record();
    const err = (await checker
      .waitForTxt({ fqdn: r.name, value: r.value, timeoutMs: 500, intervalMs: 100, signal: signal() })
      .catch((e: unknown) => e)) as CertfleetError;
    expect(err.code).toBe("dns_propagation_timeout");
    expect(err.details).toMatchObject({ name: r.name, pending: [bind.address] });
  });

  it("a different value at the name is not enough", async () => {
    const checker = createPropagationChecker({
      resolver,
      logger: silentLogger(),
      authoritativeServers: [bind.address],
    });
    const r = record();
    await provider.appendTxt(r, signal());
    expect(
      await codeOf(
        checker.waitForTxt({
          fqdn: r.name,
          value: "other",
          timeoutMs: 300,
          intervalMs: 100,
          signal: signal(),
        }),
      ),
    ).toBe("dns_propagation_timeout");
    await provider.deleteTxt(r);
  });

  it("every server must have it: one server that never answers keeps it pending", async () => {
    const checker = createPropagationChecker({
      resolver,
      logger: silentLogger(),
      authoritativeServers: [bind.address, "127.0.0.1:1"],
      queryTimeoutMs: 200,
    });
    const r = record();
    await provider.appendTxt(r, signal());
    const err = (await checker
      .waitForTxt({ fqdn: r.name, value: r.value, timeoutMs: 600, intervalMs: 100, signal: signal() })
      .catch((e: unknown) => e)) as CertfleetError;
    expect(err.code).toBe("dns_propagation_timeout");
    expect(err.details).toMatchObject({ pending: ["127.0.0.1:1"] });
    await provider.deleteTxt(r);
  });

  it("the caller's abort wins over the timeout and is reported as aborted", async () => {
    const checker = createPropagationChecker({
      resolver,
      logger: silentLogger(),
      authoritativeServers: [bind.address],
    });
    const r = record();
    expect(
      await codeOf(
        checker.waitForTxt({
          fqdn: r.name,
          value: r.value,
          timeoutMs: 5_000,
          intervalMs: 100,
          signal: AbortSignal.timeout(200),
        }),
      ),
    ).toBe("aborted");
  });
});
