import { createHash, randomBytes, scrypt, timingSafeEqual } from "node:crypto";

/**
 * Secrets as certfleet stores and compares them.
 *
 * - API keys are high-entropy (≥ 128 bits) and presented on every call, so a fast hash is enough:
 *   `sha256:<hex>`. Comparison is constant-time.
 * - Client secrets are stored with a slow KDF (scrypt) so a leaked database does not yield usable
 *   secrets even if one was chosen badly: `scrypt$N$r$p$<salt b64url>$<hash b64url>`.
 *
 * Nothing here logs or returns a secret except `generateSecret`, whose result is shown once.
 */

const SHA256_PREFIX = "sha256:";

/**
 * Constant-time equality for two secrets of any length: both sides are hashed first, so the time taken
 * reveals neither the contents nor the length of the expected value.
 */
export function constantTimeEqual(a: string | Buffer, b: string | Buffer): boolean {
  const ha = createHash("sha256").update(a).digest();
  const hb = createHash("sha256").update(b).digest();
  return timingSafeEqual(ha, hb);
}

/** `sha256:<hex>` of an API key (the form `auth.apiKeys[].keyHash` takes). */
export function hashApiKey(key: string): string {
  return SHA256_PREFIX + createHash("sha256").update(key, "utf8").digest("hex");
}

export function isApiKeyHash(value: string): boolean {
  return /^sha256:[0-9a-f]{64}$/.test(value);
}

/** The raw 32 digest bytes of a `sha256:<hex>` hash. Throws TypeError on anything else. */
export function apiKeyDigest(hash: string): Buffer {
  if (!isApiKeyHash(hash)) throw new TypeError("API key hash must look like sha256:<64 hex digits>");
  return Buffer.from(hash.slice(SHA256_PREFIX.length), "hex");
}

/** Does `key` hash to `hash`? Constant-time in the digest comparison. */
export function verifyApiKey(key: string, hash: string): boolean {
  const presented = createHash("sha256").update(key, "utf8").digest();
  return timingSafeEqual(presented, apiKeyDigest(hash));
}

/** A new random secret: `prefix` + 32 random bytes in base64url (256 bits). */
export function generateSecret(prefix = ""): string {
  return prefix + randomBytes(32).toString("base64url");
}

export interface ScryptParams {
  /** CPU/memory cost, a power of two. */
  N: number;
  r: number;
  p: number;
}

/**
 * About 100 ms and 16 MiB per hash on a small server. Client secrets are server-generated (256 bits), so
 * the KDF guards against a leaked database, not weak choices; a modest cost keeps per-call verification
 * (and a flood of wrong guesses, until the failure limiter blocks it) affordable.
 */
export const DEFAULT_SCRYPT_PARAMS: ScryptParams = { N: 2 ** 14, r: 8, p: 1 };

/** Stored hashes outside these bounds are refused rather than run (a hostile row must not hang us). */
const MAX_N = 2 ** 20;
const MAX_R = 32;
const MAX_P = 16;
const KEY_LENGTH = 32;
const SALT_LENGTH = 16;

function scryptAsync(secret: string, salt: Buffer, keyLength: number, params: ScryptParams): Promise<Buffer> {
  const maxmem = 128 * params.N * params.r * params.p + 16 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    scrypt(secret, salt, keyLength, { N: params.N, r: params.r, p: params.p, maxmem }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

function checkParams(params: ScryptParams): void {
  const { N, r, p } = params;
  const powerOfTwo = Number.isInteger(N) && N > 1 && (N & (N - 1)) === 0;
  if (
    !powerOfTwo ||
    N > MAX_N ||
    !Number.isInteger(r) ||
    r < 1 ||
    r > MAX_R ||
    !Number.isInteger(p) ||
    p < 1 ||
    p > MAX_P
  ) {
    throw new TypeError(`scrypt parameters out of range (N=${N}, r=${r}, p=${p})`);
  }
}

/** Hash a client secret for storage: `scrypt$N$r$p$<salt>$<hash>` with a fresh random salt. */
export async function hashSecret(
  secret: string,
  params: ScryptParams = DEFAULT_SCRYPT_PARAMS,
): Promise<string> {
  checkParams(params);
  const salt = randomBytes(SALT_LENGTH);
  const hash = await scryptAsync(secret, salt, KEY_LENGTH, params);
  return [
    "scrypt",
    params.N,
    params.r,
    params.p,
    salt.toString("base64url"),
    hash.toString("base64url"),
  ].join("$");
}

interface ParsedSecretHash {
  params: ScryptParams;
  salt: Buffer;
  hash: Buffer;
}

function parseSecretHash(encoded: string): ParsedSecretHash | undefined {
  const parts = encoded.split("$");
  if (parts.length !== 6 || parts[0] !== "scrypt") return undefined;
  const [, n, r, p, salt, hash] = parts as [string, string, string, string, string, string];
  if (![n, r, p].every((v) => /^[0-9]{1,8}$/.test(v))) return undefined;
  const params = { N: Number(n), r: Number(r), p: Number(p) };
  try {
    checkParams(params);
  } catch {
    return undefined;
  }
  const saltBytes = Buffer.from(salt, "base64url");
  const hashBytes = Buffer.from(hash, "base64url");
  if (saltBytes.length < 8 || hashBytes.length < 16 || hashBytes.length > 64) return undefined;
  return { params, salt: saltBytes, hash: hashBytes };
}

/**
 * Does `secret` match the stored `encoded` hash? False (never a throw) for a malformed or out-of-bounds
 * stored value. The final comparison is constant-time.
 */
export async function verifySecret(secret: string, encoded: string): Promise<boolean> {
  const parsed = parseSecretHash(encoded);
  if (!parsed) return false;
  const computed = await scryptAsync(secret, parsed.salt, parsed.hash.length, parsed.params);
  return timingSafeEqual(computed, parsed.hash);
}

/** True when a stored hash was made with weaker parameters than `params` (re-hash on next success). */
export function secretHashNeedsUpgrade(
  encoded: string,
  params: ScryptParams = DEFAULT_SCRYPT_PARAMS,
): boolean {
  const parsed = parseSecretHash(encoded);
  if (!parsed) return true;
  return parsed.params.N < params.N || parsed.params.r < params.r || parsed.params.p < params.p;
}
