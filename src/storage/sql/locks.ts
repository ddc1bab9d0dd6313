import { throwIfAborted } from "../../core/errors.js";
import type { LockStore } from "../lock-store.js";
import type { SqlContext } from "./context.js";

export function createSqlLockStore({ db, clock }: SqlContext): LockStore {
  return {
    async tryLock(name, owner, ttlMs, signal) {
      throwIfAborted(signal);
      const now = clock.now().getTime();
      // One statement: insert, or take over a row that has expired or is already ours. A row comes back
      // only if we wrote it, so concurrent callers see exactly one winner.
      const row = await db
        .insertInto("locks")
        .values({ name, owner, expires_at: now + ttlMs })
        .onConflict((oc) =>
          oc
            .column("name")
            .doUpdateSet((eb) => ({
              owner: eb.ref("excluded.owner"),
              expires_at: eb.ref("excluded.expires_at"),
            }))
            .where((eb) => eb.or([eb("locks.expires_at", "<=", now), eb("locks.owner", "=", owner)])),
        )
        .returning("name")
        .executeTakeFirst();
      return row !== undefined;
    },

    /** Ours while the row names us: an expired lock that nobody took over may still be refreshed. */
    async refreshLock(name, owner, ttlMs) {
      const result = await db
        .updateTable("locks")
        .set({ expires_at: clock.now().getTime() + ttlMs })
        .where("name", "=", name)
        .where("owner", "=", owner)
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    },

    async unlock(name, owner) {
      await db.deleteFrom("locks").where("name", "=", name).where("owner", "=", owner).execute();
    },

    async releaseStaleLocks(ownerPrefix, currentOwner) {
      // a prefix compare, not LIKE: the prefix is data, its `%` or `_` must not act as wildcards
      const result = await db
        .deleteFrom("locks")
        .where((eb) =>
          eb(eb.fn("substr", ["owner", eb.val(1), eb.val(ownerPrefix.length)]), "=", ownerPrefix),
        )
        .where("owner", "!=", currentOwner)
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
