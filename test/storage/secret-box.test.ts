import { createCipheriv, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createStorage } from "../../src/storage/create-storage.js";
import { createSecretBox, masterKeyId } from "../../src/storage/secret-box.js";

describe("SecretBox", () => {
  const box = createSecretBox(randomBytes(32));

  it("opens what it sealed, with a fresh nonce every time", () => {
    const a = box.seal("hello ✓", "row-1");
    const b = box.seal("hello ✓", "row-1");
    expect(a).toMatch(/^v2:[A-Za-z0-9_-]{11}:[A-Za-z0-9+/]{16}:[A-Za-z0-9+/=]+$/);
    expect(a.split(":")[1]).toBe(box.keyId);
    expect(box.isCurrent(a)).toBe(true);
    expect(a).not.toBe(b);
    expect(box.open(a, "row-1")).toBe("hello ✓");
    expect(box.open(box.seal("", "row-1"), "row-1")).toBe("");
  });

  it.each([
    ["another row's context", (env: string) => ({ env, context: "row-2" })],
    ["a flipped ciphertext bit", (env: string) => ({ env: flipLastByte(env), context: "row-1" })],
    ["an unknown version", (env: string) => ({ env: env.replace(/^v2:/, "v9:"), context: "row-1" })],
    [
      "a truncated envelope",
      (env: string) => ({ env: env.split(":").slice(0, 2).join(":"), context: "row-1" }),
    ],
    [
      "a short nonce",
      (_env: string) => ({ env: "v1:AAAA:" + Buffer.alloc(32).toString("base64"), context: "row-1" }),
    ],
  ])("refuses %s with storage_decrypt_failed", (_label, tamper) => {
    const { env, context } = tamper(box.seal("secret", "row-1"));
    expect(() => box.open(env, context)).toThrow(expect.objectContaining({ code: "storage_decrypt_failed" }));
  });

  it("refuses another key with storage_decrypt_failed", () => {
    const other = createSecretBox(randomBytes(32));
    expect(() => other.open(box.seal("secret", "c"), "c")).toThrow(
      expect.objectContaining({ code: "storage_decrypt_failed" }),
    );
  });

  it("opens v1 envelopes (no key id) written before key ids existed, with any configured key", () => {
    const oldKey = randomBytes(32);
    const v1 = legacySeal(oldKey, "old secret", "row-9");
    expect(createSecretBox(oldKey).open(v1, "row-9")).toBe("old secret");
    const rotated = createSecretBox(randomBytes(32), [oldKey]);
    expect(rotated.open(v1, "row-9")).toBe("old secret");
    expect(rotated.isCurrent(v1)).toBe(false);
    expect(() => createSecretBox(randomBytes(32)).open(v1, "row-9")).toThrow(
      expect.objectContaining({ code: "storage_decrypt_failed" }),
    );
  });

  it("holds previous keys for reading; seals only under the current one", () => {
    const oldKey = randomBytes(32);
    const newKey = randomBytes(32);
    const old = createSecretBox(oldKey);
    const sealedOld = old.seal("kept", "row-1");
    const ring = createSecretBox(newKey, [oldKey]);
    expect(ring.open(sealedOld, "row-1")).toBe("kept");
    expect(ring.isCurrent(sealedOld)).toBe(false);
    const sealedNew = ring.seal("kept", "row-1");
    expect(sealedNew.split(":")[1]).toBe(masterKeyId(newKey));
    expect(ring.isCurrent(sealedNew)).toBe(true);
    // the old key alone cannot read what the new one sealed, and says which key is missing
    expect(() => old.open(sealedNew, "row-1")).toThrow(
      expect.objectContaining({
        code: "storage_decrypt_failed",
        internal: expect.stringContaining(masterKeyId(newKey)),
      }),
    );
    // an envelope claiming a configured key id but altered is still refused
    expect(() => ring.open(flipLastByte(sealedOld), "row-1")).toThrow(
      expect.objectContaining({ code: "storage_decrypt_failed" }),
    );
    expect(masterKeyId(newKey)).not.toBe(masterKeyId(oldKey));
  });

  it("accepts only 32-byte keys, also through createStorage", () => {
    expect(() => createSecretBox(randomBytes(16))).toThrow(
      expect.objectContaining({ code: "storage_key_invalid" }),
    );
    expect(() => createStorage({ url: "sqlite::memory:", encryptionKey: randomBytes(31) })).toThrow(
      expect.objectContaining({ code: "storage_key_invalid" }),
    );
  });
});

function flipLastByte(envelope: string): string {
  const parts = envelope.split(":");
  const bytes = Buffer.from(parts.at(-1) ?? "", "base64");
  bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 1;
  return [...parts.slice(0, -1), bytes.toString("base64")].join(":");
}

/** The v1 envelope format (no key id), written independently of the implementation. */
function legacySeal(key: Buffer, plaintext: string, context: string): string {
  const nonce = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, nonce, { authTagLength: 16 });
  cipher.setAAD(Buffer.from(context, "utf8"));
  const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final(), cipher.getAuthTag()]);
  return `v1:${nonce.toString("base64")}:${body.toString("base64")}`;
}
