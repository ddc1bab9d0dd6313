import { execFile } from "node:child_process";
import { mkdtemp, readFile, readdir, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createStorage } from "../../src/storage/create-storage.js";
import { loadMasterKeys, rotateMasterKeyFile } from "../../src/storage/master-key.js";
import { masterKeyId } from "../../src/storage/secret-box.js";
import { startCertfleet } from "../harness/certfleet-process.js";

const run = promisify(execFile);
const BIN = new URL("../../bin/certfleet.js", import.meta.url).pathname;

/**
 * Master key rotation with the real CLI and the real server process: everything encrypted at rest (the
 * embedded CA's keys, certificate keys, the bootstrap material) is re-sealed under the new key, the
 * server runs on the new key alone afterwards, and an interrupted rotation loses nothing.
 */
describe("certfleet storage rotate-key", () => {
  let dir: string;
  const configPath = () => join(dir, "certfleet.yaml");
  const dataDir = () => join(dir, "data");
  const keyFile = () => join(dataDir(), "master.key");
  const config = () => ({ dataDir: dataDir(), logging: { level: "warn" } });
  const cli = async (...args: string[]) => {
    const { stdout } = await run(process.execPath, [BIN, ...args, "--config", configPath(), "--json"], {
      cwd: dir,
    });
    return JSON.parse(stdout) as { keyId: string; previousKeyId?: string; rewritten: number; total: number };
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "cf-rotate-"));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it("re-seals every secret; the server then runs on the new key alone", async () => {
    const first = await startCertfleet({ dataDir: dir, config: config() });
    const issued = await first.post("/api/certificate", { domain: "rotate.example.com" });
    expect(issued.status).toBe(200);
    await first.stop();
    const oldKey = await readFile(keyFile());

    const out = await cli("storage", "rotate-key");
    expect(out.previousKeyId).toBe(masterKeyId(oldKey));
    expect(out.keyId).not.toBe(out.previousKeyId);
    expect(out.total).toBeGreaterThanOrEqual(3); // CA root + intermediate keys, the certificate's key, ...
    expect(out.rewritten).toBe(out.total);
    const newKey = await readFile(keyFile());
    expect(masterKeyId(newKey)).toBe(out.keyId);
    const kept = (await readdir(dataDir())).filter((n) => n.startsWith("master.key.previous-"));
    expect(kept).toHaveLength(1);
    expect(await readFile(join(dataDir(), kept[0]!))).toEqual(oldKey);

    // Take the old key away entirely: the server must not need it any more.
    await rename(join(dataDir(), kept[0]!), join(dir, "old-key-elsewhere"));
    const second = await startCertfleet({ dataDir: dir, config: config() });
    try {
      const again = await second.post("/api/certificate", { domain: "rotate.example.com" });
      expect(again.status).toBe(200);
      expect(again.body.cached).toBe(true);
      expect(again.body.privateKey).toBe(issued.body.privateKey);
      const fresh = await second.post("/api/certificate", { domain: "new.rotate.example.com" });
      expect(fresh.status).toBe(200); // the embedded CA's key decrypts under the new master key
      expect(second.caPem).toBe(first.caPem);
    } finally {
      await second.stop();
    }
    expect((await cli("storage", "reencrypt")).rewritten).toBe(0);
  }, 90_000);

  it("an interrupted rotation loses nothing, and a rerun finishes it with the same new key", async () => {
    const keys = await loadMasterKeys({ encryptionKeyFile: keyFile() });
    await expect(
      rotateMasterKeyFile(
        keyFile(),
        async (next, old) => {
          const storage = createStorage({
            url: `sqlite:${join(dataDir(), "certfleet.db")}`,
            encryptionKey: next,
            previousEncryptionKeys: [old],
          });
          try {
            await storage.reencryptSecrets();
          } finally {
            await storage.close();
          }
          throw new Error("power cut after re-encryption, before the key file was replaced");
        },
        new Date(),
      ),
    ).rejects.toThrow(/power cut/);
    const pending = await readFile(`${keyFile()}.next`);
    expect(await readFile(keyFile())).toEqual(keys.current); // the old key file is untouched

    // Everything is sealed under the pending key now; start-up finds it beside the key file.
    const server = await startCertfleet({ dataDir: dir, config: config() });
    try {
      const res = await server.post("/api/certificate", { domain: "rotate.example.com" });
      expect(res.status).toBe(200);
      expect(res.body.cached).toBe(true);
    } finally {
      await server.stop();
    }

    const out = await cli("storage", "rotate-key");
    expect(out.keyId).toBe(masterKeyId(pending));
    expect(await readFile(keyFile())).toEqual(pending);
    expect((await readdir(dataDir())).filter((n) => n.endsWith(".next"))).toEqual([]);
  }, 90_000);

  it("refuses when the key comes from config, and says how to rotate it there", async () => {
    const inline = join(dir, "inline.yaml");
    const { writeFile } = await import("node:fs/promises");
    await writeFile(
      inline,
      `dataDir: ${join(dir, "inline-data")}\ndatabase:\n  encryptionKey: ${Buffer.alloc(32, 7).toString("base64")}\n`,
    );
    const failed = await run(process.execPath, [BIN, "storage", "rotate-key", "--config", inline]).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(failed?.code).toBe(2);
    expect(failed?.stderr).toContain("database.previousEncryptionKeys");
  });
});
