import { CertfleetError } from "../core/errors.js";

/** Where the data lives, parsed from the `storage.url` setting. */
export type StorageTarget =
  | { dialect: "sqlite"; /** A file path, or ":memory:". */ filename: string }
  | {
      dialect: "postgres";
      connectionString: string;
      /** From `?schema=NAME`; else the server's default. */ schema?: string;
    };

/** Lowercase only: PostgreSQL folds unquoted names in search_path, and kysely quotes the name. */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Accepted forms: `sqlite:/path/file.db`, `sqlite:///path/file.db`, `sqlite::memory:`, a plain file
 * path, and `postgres://…` / `postgresql://…` with an optional `?schema=NAME`.
 */
export function parseStorageUrl(url: string): StorageTarget {
  if (/^postgres(ql)?:\/\//i.test(url)) return parsePostgresUrl(url);
  if (url.startsWith("sqlite:")) {
    let filename = url.slice("sqlite:".length);
    if (filename.startsWith("//")) filename = filename.slice(2);
    if (filename === "") throw invalidUrl("sqlite: URL without a file name");
    return { dialect: "sqlite", filename };
  }
  if (url === "" || /^[a-z][a-z0-9+.-]*:\/\//i.test(url)) throw invalidUrl("unsupported storage URL scheme");
  return { dialect: "sqlite", filename: url };
}

function parsePostgresUrl(url: string): StorageTarget {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalidUrl("malformed PostgreSQL URL");
  }
  const schema = parsed.searchParams.get("schema");
  if (schema === null) return { dialect: "postgres", connectionString: url };
  if (!SCHEMA_NAME.test(schema)) throw invalidUrl("schema must match " + SCHEMA_NAME.source);
  // Ours, not the driver's: keep the connection string to what pg understands.
  parsed.searchParams.delete("schema");
  return { dialect: "postgres", connectionString: parsed.toString(), schema };
}

function invalidUrl(reason: string): CertfleetError {
  // The URL may hold a password: keep it out of the message and the details.
  return new CertfleetError("storage_url_invalid", `invalid storage URL: ${reason}`, { status: 500 });
}
