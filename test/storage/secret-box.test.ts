import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createStorage } from "../../src/storage/create-storage.js";
import { createSecretBox } from "../../src/storage/secret-box.js";

describe("SecretBox", () => {
  const box = createSecretBox(randomBytes(32));

  it("opens what it sealed, with a fresh nonce every time", () => {
    const a = box.seal("hello ✓", "row-1");
    const b = box.seal("hello ✓", "row-1");
    expect(a).toMatch(/^v1:[A-Za-z0-9+/]{16}:[A-Za-z0-9+/=]+$/);
    expect(a).not.toBe(b);
    expect(box.open(a, "row-1")).toBe("hello ✓");
    expect(box.open(box.seal("", "row-1"), "row-1")).toBe("");
  });

  it.each([
    ["another row's context", (env: string) => ({ env, context: "row-2" })],
    ["a flipped ciphertext bit", (env: string) => ({ env: flipLastByte(env), context: "row-1" })],
    ["an unknown version", (env: string) => ({ env: env.replace(/^v1:/, "v9:"), context: "row-1" })],
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
  const [version, nonce, body] = envelope.split(":");
  const bytes = Buffer.from(body ?? "", "base64");
  bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 1;
  return `${version}:${nonce}:${bytes.toString("base64")}`;
}
