import { randomBytes } from "node:crypto";
import { sql } from "kysely";
import { silentLogger } from "../../src/core/logger.js";
import { createStorage } from "../../src/storage/create-storage.js";
import { openSqlDatabase } from "../../src/storage/dialect.js";
import { parseStorageUrl } from "../../src/storage/storage-url.js";
import { runStorageConformance } from "./conformance.js";

// A real server is required: when it is unreachable, these tests fail rather than skip.
const BASE_URL = process.env.CERTFLEET_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const RUN = `${process.pid}_${Date.now().toString(36)}`;
let fixtures = 0;

runStorageConformance("PostgreSQL", async () => {
  // A schema per test keeps runs (and other engineers' runs) apart; cleanup drops it.
  const schema = `certfleet_storage_${RUN}_${fixtures++}`;
  const url = `${BASE_URL}?schema=${schema}`;
  const encryptionKey = randomBytes(32);
  const storage = createStorage({ url, encryptionKey });
  const raw = openSqlDatabase(parseStorageUrl(url), silentLogger()).db;
  return {
    storage,
    sameDatabase: {
      raw,
      encryptionKey,
      open: (key = encryptionKey, previous = []) =>
        createStorage({ url, encryptionKey: key, previousEncryptionKeys: previous }),
    },
    cleanup: async () => {
      await storage.close();
      try {
        await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(raw);
      } finally {
        await raw.destroy();
      }
    },
  };
});
