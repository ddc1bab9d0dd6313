import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createCsr, generatePrivateKey } from "../../src/core/keys.js";
import { backupSqlite, restoreSqlite } from "../../src/storage/backup.js";
import { createStorage } from "../../src/storage/create-storage.js";
import type { Storage } from "../../src/storage/storage.js";

/**
 * The issuance journal holds orders the CA may already have finalized (issue 14): a backup taken while
 * one is in flight must carry it, key included, so the restored server can finish that order instead
 * of ordering again; and a master-key rotation must re-seal its key like every other private key.
 */
describe("issuance journal in backup / restore and key rotation", () => {
  const dirs: string[] = [];
  const opened: Storage[] = [];
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((s) => s.close()));
    await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
  });

  function open(file: string, key: Buffer, previous: Buffer[] = []): Storage {
    const storage = createStorage({
      url: `sqlite:${file}`,
      encryptionKey: key,
      previousEncryptionKeys: previous,
    });
    opened.push(storage);
    return storage;
  }

  it("a backup carries an in-flight order with its key; a key rotation of the restored database re-seals it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "certfleet-journal-backup-"));
    dirs.push(dir);
    const oldKey = randomBytes(32);
    const source = open(join(dir, "source.db"), oldKey);
    await source.migrate();
    const privateKeyPem = await generatePrivateKey("ec256");
    const csrPem = await createCsr(privateKeyPem, ["inflight.example.com"]);
    await source.journal.begin({
      id: "inflight",
      names: ["inflight.example.com"],
      issuerId: "pebble",
      keyType: "ec256",
      custody: "server",
      csrPem,
      privateKeyPem,
      replacingVersion: null,
      actor: "test",
    });
    await source.journal.update("inflight", { orderUrl: "https://ca.test/order/7", state: "finalizing" });

    const backup = join(dir, "backup.db");
    await backupSqlite({
      filename: join(dir, "source.db"),
      out: backup,
      masterKey: oldKey,
      files: {},
      version: "test",
      now: new Date(),
    });
    const restoredFile = join(dir, "restored.db");
    await restoreSqlite({ backup, filename: restoredFile, masterKeys: [oldKey] });

    const restored = open(restoredFile, oldKey);
    expect(await restored.journal.get("inflight")).toMatchObject({
      orderUrl: "https://ca.test/order/7",
      state: "finalizing",
      privateKeyPem,
      csrPem,
    });
    await restored.close();

    // rotate the restored database's master key: the journaled key moves to the new one
    const newKey = randomBytes(32);
    const rotating = open(restoredFile, newKey, [oldKey]);
    expect(await rotating.reencryptSecrets()).toEqual({ rewritten: 1, total: 1 });
    await rotating.close();
    const newOnly = open(restoredFile, newKey);
    expect((await newOnly.journal.get("inflight"))?.privateKeyPem).toBe(privateKeyPem);
  });
});
