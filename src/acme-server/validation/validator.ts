import type { ChallengeType } from "../../storage/acme-store.js";
import type { AcmeProfileConfig } from "../config.js";

/**
 * Validates one ACME challenge (RFC 8555 §8, RFC 8737) for a `challenge`-mode profile. Resolves when
 * the client proved control; throws an AcmeProblem (`connection`, `dns`, `tls`, `incorrectResponse`,
 * `connection` also for an address validation may not reach) otherwise. Honours `signal` in every network step.
 */
export interface ChallengeValidator {
  validate(challenge: ChallengeToValidate, profile: AcmeProfileConfig, signal: AbortSignal): Promise<void>;
}

export interface ChallengeToValidate {
  type: ChallengeType;
  /** The DNS name, without "*.". */
  domain: string;
  token: string;
  keyAuthorization: string;
}
