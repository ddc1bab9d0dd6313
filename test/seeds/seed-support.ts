import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { parse } from "yaml";

/**
 * Helpers for the seed tests: read a fixture (a config block or a client script copied from a seed
 * document) with only host names, ports and secrets replaced, and run a client script with bash the
 * way its user would (curl, jq), trusting the test server's CA through CURL_CA_BUNDLE.
 */

export const SEED_FIXTURES = new URL("../fixtures/seeds/", import.meta.url).pathname;

/** Replace each key of `substitutions` by its value, longest key first (so a host that prefixes another is safe). */
export function substitute(text: string, substitutions: Record<string, string>): string {
  const keys = Object.keys(substitutions).sort((a, b) => b.length - a.length);
  let out = text;
  for (const key of keys) out = out.split(key).join(substitutions[key]!);
  return out;
}

export async function fixtureText(path: string, substitutions: Record<string, string> = {}): Promise<string> {
  return substitute(await readFile(join(SEED_FIXTURES, path), "utf8"), substitutions);
}

export async function fixtureYaml(
  path: string,
  substitutions: Record<string, string> = {},
): Promise<Record<string, unknown>> {
  return parse(await fixtureText(path, substitutions)) as Record<string, unknown>;
}

/** Run a client script (bash), bounded in time; resolves with its stdout, stderr and exit code. */
export function runScript(
  script: string,
  env: Record<string, string>,
  timeoutMs = 20_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      "bash",
      ["-c", script],
      { env: { PATH: process.env.PATH ?? "", ...env }, timeout: timeoutMs },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** The JSON document a client script printed (the certfleet API answer; curl's meter goes to stderr). */
export function outputJson(stdout: string): any {
  try {
    return JSON.parse(stdout.trim());
  } catch {
    throw new Error(`client output is not JSON:\n${stdout}`);
  }
}

export async function waitFor(what: string, check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
