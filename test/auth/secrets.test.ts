import { describe, expect, it } from "vitest";
import {
  constantTimeEqual,
  generateSecret,
  hashApiKey,
  hashSecret,
  secretHashNeedsUpgrade,
  verifyApiKey,
  verifySecret,
} from "../../src/auth/secrets.js";

const FAST = { N: 1024, r: 8, p: 1 };

describe("constantTimeEqual", () => {
  it("is true only for equal values, whatever the lengths", () => {
    expect(constantTimeEqual("secret-value", "secret-value")).toBe(true);
    expect(constantTimeEqual(Buffer.from("abc"), "abc")).toBe(true);
    expect(constantTimeEqual("secret-value", "secret-valuE")).toBe(false);
    expect(constantTimeEqual("short", "a much longer value")).toBe(false);
    expect(constantTimeEqual("", "x")).toBe(false);
  });
});

describe("API key hashing", () => {
  it("hashes to sha256:<hex> and verifies only the same key", () => {
    const key = generateSecret("cf_");
    const hash = hashApiKey(key);
    expect(hash).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(verifyApiKey(key, hash)).toBe(true);
    expect(verifyApiKey(key + "x", hash)).toBe(false);
    expect(() => verifyApiKey(key, "md5:abc")).toThrow(TypeError);
  });
});

describe("generateSecret", () => {
  it("returns prefix + 256 random bits, different every time", () => {
    const a = generateSecret("cfsec_");
    expect(a).toMatch(/^cfsec_[A-Za-z0-9_-]{43}$/);
    expect(generateSecret("cfsec_")).not.toBe(a);
  });
});

describe("scrypt client-secret hashes", () => {
  it("round-trips with the default parameters and refuses a wrong secret", async () => {
    const hash = await hashSecret("correct horse battery staple");
    expect(hash).toMatch(/^scrypt\$16384\$8\$1\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+$/);
    expect(await verifySecret("correct horse battery staple", hash)).toBe(true);
    expect(await verifySecret("correct horse battery stapler", hash)).toBe(false);
    expect(secretHashNeedsUpgrade(hash)).toBe(false);
  });

  it("salts every hash", async () => {
    expect(await hashSecret("same", FAST)).not.toBe(await hashSecret("same", FAST));
  });

  it("refuses malformed or hostile stored values without throwing", async () => {
    const good = await hashSecret("s", FAST);
    const parts = good.split("$");
    const withN = (n: string) => [parts[0], n, ...parts.slice(2)].join("$");
    expect(await verifySecret("s", withN(String(2 ** 24)))).toBe(false); // would take minutes / GBs
    expect(await verifySecret("s", withN("1000"))).toBe(false); // not a power of two
    expect(await verifySecret("s", "plain-text-secret")).toBe(false);
    expect(await verifySecret("s", "bcrypt$2b$10$abc")).toBe(false);
    expect(await verifySecret("s", good)).toBe(true);
    expect(secretHashNeedsUpgrade(good)).toBe(true);
  });
});
