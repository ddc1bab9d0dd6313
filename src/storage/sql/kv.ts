import { throwIfAborted } from "../../core/errors.js";
import type { KeyValueStore } from "../key-value-store.js";
import { kvContext, type SqlContext } from "./context.js";

export function createSqlKeyValueStore({ db, box }: SqlContext): KeyValueStore {
  const openValue = (namespace: string, key: string, row: { value: string; secret: number }): string =>
    row.secret === 1 ? box.open(row.value, kvContext(namespace, key)) : row.value;

  return {
    async getValue(namespace, key, signal) {
      throwIfAborted(signal);
      const row = await db
        .selectFrom("kv")
        .select(["value", "secret"])
        .where("namespace", "=", namespace)
        .where("key", "=", key)
        .executeTakeFirst();
      return row && openValue(namespace, key, row);
    },

    async putValue(namespace, key, value, options = {}, signal) {
      throwIfAborted(signal);
      const secret = options.secret ?? false;
      const stored = secret ? box.seal(value, kvContext(namespace, key)) : value;
      // With ifAbsent, the conflict "update" rewrites the existing value with itself: one atomic
      // statement that returns whichever value won, even when a concurrent delete runs alongside.
      const row = await db
        .insertInto("kv")
        .values({ namespace, key, value: stored, secret: secret ? 1 : 0 })
        .onConflict((oc) =>
          oc
            .columns(["namespace", "key"])
            .doUpdateSet((eb) =>
              options.ifAbsent
                ? { value: eb.ref("kv.value"), secret: eb.ref("kv.secret") }
                : { value: eb.ref("excluded.value"), secret: eb.ref("excluded.secret") },
            ),
        )
        .returning(["value", "secret"])
        .executeTakeFirstOrThrow();
      return openValue(namespace, key, row);
    },

    async listValues(namespace, page, signal) {
      throwIfAborted(signal);
      let query = db
        .selectFrom("kv")
        .select(["key", "value", "secret"])
        .where("namespace", "=", namespace)
        .orderBy("key")
        .limit(page.limit);
      if (page.after !== undefined) query = query.where("key", ">", page.after);
      const rows = await query.execute();
      return rows.map((row) => ({ key: row.key, value: openValue(namespace, row.key, row) }));
    },

    async deleteValue(namespace, key) {
      await db.deleteFrom("kv").where("namespace", "=", namespace).where("key", "=", key).execute();
    },
  };
}
