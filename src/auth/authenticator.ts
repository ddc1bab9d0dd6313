import type { IncomingHttpHeaders } from "node:http";
import type { SshGrant } from "../ssh/ssh-grant.js";

/**
 * An Authenticator recognises one kind of credential. `authenticate` returns `undefined` when the
 * request does not carry its kind of credential at all (so the next authenticator may try), returns a
 * Principal when the credential is valid, and throws AuthenticationError (with an internal reason for
 * the audit log) when the credential is its kind but is wrong. It must compare secrets in constant time
 * and never log them.
 */
export interface Authenticator {
  /** Method name as recorded in the audit log, e.g. "api_key", "jwt". */
  readonly method: string;
  authenticate(request: AuthRequest, signal: AbortSignal): Promise<Principal | undefined>;
}

export interface AuthRequest {
  headers: IncomingHttpHeaders;
  remoteAddress: string;
  /** DER of the verified TLS client certificate, when the listener did mTLS. */
  peerCertificate?: Buffer;
  /** DER of the certificates above the leaf on the path the TLS layer verified (intermediates, anchor). */
  peerChain?: Buffer[];
}

export interface Principal {
  /** Stable identity id (identity record UUID, or `apikey:<name>`). */
  id: string;
  /** Human-readable name for logs and the dashboard. */
  name: string;
  method: string;
  /**
   * Name patterns this identity may obtain certificates for (see core/names.ts patternMatches), or
   * "all" when unrestricted.
   */
  grants: readonly string[] | "all";
  /** Admin is its own permission; it never follows from a certificate grant. */
  admin: boolean;
  /** SSH certificate grant (src/ssh/ssh-grant.ts); absent = no SSH certificates. */
  ssh?: SshGrant;
}
