import { constants } from "node:fs";
import { open, realpath } from "node:fs/promises";
import { posix, win32 } from "node:path";
import { AgentAuthError, errorText } from "../agent-errors.js";

/**
 * The HIMDS challenge file guard. The Arc agent's first answer is 401 with
 * `WWW-Authenticate: Basic realm=<path>`; the client proves it runs on the machine by sending that
 * file's contents back. A client that reads whatever path the header names would send any local file
 * to whoever listens on the HIMDS port, so — as Microsoft's own libraries do — only a `.key` file
 * directly inside the Arc agent's token directory, regular (not a symlink) and at most 4 KiB, is read.
 *
 * Error codes (AgentAuthError, method azure_arc): himds_challenge_missing, himds_challenge_path_refused,
 * himds_challenge_file_invalid.
 */

export const MAX_CHALLENGE_FILE_BYTES = 4096;
const METHOD = "azure_arc";

/** The Arc agent's token directory on this platform. */
export function defaultHimdsTokenDir(platform: NodeJS.Platform, env: NodeJS.ProcessEnv): string {
  if (platform === "win32") {
    return win32.join(env.ProgramData || "C:\\ProgramData", "AzureConnectedMachineAgent", "Tokens") + "\\";
  }
  return "/var/opt/azcmagent/tokens/";
}

/** The path in `Basic realm=<path>` (quoted or not). */
export function challengePathFromHeader(header: string | null | undefined): string {
  const m = header ? /^\s*basic\s+realm\s*=\s*(?:"([^"]*)"|(\S.*?))\s*$/i.exec(header) : null;
  const path = m ? (m[1] ?? m[2]) : undefined;
  if (!path) {
    throw new AgentAuthError(
      METHOD,
      "himds_challenge_missing",
      "the HIMDS answer carries no challenge file",
      {
        internal: `WWW-Authenticate: ${String(header).slice(0, 200)}`,
      },
    );
  }
  return path;
}

/**
 * Check `challengePath` against the allowed directory and read it. Throws AgentAuthError; never reads
 * a refused path.
 */
export async function readChallengeFile(
  challengePath: string,
  tokenDir: string,
  platform: NodeJS.Platform = process.platform,
): Promise<string> {
  const p = platform === "win32" ? win32 : posix;
  const refuse = (why: string): never => {
    throw new AgentAuthError(
      METHOD,
      "himds_challenge_path_refused",
      "the HIMDS challenge file is not in the Arc token directory",
      {
        internal: `${why}: ${challengePath.slice(0, 300)}`,
      },
    );
  };
  if (!p.isAbsolute(challengePath)) refuse("not an absolute path");
  const file = p.resolve(challengePath);
  const dir = p.resolve(tokenDir);
  const same = (a: string, b: string) =>
    platform === "win32" ? a.toLowerCase() === b.toLowerCase() : a === b;
  if (!same(p.dirname(file), dir)) refuse("outside the token directory");
  if (p.extname(file).toLowerCase() !== ".key" || p.basename(file).length <= 4) refuse("not a .key file");
  // The directory itself may be reached through a symlink (a test's temp dir); the file may not.
  const realDir = await realpath(dir).catch(() => dir);
  const realParent = await realpath(p.dirname(file)).catch(() => undefined);

  const invalid = (why: string, cause?: unknown): never => {
    throw new AgentAuthError(
      METHOD,
      "himds_challenge_file_invalid",
      "the HIMDS challenge file cannot be used",
      {
        internal: `${why}: ${file}`,
        cause,
      },
    );
  };
  if (realParent === undefined) invalid("the token directory does not exist");
  if (!same(realParent!, realDir)) refuse("outside the token directory");
  let handle;
  try {
    handle = await open(file, constants.O_RDONLY | (platform === "win32" ? 0 : constants.O_NOFOLLOW));
  } catch (e) {
    return invalid(`cannot open (${(e as NodeJS.ErrnoException).code ?? errorText(e)})`, e);
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) invalid("not a regular file");
    if (info.size === 0 || info.size > MAX_CHALLENGE_FILE_BYTES)
      invalid(`size ${info.size} outside 1..${MAX_CHALLENGE_FILE_BYTES}`);
    const buffer = Buffer.alloc(MAX_CHALLENGE_FILE_BYTES + 1);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    if (bytesRead > MAX_CHALLENGE_FILE_BYTES) invalid("grew while reading");
    return buffer.subarray(0, bytesRead).toString("utf8").trim();
  } finally {
    await handle.close();
  }
}
