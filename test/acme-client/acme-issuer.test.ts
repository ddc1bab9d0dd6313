import { X509Certificate } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { accountStorageId, ACCOUNT_NAMESPACE } from "../../src/acme-client/acme-account.js";
import type { ChallengeSolver } from "../../src/acme-client/challenge-solver.js";
import { createHttp01Solver } from "../../src/acme-client/http01-solver.js";
import { sleep } from "../../src/core/clock.js";
import { UpstreamError, type CertfleetError } from "../../src/core/errors.js";
import {
  freePort,
  startChallTestSrv,
  startPebble,
  type ChallTestSrv,
  type PebbleServer,
} from "../harness/pebble.js";
import {
  createChallTestDnsSolver,
  createTestStore,
  keyAndCsr,
  makeIssuer,
  recordingLogger,
  recordingSolver,
  signal,
  startChallengeResponder,
  uniqueName,
  type ChallengeResponder,
  type TestStore,
} from "./support.js";

let dns: ChallTestSrv;
let pebble: PebbleServer;
let responder: ChallengeResponder;
/** Holds HTTP-01 tokens for every test; the responder answers from it. */
const tokens: TestStore = createTestStore();
const http01 = () => createHttp01Solver({ store: tokens, ttlMs: 60_000 });

beforeAll(async () => {
  dns = await startChallTestSrv();
  responder = await startChallengeResponder(tokens);
  pebble = await startPebble({
    dnsServer: dns.dnsAddress,
    httpPort: responder.port,
    config: { domainBlocklist: ["blocked.example.test"] },
  });
});

afterAll(async () => {
  await pebble?.stop();
  await responder?.stop();
  await dns?.stop();
});

function options() {
  return { directoryUrl: pebble.directoryUrl, caBundlePem: pebble.caBundlePem, email: "ops@example.test" };
}

async function rejection(p: Promise<unknown>): Promise<CertfleetError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeDefined();
  return e as CertfleetError;
}

function newAccountCalls(): number {
  return pebble
    .log()
    .split("\n")
    .filter((l) => l.includes("POST /sign-me-up")).length;
}

async function expectChainsToPebble(certPem: string, chainPem: string, names: string[]) {
  const leaf = new X509Certificate(certPem);
  const intermediate = new X509Certificate(chainPem);
  const root = new X509Certificate(await pebble.rootPem());
  for (const n of names) expect(leaf.subjectAltName).toContain(`DNS:${n}`);
  expect(leaf.verify(intermediate.publicKey)).toBe(true);
  expect(intermediate.verify(root.publicKey)).toBe(true);
}

