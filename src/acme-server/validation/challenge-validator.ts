import type { Logger } from "../../core/logger.js";
import { createValidationDns } from "./dns-lookup.js";
import { validateDns01 } from "./dns01.js";
import { validateHttp01 } from "./http01.js";
import { validateTlsAlpn01 } from "./tls-alpn01.js";
import type { ChallengeValidator } from "./validator.js";

export interface ChallengeValidatorOptions {
  /** "host:port" resolvers; empty = the system's. */
  dnsResolvers: readonly string[];
  /** Per attempt, on top of the caller's signal. */
  timeoutMs: number;
  logger: Logger;
}

/** The validator for `challenge` profiles: one module per challenge type, one DNS seam for all. */
export function createChallengeValidator(options: ChallengeValidatorOptions): ChallengeValidator {
  const dns = createValidationDns(options.dnsResolvers);
  return {
    async validate(challenge, profile, signal) {
      const s = AbortSignal.any([signal, AbortSignal.timeout(options.timeoutMs)]);
      switch (challenge.type) {
        case "http-01":
          return validateHttp01(challenge, profile, dns, s);
        case "dns-01":
          return validateDns01(challenge, dns, s);
        case "tls-alpn-01":
          return validateTlsAlpn01(challenge, profile, dns, s);
      }
    },
  };
}
