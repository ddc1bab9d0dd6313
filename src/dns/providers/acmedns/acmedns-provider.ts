import { randomBytes } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { z } from "zod";
import { UpstreamError, throwIfAborted } from "../../../core/errors.js";
import { defineDnsProvider } from "../../define-provider.js";
import type { DnsProvider, TxtRecord } from "../../dns-provider.js";
import {
  apiUrl,
  cleanupSignal,
  createKeyedMutex,
  createProviderHttp,
  requestTimeoutSchema,
} from "../../http.js";
import type { DnsProviderDeps } from "../../registry.js";

/**
 * acme-dns (joohoi/acme-dns): a tiny DNS server with a two-call API. Each validated domain gets an
 * account (`POST /register`) whose `fulldomain` the user points `_acme-challenge.<domain>` at with a
 * CNAME, once; from then on `POST /update` (X-Api-User / X-Api-Key) sets the TXT value.
 *
 * Accounts are kept in a JSON file compatible with lego's and cert-manager's acme-dns storage
 * (`{ "<domain>": { username, password, fulldomain, subdomain, allowfrom } }`), or given in config.
 * A domain without an account is registered on first use, and the CNAME to create is logged.
 *
 * acme-dns serves the two most recent values per account and has no delete. To still make a deleted
 * value disappear (while a concurrent challenge's value stays served throughout), deleteTxt pushes the
 * surviving value again and/or a random placeholder until the deleted one has rotated out — at most two
 * updates. This tracks what this process pushed; a value it never pushed is treated as already gone.
 */
const accountSchema = z.object({
  username: z.string().min(1),
  password: z.string().min(1),
  fulldomain: z.string().min(1),
  subdomain: z.string().min(1),
  allowfrom: z.array(z.string()).optional(),
});

export type AcmeDnsAccount = z.infer<typeof accountSchema>;

export const acmeDnsConfigSchema = z
  .strictObject({
    apiBase: z
      .url()
      .describe("The acme-dns server's API, e.g. https://auth.example.org (lego: ACME_DNS_API_BASE)."),
    storagePath: z
      .string()
      .min(1)
      .optional()
      .describe(
        "JSON file of accounts per domain; new registrations are saved here (lego: ACME_DNS_STORAGE_PATH).",
      ),
    accounts: z
      .record(z.string(), accountSchema)
      .optional()
      .describe("Accounts per domain given directly (cert-manager's acmedns JSON)."),
    allowFrom: z
      .array(z.string().min(1))
      .optional()
      .describe("CIDR ranges allowed to update a newly registered account."),
    timeoutMs: requestTimeoutSchema,
  })
  .refine((c) => c.storagePath !== undefined || c.accounts !== undefined, {
    message: "set storagePath (accounts are registered and saved there) or accounts",
  });

export type AcmeDnsConfig = z.infer<typeof acmeDnsConfigSchema>;

const storageSchema = z.record(z.string(), accountSchema);
const CHALLENGE_PREFIX = "_acme-challenge.";

