import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHttp01Solver } from "../../src/acme-client/http01-solver.js";
import type { CertfleetError, UpstreamError } from "../../src/core/errors.js";
import { startChallTestSrv, startPebble, type ChallTestSrv, type PebbleServer } from "../harness/pebble.js";
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

const tokens = createTestStore();
const http01 = () => createHttp01Solver({ store: tokens, ttlMs: 60_000 });
const hmacKey = randomBytes(32).toString("base64url");

let dns: ChallTestSrv;
let responder: ChallengeResponder;

beforeAll(async () => {
  dns = await startChallTestSrv();
  responder = await startChallengeResponder(tokens);
});

afterAll(async () => {
  await responder?.stop();
  await dns?.stop();
});

async function rejection(p: Promise<unknown>): Promise<CertfleetError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeDefined();
  return e as CertfleetError;
}

describe("External account binding (Pebble externalAccountBindingRequired)", () => {
  let pebble: PebbleServer;
  beforeAll(async () => {
    pebble = await startPebble({
      dnsServer: dns.dnsAddress,
      httpPort: responder.port,
      eab: { "kid-1": hmacKey },
    });
  });
  afterAll(() => pebble?.stop());

  it("issues with a valid EAB", async () => {
    const issuer = makeIssuer(createTestStore(), [http01()], {
      directoryUrl: pebble.directoryUrl,
      caBundlePem: pebble.caBundlePem,
      eab: { kid: "kid-1", hmacKey },
    });
    const names = [uniqueName()];
    const issued = await issuer.issue(
      { names, csrPem: (await keyAndCsr(names)).csrPem, keyType: "ec256" },
      signal(),
    );
    expect(issued.certPem).toContain("BEGIN CERTIFICATE");
    await issuer.close();
  });

  it("fails with non-retryable acme_account_rejected without EAB", async () => {
    const issuer = makeIssuer(createTestStore(), [http01()], {
      directoryUrl: pebble.directoryUrl,
      caBundlePem: pebble.caBundlePem,
    });
    const names = [uniqueName()];
    const e = await rejection(
      issuer.issue({ names, csrPem: (await keyAndCsr(names)).csrPem, keyType: "ec256" }, signal()),
    );
    expect(e.code).toBe("acme_account_rejected");
    expect((e as UpstreamError).retryable).toBe(false);
    expect(e.details).toMatchObject({ acmeType: "urn:ietf:params:acme:error:externalAccountRequired" });
    await issuer.close();
  });

  it("fails with acme_account_rejected for a wrong HMAC key", async () => {
    const issuer = makeIssuer(createTestStore(), [http01()], {
      directoryUrl: pebble.directoryUrl,
      caBundlePem: pebble.caBundlePem,
      eab: { kid: "kid-1", hmacKey: randomBytes(32).toString("base64url") },
    });
    const names = [uniqueName()];
    const e = await rejection(
      issuer.issue({ names, csrPem: (await keyAndCsr(names)).csrPem, keyType: "ec256" }, signal()),
    );
    expect(e.code).toBe("acme_account_rejected");
    await issuer.close();
  });
});

describe("Hostile nonces (PEBBLE_WFE_NONCEREJECT=50)", () => {
  let pebble: PebbleServer;
  beforeAll(async () => {
    pebble = await startPebble({
      dnsServer: dns.dnsAddress,
      httpPort: responder.port,
      env: { PEBBLE_WFE_NONCEREJECT: "50" },
    });
  });
  afterAll(() => pebble?.stop());

  it("still issues, several times in a row", async () => {
    const { logger, lines } = recordingLogger();
    const issuer = makeIssuer(
      createTestStore(),
      [http01()],
      { directoryUrl: pebble.directoryUrl, caBundlePem: pebble.caBundlePem },
      "test-acme",
      logger,
    );
    const badNonces = await countBadNonceRetries(lines, async () => {
      for (let i = 0; i < 4; i++) {
        const names = [uniqueName(), uniqueName()];
        const issued = await issuer.issue(
          { names, csrPem: (await keyAndCsr(names)).csrPem, keyType: "ec256" },
          signal(),
        );
        expect(issued.certPem).toContain("BEGIN CERTIFICATE");
      }
    });
    expect(badNonces).toBeGreaterThan(3);
    await issuer.close();
  });
});

describe("A CA that rejects every nonce (PEBBLE_WFE_NONCEREJECT=100)", () => {
  let pebble: PebbleServer;
  beforeAll(async () => {
    pebble = await startPebble({ dnsServer: dns.dnsAddress, env: { PEBBLE_WFE_NONCEREJECT: "100" } });
  });
  afterAll(() => pebble?.stop());

  it("gives up with retryable acme_bad_nonce after retrying more than 5 times", async () => {
    const { logger, lines } = recordingLogger();
    const issuer = makeIssuer(
      createTestStore(),
      [http01()],
      { directoryUrl: pebble.directoryUrl, caBundlePem: pebble.caBundlePem },
      "test-acme",
      logger,
    );
    const names = [uniqueName()];
    const { csrPem } = await keyAndCsr(names);
    let e: CertfleetError | undefined;
    const retries = await countBadNonceRetries(lines, async () => {
      e = await rejection(issuer.issue({ names, csrPem, keyType: "ec256" }, signal()));
    });
    expect(e?.code).toBe("acme_bad_nonce");
    expect((e as UpstreamError).retryable).toBe(true);
    expect(retries).toBeGreaterThan(5);
    await issuer.close();
  });
});

/** The transport logs each badNonce it answers by signing again; count them while `work` runs. */
async function countBadNonceRetries(
  lines: Record<string, unknown>[],
  work: () => Promise<void>,
): Promise<number> {
  const before = lines.length;
  await work();
  return lines.slice(before).filter((l) => String(l["msg"]).includes("badNonce")).length;
}
