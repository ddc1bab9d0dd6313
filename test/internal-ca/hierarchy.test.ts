import { X509Certificate, createPrivateKey } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { describe, expect, it } from "vitest";
import { keyMatchesCertificate } from "../../src/core/certificate-info.js";
import { createManualClock } from "../../src/core/clock.js";
import { silentLogger } from "../../src/core/logger.js";
import { createEmbeddedCa } from "../../src/internal-ca/embedded-ca.js";
import { extensionsOf, newCa, opensslVerify, wholeSecondNow } from "./helpers.js";
import { createMemoryKv } from "./memory-kv.js";

const DAY = 86_400_000;
const { KeyUsageFlags } = x509;

describe("embedded CA hierarchy", () => {
  it("creates a P-384 root (10y, pathLen 1) and a P-256 intermediate (5y, pathLen 0) signed by it", async () => {
    const start = wholeSecondNow();
    const { ca, store } = await newCa({ name: "Test Fleet CA" }, undefined, start);

    const root = new X509Certificate(ca.rootPem);
    const intermediate = new X509Certificate(ca.intermediatePem);
    expect(root.subject).toBe("CN=Test Fleet CA");
    expect(root.issuer).toBe(root.subject);
    expect(intermediate.subject).toBe("CN=Test Fleet CA intermediate");
    expect(intermediate.issuer).toBe(root.subject);
    expect(root.publicKey.asymmetricKeyDetails?.namedCurve).toBe("secp384r1");
    expect(intermediate.publicKey.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
    expect(root.verify(root.publicKey)).toBe(true);
    expect(intermediate.checkIssued(root)).toBe(true);
    expect(intermediate.verify(root.publicKey)).toBe(true);

    expect(new Date(root.validFrom).getTime()).toBe(start.getTime() - 60_000);
    expect(new Date(root.validTo).getTime()).toBe(start.getTime() + 3650 * DAY);
    expect(new Date(intermediate.validTo).getTime()).toBe(start.getTime() + 1825 * DAY);

    const r = extensionsOf(ca.rootPem);
    const i = extensionsOf(ca.intermediatePem);
    expect(r.basicConstraints).toEqual({ ca: true, pathLength: 1, critical: true });
    expect(i.basicConstraints).toEqual({ ca: true, pathLength: 0, critical: true });
    expect(r.keyUsage).toEqual({ usages: KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign, critical: true });
    expect(i.keyUsage?.critical).toBe(true);
    expect(i.keyUsage!.usages & KeyUsageFlags.keyCertSign).toBeTruthy();
    expect(r.ski).toMatch(/^[0-9a-f]{40}$/);
    expect(i.aki).toBe(r.ski);
    expect(i.ski).not.toBe(r.ski);

    // OpenSSL accepts the intermediate as a CA below the root.
    const check = await opensslVerify(ca.rootPem, ca.rootPem, ca.intermediatePem);
    expect(check.output).toContain("OK");
    expect(check.ok).toBe(true);

    // Private keys are stored as secrets, certificates are not; the keys belong to the certificates.
    expect([...store.secretKeys].sort()).toEqual(["internal-ca/intermediate-key", "internal-ca/root-key"]);
    expect([...store.values.keys()].sort()).toEqual([
      "internal-ca/intermediate-cert",
      "internal-ca/intermediate-key",
      "internal-ca/root-cert",
      "internal-ca/root-key",
    ]);
    const rootKey = store.values.get("internal-ca/root-key")!;
    expect(createPrivateKey(rootKey).asymmetricKeyDetails?.namedCurve).toBe("secp384r1");
    expect(keyMatchesCertificate(rootKey, ca.rootPem)).toBe(true);
    expect(keyMatchesCertificate(store.values.get("internal-ca/intermediate-key")!, ca.intermediatePem)).toBe(
      true,
    );
    expect(store.values.get("internal-ca/root-cert")).toBe(ca.rootPem);
  });

  it("loads the same CA on the next start", async () => {
    const first = await newCa();
    const second = await newCa({ name: "another name is ignored once created" }, first.store);
    expect(second.ca.rootPem).toBe(first.ca.rootPem);
    expect(second.ca.intermediatePem).toBe(first.ca.intermediatePem);
    expect(new X509Certificate(second.ca.rootPem).subject).toBe("CN=certfleet embedded CA");
  });

  it("ends up with one CA when replicas start at the same time on an empty store", async () => {
    const store = createMemoryKv();
    const rootKeyWrites: string[] = [];
    const putValue = store.putValue.bind(store);
    store.putValue = (namespace, key, value, options, signal) => {
      if (key === "root-key") rootKeyWrites.push(value);
      return putValue(namespace, key, value, options, signal);
    };
    const clock = createManualClock(wholeSecondNow());
    const cas = await Promise.all(
      [1, 2, 3].map(() => createEmbeddedCa({ store, clock, logger: silentLogger(), options: {} })),
    );
    // The replicas really did race: each made and offered its own root key.
    expect(new Set(rootKeyWrites).size).toBe(3);
    expect(new Set(cas.map((c) => c.rootPem)).size).toBe(1);
    expect(new Set(cas.map((c) => c.intermediatePem)).size).toBe(1);
    expect(cas[0]!.rootPem).toBe(store.values.get("internal-ca/root-cert"));
  });

  it("finishes a hierarchy a previous start left half-made", async () => {
    const { store } = await newCa();
    const rootPem = store.values.get("internal-ca/root-cert")!;
    store.values.delete("internal-ca/intermediate-cert");
    store.values.delete("internal-ca/intermediate-key");
    const { ca } = await newCa({}, store);
    expect(ca.rootPem).toBe(rootPem);
    expect(new X509Certificate(ca.intermediatePem).checkIssued(new X509Certificate(rootPem))).toBe(true);
  });

  it("refuses stored material that does not belong together", async () => {
    const a = await newCa();
    const b = await newCa();
    a.store.values.set("internal-ca/intermediate-cert", b.ca.intermediatePem);
    await expect(newCa({}, a.store)).rejects.toMatchObject({ code: "internal_ca_corrupt" });

    const c = await newCa();
    c.store.values.set("internal-ca/root-key", b.store.values.get("internal-ca/root-key")!);
    await expect(newCa({}, c.store)).rejects.toMatchObject({ code: "internal_ca_corrupt" });
  });

  it("refuses to start with an expired intermediate", async () => {
    const start = wholeSecondNow();
    const { store } = await newCa({}, undefined, start);
    await expect(newCa({}, store, new Date(start.getTime() + 1826 * DAY))).rejects.toMatchObject({
      code: "internal_ca_expired",
    });
  });

  it("rejects a bad CA name and a bad validity", async () => {
    await expect(newCa({ name: "x".repeat(60) })).rejects.toMatchObject({ code: "ca_name_invalid" });
    await expect(newCa({ leafValidityDays: 0 })).rejects.toMatchObject({ code: "validity_invalid" });
    await expect(newCa({ leafValiditySeconds: Number.NaN })).rejects.toMatchObject({
      code: "validity_invalid",
    });
  });

  it("honours an aborted signal", async () => {
    const store = createMemoryKv();
    const controller = new AbortController();
    controller.abort();
    const clock = createManualClock(wholeSecondNow());
    await expect(
      createEmbeddedCa({ store, clock, logger: silentLogger(), options: {} }, controller.signal),
    ).rejects.toMatchObject({ code: "aborted" });
    expect(store.values.size).toBe(0);
  });
});
