import { throwIfAborted } from "../../core/errors.js";
import type { ChallengeTokenStore } from "../challenge-token-store.js";
import type { SqlContext } from "./context.js";

export function createSqlChallengeTokenStore({ db, clock }: SqlContext): ChallengeTokenStore {
  return {
    async putChallengeToken(token, keyAuthorization, expiresAt, signal) {
      throwIfAborted(signal);
      const row = { token, key_authorization: keyAuthorization, expires_at: expiresAt.getTime() };
      await db
        .insertInto("challenge_tokens")
        .values(row)
        .onConflict((oc) =>
          oc
            .column("token")
            .doUpdateSet({ key_authorization: row.key_authorization, expires_at: row.expires_at }),
        )
        .execute();
      // Housekeeping rides along with writes, so the table never needs a sweeper.
      await db.deleteFrom("challenge_tokens").where("expires_at", "<=", clock.now().getTime()).execute();
    },

    async getChallengeToken(token, signal) {
      throwIfAborted(signal);
      const row = await db
        .selectFrom("challenge_tokens")
        .select("key_authorization")
        .where("token", "=", token)
        .where("expires_at", ">", clock.now().getTime())
        .executeTakeFirst();
      return row?.key_authorization;
    },

    async deleteChallengeToken(token) {
      await db.deleteFrom("challenge_tokens").where("token", "=", token).execute();
    },
  };
}
