import { mkdir, mkdtemp, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { AgentAuthError } from "../../src/agent/agent-errors.js";
import {
  challengePathFromHeader,
  defaultHimdsTokenDir,
  MAX_CHALLENGE_FILE_BYTES,
  readChallengeFile,
} from "../../src/agent/auth/himds-challenge.js";

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    expect(e).toBeInstanceOf(AgentAuthError);
    return (e as AgentAuthError).code;
  }
}

describe("HIMDS challenge file guard", () => {
  let tokens: string;
  let outside: string;
  beforeAll(async () => {
    const root = await mkdtemp(join(tmpdir(), "cf-himds-"));
    tokens = join(root, "tokens");
    outside = join(root, "elsewhere");
    await mkdir(tokens);
    await mkdir(outside);
    await writeFile(join(tokens, "good.key"), "secret-from-arc\n");
    await writeFile(join(tokens, "note.txt"), "not a key");
    await writeFile(join(tokens, "big.key"), "x".repeat(MAX_CHALLENGE_FILE_BYTES + 1));
    await writeFile(join(tokens, "empty.key"), "");
    await writeFile(join(outside, "stolen.key"), "private");
    await symlink(join(outside, "stolen.key"), join(tokens, "link.key"));
    await mkdir(join(tokens, "dir.key"));
    await mkdir(join(tokens, "sub"));
    await writeFile(join(tokens, "sub", "nested.key"), "nested");
  });

  it("reads a small .key file directly inside the token directory", async () => {
    expect(await readChallengeFile(join(tokens, "good.key"), tokens, "linux")).toBe("secret-from-arc");
    expect(await readChallengeFile(join(tokens, "good.key"), tokens + "/", "linux")).toBe("secret-from-arc");
  });

  it.each([
    ["a relative path", () => "tokens/good.key", "himds_challenge_path_refused"],
    ["a file outside the directory", () => join(outside, "stolen.key"), "himds_challenge_path_refused"],
    [
      "a traversal out of the directory",
      () => `${tokens}/../elsewhere/stolen.key`,
      "himds_challenge_path_refused",
    ],
    ["a file in a subdirectory", () => join(tokens, "sub", "nested.key"), "himds_challenge_path_refused"],
    ["/etc/passwd", () => "/etc/passwd", "himds_challenge_path_refused"],
    ["a file that is not .key", () => join(tokens, "note.txt"), "himds_challenge_path_refused"],
    ["a symlink to a file outside", () => join(tokens, "link.key"), "himds_challenge_file_invalid"],
    ["a directory named .key", () => join(tokens, "dir.key"), "himds_challenge_file_invalid"],
    ["a file over 4 KiB", () => join(tokens, "big.key"), "himds_challenge_file_invalid"],
    ["an empty file", () => join(tokens, "empty.key"), "himds_challenge_file_invalid"],
    ["a missing file", () => join(tokens, "missing.key"), "himds_challenge_file_invalid"],
  ])("refuses %s", async (_label, path, code) => {
    expect(await codeOf(readChallengeFile(path(), tokens, "linux"))).toBe(code);
  });

  it("Windows: the token directory under ProgramData, compared case-insensitively, other paths refused before any read", async () => {
    const dir = defaultHimdsTokenDir("win32", { ProgramData: "C:\\ProgramData" });
    expect(dir).toBe("C:\\ProgramData\\AzureConnectedMachineAgent\\Tokens\\");
    expect(defaultHimdsTokenDir("linux", {})).toBe("/var/opt/azcmagent/tokens/");
    expect(await codeOf(readChallengeFile("C:\\Windows\\win.ini", dir, "win32"))).toBe(
      "himds_challenge_path_refused",
    );
    expect(
      await codeOf(
        readChallengeFile("c:\\programdata\\azureconnectedmachineagent\\tokens\\x.txt", dir, "win32"),
      ),
    ).toBe("himds_challenge_path_refused");
    // Inside the directory (any case) the path is accepted; the file does not exist on this machine.
    expect(
      await codeOf(
        readChallengeFile("c:\\programdata\\azureconnectedmachineagent\\TOKENS\\x.key", dir, "win32"),
      ),
    ).not.toBe("himds_challenge_path_refused");
  });

  it("parses the realm from WWW-Authenticate", () => {
    expect(challengePathFromHeader("Basic realm=/var/opt/azcmagent/tokens/abc.key")).toBe(
      "/var/opt/azcmagent/tokens/abc.key",
    );
    expect(challengePathFromHeader('basic realm="/var/opt/azcmagent/tokens/a b.key"')).toBe(
      "/var/opt/azcmagent/tokens/a b.key",
    );
    for (const bad of [null, "", "Bearer realm=x", "Basic", "Basic realm="]) {
      expect(() => challengePathFromHeader(bad)).toThrow(
        expect.objectContaining({ code: "himds_challenge_missing" }),
      );
    }
  });
});
