import { readFile } from "node:fs/promises";
import { writeFileAtomic } from "../install/atomic-file.js";

/**
 * The optional file that keeps an interactive login's refresh token between runs, so `certfleet get`
 * does not open a browser every time. Mode 0600; written atomically; a missing or unreadable file
 * simply means "log in again".
 */
export interface RefreshTokenFile {
  load(): Promise<string | undefined>;
  save(refreshToken: string | undefined): Promise<void>;
}

export function refreshTokenFile(path: string, issuer: string, clientId: string): RefreshTokenFile {
  return {
    async load() {
      try {
        const data = JSON.parse(await readFile(path, "utf8")) as Record<string, unknown>;
        return data.issuer === issuer && data.client_id === clientId && typeof data.refresh_token === "string"
          ? data.refresh_token
          : undefined;
      } catch {
        return undefined;
      }
    },
    async save(refreshToken) {
      const body =
        JSON.stringify({ issuer, client_id: clientId, refresh_token: refreshToken ?? null }) + "\n";
      await writeFileAtomic(path, body, { mode: 0o600 });
    },
  };
}
