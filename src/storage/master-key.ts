import { randomBytes } from "node:crypto";
import { link, mkdir, open, readFile, readdir, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { CertfleetError, throwIfAborted } from "../core/errors.js";
import { MASTER_KEY_BYTES } from "./secret-box.js";

/**
 * Read the storage master key (32 raw bytes) from `path`, creating it when it does not exist: mode
 * 0600, parent directory 0700. Creation is create-once across processes: the key is written to a
 * temp file and fsynced, then hard-linked into place. Unlike rename, link refuses to replace an
 * existing file, so when two processes race the loser reads the winner's key, and no reader ever
 * sees a half-written file. A file of the wrong length is an error, never silently replaced.
 */
export async function loadOrCreateMasterKey(path: string, signal?: AbortSignal): Promise<Buffer> {
  throwIfAborted(signal);
  const existing = await readMasterKey(path);
  if (existing) return existing;

  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    const file = await open(temp, "wx", 0o600);
    try {
      await file.writeFile(randomBytes(MASTER_KEY_BYTES));
      await file.sync();
    } finally {
      await file.close();
    }
    throwIfAborted(signal);
    try {
      await link(temp, path);
    } catch (e) {
      if (errorCode(e) !== "EEXIST") throw e;
    }
    await syncDirectory(dir);
  } finally {
    await unlink(temp).catch(() => undefined);
  }

  const key = await readMasterKey(path);
  if (!key)
    throw new CertfleetError("storage_key_missing", "the master key file vanished after it was created");
  return key;
}

async function readMasterKey(path: string): Promise<Buffer | undefined> {
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (e) {
    if (errorCode(e) === "ENOENT") return undefined;
    throw e;
  }
  if (data.length !== MASTER_KEY_BYTES) {
    throw new CertfleetError(
      "storage_key_invalid",
      `the master key file must hold exactly ${MASTER_KEY_BYTES} bytes (${path} holds ${data.length})`,
    );
  }
  return data;
}

/**
 * Every master key the storage should hold: the current one (inline config, or the key file, created
 * on first start) and the previous ones still accepted for reading — configured ones, plus the files a
 * `certfleet storage rotate-key` leaves next to the key file (`<file>.previous-*`, and `<file>.next`
 * when a rotation was interrupted), so no value ever becomes unreadable halfway through a rotation.
 */
export async function loadMasterKeys(options: {
  encryptionKey?: Buffer;
  encryptionKeyFile: string;
  previousEncryptionKeys?: readonly Buffer[];
}): Promise<{ current: Buffer; previous: Buffer[] }> {
  const current = options.encryptionKey ?? (await loadOrCreateMasterKey(options.encryptionKeyFile));
  const previous = [...(options.previousEncryptionKeys ?? [])];
  if (options.encryptionKey === undefined) {
    for (const path of await rotationFiles(options.encryptionKeyFile)) {
      const key = await readMasterKey(path);
      if (key) previous.push(key);
    }
  }
  return { current, previous };
}

/** `<file>.next` and `<file>.previous-*`, newest previous first. */
async function rotationFiles(keyFile: string): Promise<string[]> {
  const dir = dirname(keyFile);
  const base = basename(keyFile);
  const names = await readdir(dir).catch(() => [] as string[]);
  const previous = names
    .filter((n) => n.startsWith(`${base}.previous-`))
    .sort()
    .reverse();
  return [...(names.includes(`${base}.next`) ? [`${base}.next`] : []), ...previous].map((n) => join(dir, n));
}

/**
 * Key-file rotation, step by step, each step safe to interrupt: (1) create `<file>.next` (create-once,
 * so a rerun resumes with the same key), (2) `reencrypt` re-seals every value under it while the old
 * key stays readable, (3) keep the old key as `<file>.previous-<time>` (hard link), (4) rename
 * `<file>.next` over `<file>` and sync the directory. Returns the new key and where the old one went.
 */
export async function rotateMasterKeyFile(
  keyFile: string,
  reencrypt: (next: Buffer, old: Buffer) => Promise<void>,
  now: Date,
): Promise<{ key: Buffer; previousFile: string }> {
  const old = await readMasterKey(keyFile);
  if (!old) throw new CertfleetError("storage_key_missing", `there is no master key at ${keyFile} to rotate`);
  const next = await loadOrCreateMasterKey(`${keyFile}.next`);
  await reencrypt(next, old);
  const previousFile = `${keyFile}.previous-${now.toISOString().replace(/[:.]/g, "-")}`;
  await link(keyFile, previousFile);
  await rename(`${keyFile}.next`, keyFile);
  await syncDirectory(dirname(keyFile));
  return { key: next, previousFile };
}

/** Make the new directory entry durable, not only the file's content. */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function errorCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}
