import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHttp01Solver } from "../../src/acme-client/http01-solver.js";
import { isCertfleetError, type CertfleetError } from "../../src/core/errors.js";
import { hasRevoke } from "../../src/issuance/issuer.js";
import { startChallTestSrv, startPebble, type ChallTestSrv, type PebbleServer } from "../harness/pebble.js";
import {
  createTestStore,
  keyAndCsr,
  makeIssuer,
  signal,
  startChallengeResponder,
  uniqueName,
  type ChallengeResponder,
  type TestStore,
} from "../acme-client/support.js";
import { pebbleCertStatus } from "./pebble-status.js";

let dns: ChallTestSrv;
let pebble: PebbleServer;
let responder: ChallengeResponder;
const tokens: TestStore = createTestStore();

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

function newIssuer() {
  return makeIssuer(createTestStore(), [createHttp01Solver({ store: tokens, ttlMs: 60_000 })], {
    directoryUrl: pebble.directoryUrl,
    caBundlePem: pebble.caBundlePem,
    email: "ops@example.test",
  });
}

async function rejection(p: Promise<unknown>): Promise<CertfleetError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(isCertfleetError(e)).toBe(true);
  return e as CertfleetError;
}

describe("ACME issuer revocation against Pebble", () => {
  it("revokes with the account key; Pebble reports it revoked with the reason; twice is already_revoked", async () => {
    const issuer = newIssuer();
    expect(hasRevoke(issuer)).toBe(true);
    const names = [uniqueName()];
    const { csrPem } = await keyAndCsr(names);
    const issued = await issuer.issue({ names, csrPem, keyType: "ec256" }, signal());
    expect((await pebbleCertStatus(pebble, issued.certPem)).status).toBe("Valid");

    await issuer.revoke(issued.certPem, "keyCompromise", signal());

    const status = await pebbleCertStatus(pebble, issued.certPem);
    expect(status.status).toBe("Revoked");
    expect(status.reason).toBe(1);
    const again = await rejection(issuer.revoke(issued.certPem, "keyCompromise", signal()));
    expect(again.code).toBe("already_revoked");
    expect(again.status).toBe(409);
    await issuer.close();
  });

  it("another account may not revoke the certificate (a typed upstream error, nothing revoked)", async () => {
    const owner = newIssuer();
    const names = [uniqueName()];
    const { csrPem } = await keyAndCsr(names);
    const issued = await owner.issue({ names, csrPem, keyType: "ec256" }, signal());
    const stranger = newIssuer(); // its own store: a different account key
    const e = await rejection(stranger.revoke(issued.certPem, "unspecified", signal()));
    expect(e.code).toMatch(/^acme_/);
    expect((await pebbleCertStatus(pebble, issued.certPem)).status).toBe("Valid");
    await owner.close();
    await stranger.close();
  });

  it("refuses something that is not a certificate before talking to the CA", async () => {
    const issuer = newIssuer();
    const e = await rejection(issuer.revoke("not a certificate", "unspecified", signal()));
    expect(e.code).toBe("certificate_invalid");
    await issuer.close();
  });
});
