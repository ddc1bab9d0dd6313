import { CertfleetError, type ErrorOptions } from "../core/errors.js";

/**
 * Authentication failed on the agent's side of the wire: the credential could not be obtained (a token
 * file is missing, a metadata endpoint refused, a plugin exited non-zero) or the server answered 401.
 * Every such failure triggers `auth.on_failure` and exits with EXIT_AUTH. `method` is the auth method.
 */
export class AgentAuthError extends CertfleetError {
  readonly method: string;
  constructor(method: string, code: string, message: string, options: ErrorOptions = {}) {
    super(code, message, { status: 401, expose: true, ...options });
    this.method = method;
  }
}

/** Writing the files or running the reload command failed; the previous files stay in place. */
export class InstallError extends CertfleetError {
  constructor(code: "install_failed" | "reload_failed", message: string, options: ErrorOptions = {}) {
    super(code, message, { status: 500, expose: true, ...options });
  }
}

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
