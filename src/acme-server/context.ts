import type { Clock } from "../core/clock.js";
import type { Logger } from "../core/logger.js";
import type { IssuedKeys } from "../issuance/issued-keys.js";
import type { Issuer } from "../issuance/issuer.js";
import type { AuditEvent, IdentityStore, LockStore } from "../storage/storage.js";
import type { AcmeStore } from "../storage/acme-store.js";
import type { BackgroundWork } from "./background-work.js";
import type { AcmeProfileConfig } from "./config.js";
import type { EabKeys } from "./eab.js";
import type { NonceService } from "./nonces.js";
import type { AuthenticatedRequest } from "./request-auth.js";
import type { AcmeUrls } from "./urls.js";
import type { ChallengeValidator } from "./validation/validator.js";

/** Everything a route handler of one profile may use. Built once per profile by index.ts. */
export interface ProfileContext {
  profile: AcmeProfileConfig;
  store: AcmeStore;
  nonces: NonceService;
  eab: EabKeys;
  issuer: Issuer;
  /** Keys some issuer was asked to certify: never accepted as account keys. */
  issuedKeys: Pick<IssuedKeys, "has">;
  identities: Pick<IdentityStore, "getIdentity">;
  /** Storage locks: the per-account order limit is checked and the order created under one. */
  locks: Pick<LockStore, "tryLock" | "refreshLock" | "unlock">;
  validator: ChallengeValidator;
  work: BackgroundWork;
  /** One challenge validation attempt (connect, redirects, DNS) may take this long. */
  validationTimeoutMs: number;
  audit: (event: AuditEvent) => void;
  logger: Logger;
  clock: Clock;
  /** Every profile name and description, for the directory. */
  descriptions: Record<string, string>;
}

/** One request as a handler sees it. */
export interface AcmeRequest {
  ctx: ProfileContext;
  urls: AcmeUrls;
  params: Record<string, string>;
  query: Record<string, string | undefined>;
  remoteAddress: string | undefined;
  signal: AbortSignal;
}

export interface SignedAcmeRequest extends AcmeRequest {
  jws: AuthenticatedRequest;
}

/** What a handler answers; plugin.ts adds Replay-Nonce, Link rel="index" and Cache-Control. */
export interface AcmeResponse {
  status: number;
  /** An object is sent as JSON; a string as is, with `contentType`. */
  body?: unknown;
  contentType?: string;
  location?: string;
  /** Extra Link header values, e.g. `<url>;rel="up"`. */
  links?: string[];
  retryAfter?: number;
}
