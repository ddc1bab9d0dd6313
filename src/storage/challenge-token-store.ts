/**
 * HTTP-01 key authorizations by token, so any replica answers the CA's validation request. Expired
 * tokens are never returned and are swept as new ones are written.
 */
export interface ChallengeTokenStore {
  /** Insert or replace. */
  putChallengeToken(
    token: string,
    keyAuthorization: string,
    expiresAt: Date,
    signal?: AbortSignal,
  ): Promise<void>;
  /** The key authorization of an unexpired token, or undefined. */
  getChallengeToken(token: string, signal?: AbortSignal): Promise<string | undefined>;
  /** Always runs; no signal. Missing token is not an error. */
  deleteChallengeToken(token: string): Promise<void>;
}
