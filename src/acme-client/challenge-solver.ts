/**
 * Makes one ACME challenge answerable. `present` may be called for several challenges at once;
 * `cleanup` always runs (success, failure or abort) and must remove only what its `present` created.
 */
export interface ChallengeSolver {
  readonly type: "http-01" | "dns-01" | "tls-alpn-01";
  present(challenge: SolverChallenge, signal: AbortSignal): Promise<void>;
  /** Optional: wait until the CA will see the answer (DNS propagation). */
  waitReady?(challenge: SolverChallenge, signal: AbortSignal): Promise<void>;
  cleanup(challenge: SolverChallenge): Promise<void>;
  /**
   * Optional: whether this solver can answer for `domain` at all (e.g. a DNS provider serves its zone).
   * Checked before an order is created; a solver without it is taken to cover every domain.
   */
  covers?(domain: string): boolean;
}

export interface SolverChallenge {
  /** The identifier being validated, without `*.` (e.g. "example.com" for "*.example.com"). */
  domain: string;
  wildcard: boolean;
  token: string;
  keyAuthorization: string;
}
