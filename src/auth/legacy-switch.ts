import type { Clock } from "../core/clock.js";
import type { Logger } from "../core/logger.js";
import type { KeyValueStore } from "../storage/storage.js";
import { AuthFailure } from "./auth-failure.js";

/**
 * The organisation switch for legacy (credential-based) methods: client id / secret and X.509 client
 * certificates. It lives in storage (kv namespace "settings", key "legacyMethodsEnabled") so an
 * administrator's change reaches every replica, and it is read on authentication with a cache of at
 * most one second, so disabling a method takes effect without a restart.
 *
 * Stored value (JSON): `true` / `false` for both methods, or `{ "client_secret": bool, "certificate":
 * bool }` (a missing entry means enabled). No value at all means enabled. A value that does not parse
 * fails closed: both methods disabled, and an error is logged.
 */

export const SETTINGS_NAMESPACE = "settings";
export const LEGACY_SETTING_KEY = "legacyMethodsEnabled";
export const LEGACY_METHODS = ["client_secret", "certificate"] as const;
export type LegacyMethod = (typeof LEGACY_METHODS)[number];
export type LegacyMethodSettings = Record<LegacyMethod, boolean>;

/** Upper bound on how stale a reading may be. */
const MAX_TTL_MS = 1000;

export interface LegacySwitch {
  /** Throws AuthFailure `legacy_method_disabled` when `method` is switched off. */
  assertEnabled(method: LegacyMethod, signal?: AbortSignal): Promise<void>;
  /** The current settings (fresh within the cache TTL). */
  read(signal?: AbortSignal): Promise<LegacyMethodSettings>;
}

export interface LegacySwitchDeps {
  store: Pick<KeyValueStore, "getValue">;
  clock: Clock;
  logger: Logger;
  /** Cache lifetime, 0–1000 ms (default 1000). */
  ttlMs?: number;
}

/** Parse the stored value. Undefined → all enabled; unparseable → undefined (caller fails closed). */
export function parseLegacySettings(raw: string | undefined): LegacyMethodSettings | undefined {
  const all = (enabled: boolean): LegacyMethodSettings => ({ client_secret: enabled, certificate: enabled });
  if (raw === undefined) return all(true);
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (typeof value === "boolean") return all(value);
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const out = all(true);
  for (const [k, v] of Object.entries(value)) {
    if (!(LEGACY_METHODS as readonly string[]).includes(k) || typeof v !== "boolean") return undefined;
    out[k as LegacyMethod] = v;
  }
  return out;
}

/** Write the setting (admin API / CLI). Takes effect on every replica within a second. */
export async function writeLegacySettings(
  store: Pick<KeyValueStore, "putValue">,
  settings: Partial<LegacyMethodSettings> | boolean,
  signal?: AbortSignal,
): Promise<void> {
  await store.putValue(SETTINGS_NAMESPACE, LEGACY_SETTING_KEY, JSON.stringify(settings), {}, signal);
}

export function createLegacySwitch(deps: LegacySwitchDeps): LegacySwitch {
  const ttlMs = Math.min(Math.max(deps.ttlMs ?? MAX_TTL_MS, 0), MAX_TTL_MS);
  const logger = deps.logger.child({ component: "auth.legacy_switch" });
  let cached: { at: number; settings: LegacyMethodSettings } | undefined;

  async function read(signal?: AbortSignal): Promise<LegacyMethodSettings> {
    const now = deps.clock.now().getTime();
    if (cached && now - cached.at < ttlMs && now >= cached.at) return cached.settings;
    const raw = await deps.store.getValue(SETTINGS_NAMESPACE, LEGACY_SETTING_KEY, signal);
    let settings = parseLegacySettings(raw);
    if (!settings) {
      logger.error(
        { key: `${SETTINGS_NAMESPACE}/${LEGACY_SETTING_KEY}` },
        "unreadable legacy-method setting: legacy methods disabled",
      );
      settings = { client_secret: false, certificate: false };
    }
    cached = { at: now, settings };
    return settings;
  }

  return {
    read,
    async assertEnabled(method, signal) {
      const settings = await read(signal);
      if (!settings[method])
        throw new AuthFailure("legacy_method_disabled", `${method} is disabled by the organisation settings`);
    },
  };
}
