import { mkdir, readFile } from "node:fs/promises";
import { dirname } from "node:path";
import { stringify } from "yaml";
import { writeFileAtomic } from "./atomic-file.js";

/**
 * Traefik's file provider reads TLS certificates from a dynamic-configuration file:
 * `tls.certificates[] = { certFile, keyFile }`. The agent keeps one such file listing every installed
 * certificate (full chain + key through the stable paths), rewritten atomically only when the list
 * changes; Traefik watches it and picks up both new entries and renewed files.
 */
export interface TraefikEntry {
  certFile: string;
  keyFile: string;
}

export function renderTraefikConfig(entries: readonly TraefikEntry[]): string {
  const body = stringify({
    tls: { certificates: entries.map((e) => ({ certFile: e.certFile, keyFile: e.keyFile })) },
  });
  return (
    "# Written by the certfleet agent. Do not edit: it is rewritten when certificates are installed.\n" + body
  );
}

/** Returns true when the file was (re)written. */
export async function writeTraefikConfig(
  path: string,
  entries: readonly TraefikEntry[],
  mode: number,
): Promise<boolean> {
  const text = renderTraefikConfig(entries);
  const existing = await readFile(path, "utf8").catch(() => undefined);
  if (existing === text) return false;
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  await writeFileAtomic(path, text, { mode });
  return true;
}
