import { throwIfAborted } from "../../core/errors.js";
import { kvContext, privateKeyContext, type SqlContext } from "./context.js";
import { journalKeyContext } from "./journal.js";

/** See StorageAdmin.reencryptSecrets. */
export async function reencryptSecrets(
  { db, box, logger }: SqlContext,
  signal?: AbortSignal,
): Promise<{ rewritten: number; total: number }> {
  let rewritten = 0;
  let total = 0;
  const reseal = (envelope: string, context: string) => box.seal(box.open(envelope, context), context);

  const current = await db
    .selectFrom("certificates")
    .select(["id", "private_key"])
    .where("private_key", "is not", null)
    .execute();
  for (const row of current) {
    throwIfAborted(signal);
    total++;
    if (box.isCurrent(row.private_key!)) continue;
    const result = await db
      .updateTable("certificates")
      .set({ private_key: reseal(row.private_key!, privateKeyContext(row.id)) })
      .where("id", "=", row.id)
      .where("private_key", "=", row.private_key)
      .executeTakeFirst();
    rewritten += Number(result.numUpdatedRows);
  }

  const history = await db
    .selectFrom("certificate_history")
    .select(["id", "version", "private_key"])
    .where("private_key", "is not", null)
    .execute();
  for (const row of history) {
    throwIfAborted(signal);
    total++;
    if (box.isCurrent(row.private_key!)) continue;
    const result = await db
      .updateTable("certificate_history")
      .set({ private_key: reseal(row.private_key!, privateKeyContext(row.id)) })
      .where("id", "=", row.id)
      .where("version", "=", row.version)
      .where("private_key", "=", row.private_key)
      .executeTakeFirst();
    rewritten += Number(result.numUpdatedRows);
  }

  const values = await db
    .selectFrom("kv")
    .select(["namespace", "key", "value"])
    .where("secret", "=", 1)
    .execute();
  for (const row of values) {
    throwIfAborted(signal);
    total++;
    if (box.isCurrent(row.value)) continue;
    const result = await db
      .updateTable("kv")
      .set({ value: reseal(row.value, kvContext(row.namespace, row.key)) })
      .where("namespace", "=", row.namespace)
      .where("key", "=", row.key)
      .where("value", "=", row.value)
      .executeTakeFirst();
    rewritten += Number(result.numUpdatedRows);
  }
  // keys of orders in flight: a rotation that skipped them would leave the next start unable to
  // finish an order the CA may already have issued
  const journaled = await db
    .selectFrom("issuance_journal")
    .select(["id", "private_key"])
    .where("private_key", "is not", null)
    .execute();
  for (const row of journaled) {
    throwIfAborted(signal);
    total++;
    if (box.isCurrent(row.private_key!)) continue;
    const result = await db
      .updateTable("issuance_journal")
      .set({ private_key: reseal(row.private_key!, journalKeyContext(row.id)) })
      .where("id", "=", row.id)
      .where("private_key", "=", row.private_key)
      .executeTakeFirst();
    rewritten += Number(result.numUpdatedRows);
  }

  if (rewritten > 0) logger.info({ rewritten, total, key: box.keyId }, "secrets re-encrypted");
  return { rewritten, total };
}
