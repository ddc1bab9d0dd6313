import { isCertfleetError, type CertfleetError } from "../core/errors.js";
import { AgentAuthError, InstallError } from "./agent-errors.js";

/**
 * Exit codes of `certfleet agent` and `certfleet get`. Scripts branch on these; they never change
 * meaning. When several certificates fail in one `--once` run, the lowest non-zero code among the
 * failures in this order wins: 2, 3, 4, 6, 5, 1 (most actionable first).
 */
export const EXIT_OK = 0;
/** Anything not listed below (a refused name, a malformed answer, an internal error). */
export const EXIT_FAILURE = 1;
/** The configuration file or the command line is wrong. */
export const EXIT_CONFIG = 2;
/** Authentication failed: no credential could be obtained, or the server refused it (401). */
export const EXIT_AUTH = 3;
/** Authenticated, but this identity may not have these names (403). */
export const EXIT_FORBIDDEN = 4;
/** The server is unreachable, overloaded (5xx) or rate limiting (429): try again later. */
export const EXIT_UNAVAILABLE = 5;
/** The certificate was obtained but writing the files or the reload command failed. */
export const EXIT_INSTALL = 6;

const PRECEDENCE = [EXIT_CONFIG, EXIT_AUTH, EXIT_FORBIDDEN, EXIT_INSTALL, EXIT_UNAVAILABLE, EXIT_FAILURE];

export function exitCodeFor(error: unknown): number {
  if (!isCertfleetError(error)) return EXIT_FAILURE;
  if (error.code === "config_invalid") return EXIT_CONFIG;
  if (error instanceof AgentAuthError || error.status === 401) return EXIT_AUTH;
  if (error.status === 403) return EXIT_FORBIDDEN;
  if (error instanceof InstallError) return EXIT_INSTALL;
  if (isTransient(error)) return EXIT_UNAVAILABLE;
  return EXIT_FAILURE;
}

/** Worth trying again later without changing anything. */
export function isTransient(error: CertfleetError): boolean {
  return error.status >= 500 || error.status === 429 || error.status === 408 || error.code === "aborted";
}

/** Combine several runs' codes into one (see the precedence above). */
export function worstExitCode(codes: readonly number[]): number {
  for (const code of PRECEDENCE) if (codes.includes(code)) return code;
  return EXIT_OK;
}