export function createAcmeDnsProvider(config: AcmeDnsConfig, deps: DnsProviderDeps): DnsProvider {
  const id = "acmedns";
  const http = createProviderHttp({
    provider: id,
    fetch: deps.fetch,
    logger: deps.logger,
    clock: deps.clock,
    timeoutMs: config.timeoutMs,
  });
  const perDomain = createKeyedMutex();
  const perAccount = createKeyedMutex();
  const storageLock = createKeyedMutex();
  /** Per account subdomain: the (up to two) values served, oldest first, and those still wanted. */
  const slots = new Map<string, { served: string[]; live: Set<string> }>();

  function domainOf(name: string): string {
    return name.startsWith(CHALLENGE_PREFIX) ? name.slice(CHALLENGE_PREFIX.length) : name;
  }

  async function readStorage(): Promise<Record<string, AcmeDnsAccount>> {
    if (config.storagePath === undefined) return {};
    let text: string;
    try {
      text = await readFile(config.storagePath, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return {};
      throw storageError(`cannot read ${config.storagePath}`, e);
    }
    const parsed = storageSchema.safeParse(safeJson(text));
    if (!parsed.success)
      throw storageError(`${config.storagePath} is not an acme-dns accounts file`, parsed.error);
    return parsed.data;
  }

  async function saveAccount(domain: string, account: AcmeDnsAccount): Promise<void> {
    const path = config.storagePath!;
    await storageLock(path, async () => {
      const all = await readStorage();
      all[domain] = account;
      try {
        await mkdir(dirname(path), { recursive: true });
        const tmp = `${path}.${randomBytes(6).toString("hex")}.tmp`;
        await writeFile(tmp, JSON.stringify(all, null, 2) + "\n", { mode: 0o600 });
        await rename(tmp, path);
      } catch (e) {
        throw storageError(`cannot write ${path}`, e);
      }
    });
  }

  function storageError(message: string, cause: unknown): UpstreamError {
    return new UpstreamError("dns_provider_config", `acmedns: ${message}`, {
      retryable: false,
      cause,
      details: { provider: id, path: config.storagePath },
    });
  }

  async function findAccount(record: TxtRecord): Promise<AcmeDnsAccount | undefined> {
    const domain = domainOf(record.name);
    const all = { ...(await readStorage()), ...config.accounts };
    return (
      all[domain] ??
      Object.values(all).find((a) => a.fulldomain.toLowerCase().replace(/\.$/, "") === record.name)
    );
  }

  async function account(record: TxtRecord, signal: AbortSignal): Promise<AcmeDnsAccount> {
    const domain = domainOf(record.name);
    return perDomain(domain, async () => {
      const existing = await findAccount(record);
      if (existing) return existing;
      if (config.storagePath === undefined) {
        throw new UpstreamError(
          "dns_provider_config",
          `acmedns: no account for ${domain} (zone ${record.zone}) and no storagePath to register one into`,
          {
            retryable: false,
            details: { provider: id, zone: record.zone, domain },
          },
        );
      }
      const registered = accountSchema.safeParse(
        await http.requestJson({
          method: "POST",
          url: apiUrl(config.apiBase, "/register"),
          ...(config.allowFrom ? { json: { allowfrom: config.allowFrom } } : {}),
          zone: record.zone,
          action: "register an account",
          signal,
        }),
      );
      if (!registered.success) {
        throw new UpstreamError(
          "dns_provider_error",
          `acmedns: the register answer for ${domain} is incomplete`,
          {
            details: { provider: id, zone: record.zone },
          },
        );
      }
      await saveAccount(domain, registered.data);
      deps.logger.warn(
        { provider: id, domain, cname: `${CHALLENGE_PREFIX}${domain}`, target: registered.data.fulldomain },
        `acme-dns: registered an account for ${domain}. Create the DNS record ` +
          `"${CHALLENGE_PREFIX}${domain}. CNAME ${registered.data.fulldomain}." — validation cannot succeed until it exists.`,
      );
      return registered.data;
    });
  }

  async function push(acct: AcmeDnsAccount, value: string, zone: string, signal: AbortSignal): Promise<void> {
    await http.request({
      method: "POST",
      url: apiUrl(config.apiBase, "/update"),
      headers: { "x-api-user": acct.username, "x-api-key": acct.password },
      json: { subdomain: acct.subdomain, txt: value },
      zone,
      action: "update the TXT value",
      signal,
    });
    const state = slotsOf(acct);
    state.served = [...state.served, value].slice(-2);
  }

  function slotsOf(acct: AcmeDnsAccount) {
    let state = slots.get(acct.subdomain);
    if (!state) {
      state = { served: [], live: new Set() };
      slots.set(acct.subdomain, state);
    }
    return state;
  }

  return {
    id,
    async appendTxt(record, signal) {
      throwIfAborted(signal);
      const acct = await account(record, signal);
      await perAccount(acct.subdomain, async () => {
        throwIfAborted(signal);
        await push(acct, record.value, record.zone, signal);
        slotsOf(acct).live.add(record.value);
      });
    },

    async deleteTxt(record) {
      const acct = await findAccount(record);
      if (!acct) return;
      const signal = cleanupSignal(config.timeoutMs * 3);
      await perAccount(acct.subdomain, async () => {
        const state = slotsOf(acct);
        state.live.delete(record.value);
        while (state.served.includes(record.value)) {
          const keep = state.served.find((v) => v !== record.value && state.live.has(v));
          // Re-pushing the survivor first when the deleted value is the newer one keeps it served.
          const next = keep !== undefined && state.served.at(-1) === record.value ? keep : placeholder();
          await push(acct, next, record.zone, signal);
        }
      });
    },
  };
}

/** A value no challenge will ever ask for, in the 43-character shape acme-dns insists on. */
function placeholder(): string {
  return randomBytes(32).toString("base64url");
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export const acmeDnsProviderDefinition = defineDnsProvider<AcmeDnsConfig>({
  id: "acmedns",
  aliases: [],
  legoCode: "acme-dns",
  legoEnv: { ACME_DNS_API_BASE: "apiBase", ACME_DNS_STORAGE_PATH: "storagePath" },
  description:
    "acme-dns (register + update API). Registers an account per domain on first use; create the logged CNAME once.",
  schema: acmeDnsConfigSchema,
  secretFields: ["accounts"],
  propagation: { timeoutMs: 120_000, intervalMs: 2_000 },
  create: (config, deps) => createAcmeDnsProvider(config, deps),
});
