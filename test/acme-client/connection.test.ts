import { X509Certificate } from "node:crypto";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createHttp01Solver } from "../../src/acme-client/http01-solver.js";
import type { CertfleetError, UpstreamError } from "../../src/core/errors.js";
import { startChallTestSrv, startPebble, type ChallTestSrv, type PebbleServer } from "../harness/pebble.js";
import { startResetProxy, type ResetProxy } from "../harness/reset-proxy.js";
import {
  createTestStore,
  keyAndCsr,
  makeIssuer,
  recordingLogger,
  signal,
  startChallengeResponder,
  uniqueName,
  type ChallengeResponder,
} from "./support.js";

// Issue 14: "a connection reset by the CA fails the whole issuance". A keep-alive proxy in front of a
// real Pebble resets the client's socket on chosen requests; requests that are safe to repeat are sent
// again (with a fresh nonce) and the issuance completes.

const tokens = createTestStore();
const http01 = () => createHttp01Solver({ store: tokens, ttlMs: 60_000 });

let dns: ChallTestSrv;
let responder: ChallengeResponder;
let pebble: PebbleServer;
let proxy: ResetProxy;

beforeAll(async () => {
  dns = await startChallTestSrv();
  responder = await startChallengeResponder(tokens);
  pebble = await startPebble({ dnsServer: dns.dnsAddress, httpPort: responder.port });
});

afterAll(async () => {
  await pebble?.stop();
  await responder?.stop();
  await dns?.stop();
});

beforeEach(async () => {
  proxy = await startResetProxy(pebble, { keepAliveTimeoutMs: 5_000 });
  return async () => {
    await proxy.stop();
  };
});

const store = createTestStore();
const issuer = () =>
  makeIssuer(store, [http01()], {
    directoryUrl: proxy.directoryUrl,
    caBundlePem: proxy.caBundlePem,
    email: "reset@example.test",
  });

async function issueOne(i = issuer()) {
  const names = [uniqueName()];
  const { csrPem } = await keyAndCsr(names);
  const issued = await i.issue({ names, csrPem, keyType: "ec256" }, signal());
  expect(new X509Certificate(issued.certPem).subjectAltName).toBe(`DNS:${names[0]}`);
  return issued;
}

async function rejection(p: Promise<unknown>): Promise<CertfleetError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeDefined();
  return e as CertfleetError;
}

const post = (pattern: RegExp) => (method: string, path: string) => method === "POST" && pattern.test(path);

describe("ACME client connections through a resetting keep-alive proxy", () => {
  it("reuses keep-alive connections: a second issuance opens none", async () => {
    const i = issuer();
    await issueOne(i);
    expect(proxy.requests.length).toBeGreaterThan(6);
    // the first issuance may open a second socket when two requests follow within a tick
    const first = proxy.connections();
    expect(first).toBeLessThanOrEqual(2);
    await issueOne(i);
    await issueOne(i);
    expect(proxy.connections()).toBe(first);
    await i.close();
  });

  it("sends a POST-as-GET again after a reset before it reached the CA", async () => {
    proxy.resetNext({ match: post(/authz/i), when: "before" });
    const i = issuer();
    await issueOne(i);
    expect(proxy.resets).toHaveLength(1);
    expect(proxy.resets[0]).toMatch(/^POST .*authz/i);
    await i.close();
  });

  it("sends newOrder again after a reset (a lost order just expires at the CA)", async () => {
    proxy.resetNext({ match: post(/order-plz/), when: "after" });
    const i = issuer();
    await issueOne(i);
    expect(proxy.resets).toEqual([expect.stringMatching(/order-plz/)]);
    expect(proxy.requests.filter((r) => r.includes("order-plz"))).toHaveLength(2);
    await i.close();
  });

  it("recovers from a reset after the CA accepted finalize: the repeat sees the order processing/valid", async () => {
    proxy.resetNext({ match: post(/finalize/), when: "after" });
    const { logger, lines } = recordingLogger();
    const i = makeIssuer(
      store,
      [http01()],
      { directoryUrl: proxy.directoryUrl, caBundlePem: proxy.caBundlePem, email: "reset@example.test" },
      "test-acme",
      logger,
    );
    await issueOne(i);
    expect(proxy.resets).toEqual([expect.stringMatching(/finalize/)]);
    expect(proxy.requests.filter((r) => r.includes("finalize"))).toHaveLength(2);
    expect(lines.some((l) => String(l["msg"]).includes("connection lost"))).toBe(true);
    await i.close();
  });

  it("sends the challenge response again after a reset", async () => {
    proxy.resetNext({ match: post(/chal/i), when: "after" });
    const i = issuer();
    await issueOne(i);
    expect(proxy.resets).toHaveLength(1);
    await i.close();
  });

  it("gives up with retryable acme_unreachable after a bounded number of resets", async () => {
    proxy.resetNext({ match: post(/order-plz/), when: "before", times: 100 });
    const i = makeIssuer(store, [http01()], {
      directoryUrl: proxy.directoryUrl,
      caBundlePem: proxy.caBundlePem,
      email: "reset@example.test",
      connectionRetries: 2,
    });
    const names = [uniqueName()];
    const e = await rejection(
      i.issue({ names, csrPem: (await keyAndCsr(names)).csrPem, keyType: "ec256" }, signal()),
    );
    expect(e.code).toBe("acme_unreachable");
    expect((e as UpstreamError).retryable).toBe(true);
    expect(proxy.resets).toHaveLength(3);
    await i.close();
  });

  it("does not send a request again when retries are off", async () => {
    proxy.resetNext({ match: post(/authz/i), when: "before" });
    const i = makeIssuer(store, [http01()], {
      directoryUrl: proxy.directoryUrl,
      caBundlePem: proxy.caBundlePem,
      email: "reset@example.test",
      connectionRetries: 0,
    });
    const names = [uniqueName()];
    const e = await rejection(
      i.issue({ names, csrPem: (await keyAndCsr(names)).csrPem, keyType: "ec256" }, signal()),
    );
    expect(e.code).toBe("acme_unreachable");
    expect(proxy.resets).toHaveLength(1);
    await i.close();
  });

  it("closes idle sockets before the server's keep-alive ends, so a later issuance does not hit a dead socket", async () => {
    await proxy.stop();
    // Node answers "Keep-Alive: timeout=1"; the client closes its idle socket before the server does.
    proxy = await startResetProxy(pebble, { keepAliveTimeoutMs: 1_000 });
    const i = issuer();
    await issueOne(i);
    const first = proxy.connections();
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    await issueOne(i);
    expect(proxy.resets).toHaveLength(0);
    expect(proxy.connections()).toBeGreaterThan(first);
    await i.close();
  });
});
