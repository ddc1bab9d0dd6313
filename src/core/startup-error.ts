import { CertfleetError } from "./errors.js";

/**
 * Start-up failed for a reason the operator can fix. `message` is one line naming the cause and the
 * setting to change (`setting`, a config key path); `serve` prints it alone, without a stack trace.
 */
export class StartupError extends CertfleetError {
  readonly setting: string;
  constructor(code: string, setting: string, message: string, cause?: unknown) {
    super(code, message, { status: 500, expose: false, cause });
    this.setting = setting;
  }
}

/** A storage URL as it may be shown: the password replaced by `***`. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password === "") return url;
    u.password = "***";
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@]*@/, "//$1:***@");
  }
}

function errnoOf(e: unknown): NodeJS.ErrnoException | undefined {
  return e instanceof Error ? (e as NodeJS.ErrnoException) : undefined;
}

/** The driver's own reason, on one line (pg's errors, an AggregateError of connection attempts, …). */
export function reasonOf(e: unknown): string {
  if (e instanceof AggregateError && e.errors.length > 0) return reasonOf(e.errors[0]);
  const err = errnoOf(e);
  if (!err) return String(e);
  const text = err.message || err.code || String(e);
  return text.split("\n")[0]!.trim();
}

/** A listener could not bind: in use, or a privileged port without the capability. */
export function listenError(
  e: unknown,
  where: { host: string; port: number; setting: string; enabledSetting?: string },
): unknown {
  const code = errnoOf(e)?.code;
  const at = `${where.host}:${where.port}`;
  if (code === "EADDRINUSE")
    return new StartupError(
      "startup_port_in_use",
      where.setting,
      `cannot listen on ${at}: the port is already in use by another process; stop it or change ${where.setting}`,
      e,
    );
  if (code === "EACCES" && where.port < 1024)
    return new StartupError(
      "startup_port_privileged",
      where.setting,
      `cannot listen on ${at}: ports below 1024 need root or CAP_NET_BIND_SERVICE; grant it, set ${where.setting} to 1024 or above` +
        (where.enabledSetting ? `, or set ${where.enabledSetting}: false` : ""),
      e,
    );
  if (code === "EACCES" || code === "EADDRNOTAVAIL")
    return new StartupError(
      "startup_listen_failed",
      where.setting,
      `cannot listen on ${at} (${code}): change ${where.setting} or the bind address`,
      e,
    );
  return e;
}

/** The data dir cannot be created or used. */
export function dataDirError(e: unknown, dataDir: string): unknown {
  const code = errnoOf(e)?.code;
  const why: Record<string, string> = {
    EACCES: "permission denied (the server's user must own it, or be able to read, write and enter it)",
    EPERM: "permission denied",
    EEXIST: "it exists and is not a directory",
    ENOTDIR: "a part of the path is a file, not a directory",
    EROFS: "it is on a read-only file system",
    ENOSPC: "the disk is full",
  };
  if (code === undefined || !(code in why)) return e;
  return new StartupError(
    "startup_data_dir",
    "dataDir",
    `cannot use the data directory ${dataDir}: ${why[code]}; fix it or change dataDir`,
    e,
  );
}

/** The database cannot be opened or migrated. */
export function databaseError(e: unknown, url: string, setting: string): StartupError {
  if (e instanceof StartupError) return e;
  const postgres = /^postgres(ql)?:\/\//i.test(url);
  const what = postgres ? "cannot connect to PostgreSQL at" : "cannot open the SQLite database";
  const reason =
    e instanceof CertfleetError && e.internal ? `${e.message} (${e.internal})` : reasonOf(e).replace(url, "");
  return new StartupError(
    "startup_database",
    setting,
    `${what} ${postgres ? redactUrl(url) : url.replace(/^sqlite:/, "")}: ${reason}; check ${setting}`,
    e,
  );
}

/** A stored secret did not decrypt with the configured master key. */
export function masterKeyError(
  e: unknown,
  where: { keyFile?: string; dataDir: string; database: string },
): unknown {
  if (!(e instanceof CertfleetError) || e.code !== "storage_decrypt_failed") return e;
  const key = where.keyFile
    ? `the master key ${where.keyFile} (database.encryptionKeyFile)`
    : "the master key in database.encryptionKey";
  return new StartupError(
    "startup_master_key",
    where.keyFile ? "database.encryptionKeyFile" : "database.encryptionKey",
    `${key} does not decrypt the store (${redactUrl(where.database)}, data dir ${where.dataDir}): ` +
      `start with the key this store was created with (or list it in database.previousEncryptionKeys)`,
    e,
  );
}