describe("ACME issuer against Pebble", () => {
  it("issues an ECDSA certificate over HTTP-01, splits leaf and chain, and removes the token", async () => {
    const store = createTestStore();
    const solver = recordingSolver(http01());
    const issuer = makeIssuer(store, [solver], options());
    const names = [uniqueName(), uniqueName()];
    const { csrPem } = await keyAndCsr(names);

    const issued = await issuer.issue({ names, csrPem, keyType: "ec256" }, signal());

    expect(issued.certPem.match(/BEGIN CERTIFICATE/g)).toHaveLength(1);
    expect(issued.chainPem.match(/BEGIN CERTIFICATE/g)).toHaveLength(1);
    await expectChainsToPebble(issued.certPem, issued.chainPem, names);
    expect(solver.presented.map((c) => c.domain).sort()).toEqual([...names].sort());
    expect(solver.cleaned).toHaveLength(2);
    for (const c of solver.presented) {
      expect(c.keyAuthorization.startsWith(`${c.token}.`)).toBe(true);
      expect(responder.hits.get(c.token)).toBeGreaterThanOrEqual(1);
      expect(tokens.tokens.has(c.token)).toBe(false);
    }
    await issuer.close();
  });

  it("issues for an RSA CSR", async () => {
    const issuer = makeIssuer(createTestStore(), [http01()], options());
    const names = [uniqueName()];
    const { csrPem } = await keyAndCsr(names, "rsa2048");
    const issued = await issuer.issue({ names, csrPem, keyType: "rsa2048" }, signal());
    expect(new X509Certificate(issued.certPem).publicKey.asymmetricKeyType).toBe("rsa");
    await expectChainsToPebble(issued.certPem, issued.chainPem, names);
    await issuer.close();
  });

  it("uses dns-01 for a wildcard and the preferred http-01 for its apex", async () => {
    const httpSolver = recordingSolver(http01());
    const dnsSolver = recordingSolver(createChallTestDnsSolver(dns));
    const issuer = makeIssuer(createTestStore(), [httpSolver, dnsSolver], options());
    const apex = uniqueName();
    const names = [`*.${apex}`, apex];
    const { csrPem } = await keyAndCsr(names);

    const issued = await issuer.issue({ names, csrPem, keyType: "ec256" }, signal());

    await expectChainsToPebble(issued.certPem, issued.chainPem, names);
    expect(dnsSolver.presented).toEqual([expect.objectContaining({ domain: apex, wildcard: true })]);
    expect(httpSolver.presented).toEqual([expect.objectContaining({ domain: apex, wildcard: false })]);
    expect(dnsSolver.cleaned).toHaveLength(1);
    expect(httpSolver.cleaned).toHaveLength(1);
    await issuer.close();
  });

  it("logs each issuance phase at info, so a stuck DNS wait is visible", async () => {
    const { logger, lines } = recordingLogger();
    const dnsSolver = recordingSolver(createChallTestDnsSolver(dns));
    const issuer = makeIssuer(
      createTestStore(),
      [dnsSolver],
      { ...options(), preferredChallenges: ["dns-01"] },
      "test-acme",
      logger,
    );
    const names = [uniqueName()];
    await issuer.issue({ names, csrPem: (await keyAndCsr(names)).csrPem, keyType: "ec256" }, signal());
    const info = lines.filter((l) => l["level"] === 30).map((l) => String(l["msg"]));
    const phases = [
      "acme order created",
      "acme challenges presented",
      "acme waiting for challenge propagation",
      "acme validating: challenges answered, CA checking",
      "acme order finalized, certificate downloaded",
    ];
    expect(info.filter((m) => phases.includes(m))).toEqual(phases);
    const presented = lines.find((l) => l["msg"] === "acme challenges presented");
    expect(presented).toMatchObject({ names, challenges: [`dns-01 ${names[0]}`] });
    await issuer.close();
  });

  it("uses dns-01 only when it is the only preferred type", async () => {
    const dnsSolver = recordingSolver(createChallTestDnsSolver(dns));
    const httpSolver = recordingSolver(http01());
    const issuer = makeIssuer(createTestStore(), [httpSolver, dnsSolver], {
      ...options(),
      preferredChallenges: ["dns-01"],
    });
    const names = [uniqueName()];
    const { csrPem } = await keyAndCsr(names);
    await issuer.issue({ names, csrPem, keyType: "ec256" }, signal());
    expect(dnsSolver.presented).toHaveLength(1);
    expect(httpSolver.presented).toHaveLength(0);
    await issuer.close();
  });

  it("creates the account once and reuses it from storage in a second issuer instance", async () => {
    const store = createTestStore();
    const before = newAccountCalls();
    const first = makeIssuer(store, [http01()], options());
    const names1 = [uniqueName()];
    await first.issue(
      { names: names1, csrPem: (await keyAndCsr(names1)).csrPem, keyType: "ec256" },
      signal(),
    );
    const second = makeIssuer(store, [http01()], options());
    const names2 = [uniqueName()];
    await second.issue(
      { names: names2, csrPem: (await keyAndCsr(names2)).csrPem, keyType: "ec256" },
      signal(),
    );

    expect(newAccountCalls() - before).toBe(1);
    const accountId = accountStorageId(pebble.directoryUrl, "ops@example.test");
    const keys = [...store.values.keys()].filter((k) => k.startsWith(`${ACCOUNT_NAMESPACE}|`)).sort();
    expect(keys).toEqual([`${ACCOUNT_NAMESPACE}|${accountId}/key`, `${ACCOUNT_NAMESPACE}|${accountId}/url`]);
    expect(store.values.get(`${ACCOUNT_NAMESPACE}|${accountId}/url`)).toMatch(
      /^https:\/\/127\.0\.0\.1:\d+\//,
    );
    await first.close();
    await second.close();
  });

  it("stores the account key as a create-once secret", async () => {
    const puts: { key: string; options: unknown }[] = [];
    const inner = createTestStore();
    const store = {
      getValue: inner.getValue,
      putValue: (ns: string, key: string, value: string, opts?: { secret?: boolean; ifAbsent?: boolean }) => {
        puts.push({ key, options: opts });
        return inner.putValue(ns, key, value, opts);
      },
    };
    const issuer = makeIssuer(store, [http01()], options());
    const names = [uniqueName()];
    await issuer.issue({ names, csrPem: (await keyAndCsr(names)).csrPem, keyType: "ec256" }, signal());
    expect(puts.find((p) => p.key.endsWith("/key"))?.options).toEqual({ secret: true, ifAbsent: true });
    await issuer.close();
  });

  it("registers again when the stored account URL is unknown to the CA", async () => {
    const store = createTestStore();
    const accountId = accountStorageId(pebble.directoryUrl, "ops@example.test");
    const bogus = `${new URL(pebble.directoryUrl).origin}/my-account/does-not-exist`;
    await store.putValue(ACCOUNT_NAMESPACE, `${accountId}/url`, bogus);
    const issuer = makeIssuer(store, [http01()], options());
    const names = [uniqueName()];
    await issuer.issue({ names, csrPem: (await keyAndCsr(names)).csrPem, keyType: "ec256" }, signal());
    const url = store.values.get(`${ACCOUNT_NAMESPACE}|${accountId}/url`);
    expect(url).not.toBe(bogus);
    expect(url).toMatch(/\/my-account\//);
    await issuer.close();
  });

  it("runs cleanup when waitReady throws", async () => {
    const solver = recordingSolver(http01(), {
      waitReady: async () => {
        throw new Error("propagation check exploded");
      },
    });
    const issuer = makeIssuer(createTestStore(), [solver], options());
    const names = [uniqueName(), uniqueName()];
    const e = await rejection(
      issuer.issue({ names, csrPem: (await keyAndCsr(names)).csrPem, keyType: "ec256" }, signal()),
    );
    expect(e.code).toBe("acme_solver_failed");
    expect(solver.presented).toHaveLength(2);
    expect(solver.cleaned.map((c) => c.token).sort()).toEqual(solver.presented.map((c) => c.token).sort());
    for (const c of solver.presented) expect(tokens.tokens.has(c.token)).toBe(false);
    await issuer.close();
  });

  it("runs cleanup for every started present when one present fails", async () => {
    const good = recordingSolver(http01());
    let calls = 0;
    const flaky: ChallengeSolver & { cleaned: string[] } = {
      type: "http-01",
      cleaned: [],
      async present(c, s) {
        calls += 1;
        if (calls === 2) throw new UpstreamError("dns_provider_failed", "boom");
        await good.present(c, s);
      },
      async cleanup(c) {
        flaky.cleaned.push(c.token);
        await good.cleanup(c);
      },
    };
    const issuer = makeIssuer(createTestStore(), [flaky], options());
    const names = [uniqueName(), uniqueName()];
    const e = await rejection(
      issuer.issue({ names, csrPem: (await keyAndCsr(names)).csrPem, keyType: "ec256" }, signal()),
    );
    expect(e.code).toBe("dns_provider_failed");
    expect(flaky.cleaned).toHaveLength(2);
    await issuer.close();
  });

  it("rejects with `aborted` when aborted mid-order, and cleans up", async () => {
    const controller = new AbortController();
    const solver = recordingSolver(http01(), {
      waitReady: async (_c, s) => {
        controller.abort();
        await sleep(10_000, s);
      },
    });
    const issuer = makeIssuer(createTestStore(), [solver], options());
    const names = [uniqueName()];
    const started = Date.now();
    const e = await rejection(
      issuer.issue({ names, csrPem: (await keyAndCsr(names)).csrPem, keyType: "ec256" }, controller.signal),
    );
    expect(e.code).toBe("aborted");
    expect(Date.now() - started).toBeLessThan(5000);
    expect(solver.cleaned).toHaveLength(1);
    expect(tokens.tokens.has(solver.presented[0]!.token)).toBe(false);
    await issuer.close();
  });

  it("rejects at once with `aborted` for an already aborted signal", async () => {
    const issuer = makeIssuer(createTestStore(), [http01()], options());
    const names = [uniqueName()];
    const e = await rejection(
      issuer.issue({ names, csrPem: (await keyAndCsr(names)).csrPem, keyType: "ec256" }, AbortSignal.abort()),
    );
    expect(e.code).toBe("aborted");
    await issuer.close();
  });

  it("maps a wrong key authorization to non-retryable acme_authorization_failed", async () => {
    const wrong: ChallengeSolver = {
      type: "http-01",
      present: (c) => tokens.putChallengeToken(c.token, `${c.token}.not-the-thumbprint`, new Date()),
      cleanup: (c) => tokens.deleteChallengeToken(c.token),
    };
    const issuer = makeIssuer(createTestStore(), [wrong], options());
    const names = [uniqueName()];
    const e = await rejection(
      issuer.issue({ names, csrPem: (await keyAndCsr(names)).csrPem, keyType: "ec256" }, signal()),
    );
    expect(e.code).toBe("acme_authorization_failed");
    expect((e as UpstreamError).retryable).toBe(false);
    expect(e.details).toMatchObject({
      acmeType: "urn:ietf:params:acme:error:unauthorized",
      identifier: names[0],
    });
    expect(e.details?.["acmeDetail"]).toEqual(expect.any(String));
    await issuer.close();
  });

  it("maps a refused connection during validation to retryable acme_challenge_failed", async () => {
    const name = uniqueName();
    await dns.addA(name, ["127.0.0.2"]);
    const solver = recordingSolver(http01());
    const issuer = makeIssuer(createTestStore(), [solver], options());
    const e = await rejection(
      issuer.issue({ names: [name], csrPem: (await keyAndCsr([name])).csrPem, keyType: "ec256" }, signal()),
    );
    expect(e.code).toBe("acme_challenge_failed");
    expect((e as UpstreamError).retryable).toBe(true);
    expect(e.details).toMatchObject({ acmeType: "urn:ietf:params:acme:error:connection" });
    expect(solver.cleaned).toHaveLength(1);
    await issuer.close();
  });

  it("maps a name the CA refuses to non-retryable acme_authorization_failed", async () => {
    const issuer = makeIssuer(createTestStore(), [http01()], options());
    const names = ["www.blocked.example.test"];
    const e = await rejection(
      issuer.issue({ names, csrPem: (await keyAndCsr(names)).csrPem, keyType: "ec256" }, signal()),
    );
    expect(e.code).toBe("acme_authorization_failed");
    expect((e as UpstreamError).retryable).toBe(false);
    expect(e.details).toMatchObject({ acmeType: "urn:ietf:params:acme:error:rejectedIdentifier" });
    await issuer.close();
  });

  it("fails with acme_no_solver for a wildcard without a dns-01 solver, presenting nothing", async () => {
    const solver = recordingSolver(http01());
    const issuer = makeIssuer(createTestStore(), [solver], options());
    const apex = uniqueName();
    const names = [`*.${apex}`];
    const e = await rejection(
      issuer.issue({ names, csrPem: (await keyAndCsr(names)).csrPem, keyType: "ec256" }, signal()),
    );
    expect(e.code).toBe("acme_no_solver");
    expect(solver.presented).toHaveLength(0);
    await issuer.close();
  });

  it("refuses with acme_no_solver (422) before creating an order, naming the missing setting", async () => {
    const orders = () =>
      pebble
        .log()
        .split("\n")
        .filter((l) => l.includes("POST /order-plz")).length;
    const before = orders();
    const wildcardIssuer = makeIssuer(createTestStore(), [http01()], options());
    const apex = uniqueName();
    const wildcard = await rejection(
      wildcardIssuer.issue(
        { names: [apex, `*.${apex}`], csrPem: (await keyAndCsr([apex])).csrPem, keyType: "ec256" },
        signal(),
      ),
    );
    expect(wildcard.code).toBe("acme_no_solver");
    expect(wildcard.status).toBe(422);
    expect(wildcard.details).toMatchObject({ identifier: `*.${apex}`, missing: "dns.providers" });
    expect(wildcard.message).toContain("dns.providers");

    const dnsOnly = makeIssuer(createTestStore(), [http01()], {
      ...options(),
      preferredChallenges: ["dns-01"],
    });
    const name = uniqueName();
    const e = await rejection(
      dnsOnly.issue({ names: [name], csrPem: (await keyAndCsr([name])).csrPem, keyType: "ec256" }, signal()),
    );
    expect(e.code).toBe("acme_no_solver");
    expect(e.details).toMatchObject({ identifier: name, missing: "dns.providers" });

    // a dns-01 solver that serves other zones does not count
    const elsewhere: ChallengeSolver = {
      ...createChallTestDnsSolver(dns),
      covers: (d) => d.endsWith(".other.test"),
    };
    const uncovered = makeIssuer(createTestStore(), [elsewhere], {
      ...options(),
      preferredChallenges: ["dns-01"],
    });
    const e2 = await rejection(
      uncovered.issue(
        { names: [name], csrPem: (await keyAndCsr([name])).csrPem, keyType: "ec256" },
        signal(),
      ),
    );
    expect(e2.code).toBe("acme_no_solver");

    expect(orders()).toBe(before);
    await wildcardIssuer.close();
    await dnsOnly.close();
    await uncovered.close();
  });

  it("maps an unreachable directory to retryable acme_unreachable", async () => {
    const port = await freePort();
    const issuer = makeIssuer(createTestStore(), [http01()], {
      directoryUrl: `https://127.0.0.1:${port}/dir`,
      caBundlePem: pebble.caBundlePem,
    });
    const names = [uniqueName()];
    const e = await rejection(
      issuer.issue({ names, csrPem: (await keyAndCsr(names)).csrPem, keyType: "ec256" }, signal()),
    );
    expect(e.code).toBe("acme_unreachable");
    expect((e as UpstreamError).retryable).toBe(true);
    await issuer.close();
  });

  it("keeps CA trust per issuer: one without the bundle fails TLS while one with it works", async () => {
    const untrusting = makeIssuer(
      createTestStore(),
      [http01()],
      { ...options(), caBundlePem: undefined },
      "public",
    );
    const trusting = makeIssuer(createTestStore(), [http01()], options(), "private");
    const names = [uniqueName()];
    const { csrPem } = await keyAndCsr(names);
    await trusting.issue({ names, csrPem, keyType: "ec256" }, signal());
    const e = await rejection(untrusting.issue({ names, csrPem, keyType: "ec256" }, signal()));
    expect(e.code).toBe("acme_unreachable");
    await trusting.issue({ names, csrPem, keyType: "ec256" }, signal());
    await untrusting.close();
    await trusting.close();
  });

  it("reports no renewal info when the directory has no renewalInfo (Pebble 2.4)", async () => {
    const issuer = makeIssuer(createTestStore(), [http01()], options());
    const names = [uniqueName()];
    const issued = await issuer.issue(
      { names, csrPem: (await keyAndCsr(names)).csrPem, keyType: "ec256" },
      signal(),
    );
    await expect(issuer.renewalInfo(issued.certPem, signal())).resolves.toBeUndefined();
    await issuer.close();
  });
});

describe("HTTP-01 solver", () => {
  it("stores the key authorization with an expiry and deletes it only on cleanup", async () => {
    const calls: unknown[][] = [];
    const store = createTestStore();
    const solver = createHttp01Solver({
      store: {
        putChallengeToken: async (...args) => {
          calls.push(args);
          await store.putChallengeToken(...args);
        },
        deleteChallengeToken: (t) => store.deleteChallengeToken(t),
      },
      ttlMs: 90_000,
      clock: { now: () => new Date("2030-01-01T00:00:00Z") },
    });
    const challenge = {
      domain: "a.example.test",
      wildcard: false,
      token: "tok",
      keyAuthorization: "tok.thumb",
    };
    await solver.present(challenge, signal());
    expect(calls[0]?.slice(0, 3)).toEqual(["tok", "tok.thumb", new Date("2030-01-01T00:01:30Z")]);
    expect(await store.getChallengeToken("tok")).toBe("tok.thumb");
    expect(await store.getChallengeToken("tok")).toBe("tok.thumb");
    await solver.cleanup(challenge);
    expect(await store.getChallengeToken("tok")).toBeUndefined();
  });
});
