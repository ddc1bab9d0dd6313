import { randomBytes } from "node:crypto";
import { link, mkdir, open, readFile, unlink } from "node:fs/promises";
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
