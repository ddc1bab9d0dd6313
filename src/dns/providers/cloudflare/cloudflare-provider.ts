import { z } from "zod";
import { UpstreamError, throwIfAborted } from "../../../core/errors.js";
import { defineDnsProvider } from "../../define-provider.js";
import type { DnsProvider, TxtRecord, ZoneLister } from "../../dns-provider.js";
import {
  apiUrl,
  cleanupSignal,
  createProviderHttp,
  type ProviderHttp,
  requestTimeoutSchema,
} from "../../http.js";
import type { DnsProviderDeps } from "../../registry.js";

/**
 * Cloudflare's v4 API with a scoped API token (Zone:Read + DNS:Edit), or the legacy global key.
 * Each TXT value is its own record with an id; the id returned on create is remembered so cleanup
 * deletes exactly that record, and after a restart (no id in memory) the record is found by
 * name + content instead.
 */
export const cloudflareConfigSchema = z
  .strictObject({
    apiToken: z
      .string()
      .min(1)
      .optional()
      .describe("API token with DNS:Edit on the zone (lego: CF_DNS_API_TOKEN)."),
    zoneApiToken: z
      .string()
      .min(1)
      .optional()
      .describe(
        "Separate token with Zone:Read, when the DNS token cannot list zones (lego: CF_ZONE_API_TOKEN).",
      ),
    apiKey: z
      .string()
      .min(1)
      .optional()
      .describe("Legacy global API key and its account email, instead of a token."),
    apiEmail: z.string().min(1).optional().describe("Account email for the legacy global API key"),
    zoneId: z.string().min(1).optional().describe("Skip the zone lookup."),
    ttl: z
      .number()
      .int()
      .min(1)
      .max(86_400)
      .optional()
      .describe("TTL for created records; Cloudflare's minimum outside Enterprise is 60 (1 = automatic)."),
    baseUrl: z
      .url()
      .default("https://api.cloudflare.com/client/v4")
      .describe("API base URL (override for a proxy or a test double)"),
    timeoutMs: requestTimeoutSchema,
  })
  .refine((c) => c.apiToken !== undefined || (c.apiKey !== undefined && c.apiEmail !== undefined), {
    message: "set apiToken, or apiKey together with apiEmail",
  });

export type CloudflareConfig = z.infer<typeof cloudflareConfigSchema>;

interface CfEnvelope<T> {
  success: boolean;
  errors?: { code: number; message: string }[];
  result: T;
}
interface CfZone {
  id: string;
  name: string;
}
interface CfRecord {
  id: string;
  name: string;
  type: string;
  content: string;
}

/** Error codes Cloudflare uses for bad credentials with HTTP 400 rather than 401/403. */
const AUTH_ERROR_CODES = new Set([6003, 6111, 6102, 6103, 9103, 9106, 9109, 10000]);
/** "An identical record already exists." */
const IDENTICAL_RECORD = 81058;

export function createCloudflareProvider(
  config: CloudflareConfig,
  deps: DnsProviderDeps,
): DnsProvider & ZoneLister {
  const id = "cloudflare";
  const http: ProviderHttp = createProviderHttp({
    provider: id,
    fetch: deps.fetch,
    logger: deps.logger,
    clock: deps.clock,
    timeoutMs: config.timeoutMs,
    isAuthFailure: (status, body) => status === 400 && errorCodes(body).some((c) => AUTH_ERROR_CODES.has(c)),
  });
  const zoneIds = new Map<string, Promise<string>>();
  /** `${name}\n${value}` → the record created for it. */
  const created = new Map<string, { zoneId: string; recordId: string }>();

  function headers(forZoneRead = false): Record<string, string> {
    const token = forZoneRead ? (config.zoneApiToken ?? config.apiToken) : config.apiToken;
    if (token !== undefined) return { authorization: `Bearer ${token}` };
    return { "x-auth-email": config.apiEmail!, "x-auth-key": config.apiKey! };
  }

  function zoneId(zone: string, signal: AbortSignal): Promise<string> {
    if (config.zoneId !== undefined) return Promise.resolve(config.zoneId);
    let pending = zoneIds.get(zone);
    if (!pending) {
      pending = lookupZone(zone, signal);
      zoneIds.set(zone, pending);
      pending.catch(() => zoneIds.delete(zone));
    }
    return pending;
  }

  async function lookupZone(zone: string, signal: AbortSignal): Promise<string> {
    const body = await http.requestJson<CfEnvelope<CfZone[]>>({
      method: "GET",
      url: apiUrl(config.baseUrl, "/zones", { name: zone }),
      headers: headers(true),
      zone,
      action: "look up the zone",
      signal,
    });
    const match = body.result?.find((z) => z.name.toLowerCase() === zone);
    if (!match) {
      throw new UpstreamError(
        "dns_zone_not_found",
        `cloudflare: zone ${zone} is not visible to these credentials`,
        {
          retryable: false,
          details: { provider: id, zone },
        },
      );
    }
    return match.id;
  }

  async function findRecords(zid: string, record: TxtRecord, signal: AbortSignal): Promise<CfRecord[]> {
    const body = await http.requestJson<CfEnvelope<CfRecord[]>>({
      method: "GET",
      url: apiUrl(config.baseUrl, `/zones/${encodeURIComponent(zid)}/dns_records`, {
        type: "TXT",
        name: record.name,
        content: record.value,
      }),
      headers: headers(),
      zone: record.zone,
      action: "find the TXT record",
      signal,
    });
    return (body.result ?? []).filter(
      (r) => r.type === "TXT" && r.name.toLowerCase() === record.name && unquote(r.content) === record.value,
    );
  }

  return {
    id,
    async appendTxt(record, signal) {
      throwIfAborted(signal);
      const zid = await zoneId(record.zone, signal);
      const response = await http.request({
        method: "POST",
        url: apiUrl(config.baseUrl, `/zones/${encodeURIComponent(zid)}/dns_records`),
        headers: headers(),
        json: {
          type: "TXT",
          name: record.name,
          content: record.value,
          ttl: config.ttl ?? Math.max(record.ttl, 60),
        },
        accept: [400],
        zone: record.zone,
        action: "create the TXT record",
        signal,
      });
      if (response.status === 400) {
        if (!errorCodes(response.text).includes(IDENTICAL_RECORD)) {
          throw new UpstreamError(
            "dns_provider_error",
            `cloudflare: creating a TXT record in zone ${record.zone} was refused`,
            {
              retryable: false,
              internal: response.text.slice(0, 2048),
              details: { provider: id, zone: record.zone, status: 400 },
            },
          );
        }
        // Already there (a retried append): adopt the existing record so cleanup removes it.
        const [existing] = await findRecords(zid, record, signal);
        if (existing) created.set(key(record), { zoneId: zid, recordId: existing.id });
        return;
      }
      created.set(key(record), { zoneId: zid, recordId: response.json<CfEnvelope<CfRecord>>().result.id });
    },

    async deleteTxt(record) {
      const signal = cleanupSignal(config.timeoutMs * 2);
      const remembered = created.get(key(record));
      let targets: { zoneId: string; recordId: string }[];
      if (remembered) {
        targets = [remembered];
      } else {
        const zid = await zoneId(record.zone, signal);
        targets = (await findRecords(zid, record, signal)).map((r) => ({ zoneId: zid, recordId: r.id }));
      }
      for (const t of targets) {
        await http.request({
          method: "DELETE",
          url: apiUrl(
            config.baseUrl,
            `/zones/${encodeURIComponent(t.zoneId)}/dns_records/${encodeURIComponent(t.recordId)}`,
          ),
          headers: headers(),
          accept: [404],
          zone: record.zone,
          action: "delete the TXT record",
          signal,
        });
      }
      created.delete(key(record));
    },

    async listZones(signal) {
      const names: string[] = [];
      for (let page = 1; page <= 50; page++) {
        const body = await http.requestJson<
          CfEnvelope<CfZone[]> & { result_info?: { total_pages?: number } }
        >({
          method: "GET",
          url: apiUrl(config.baseUrl, "/zones", { page: String(page), per_page: "50" }),
          headers: headers(true),
          zone: "*",
          action: "list zones",
          signal,
        });
        names.push(...(body.result ?? []).map((z) => z.name.toLowerCase()));
        if (page >= (body.result_info?.total_pages ?? 1)) break;
      }
      return names;
    },
  };
}

function key(record: TxtRecord): string {
  return `${record.name}\n${record.value}`;
}

function errorCodes(body: string): number[] {
  try {
    const parsed = JSON.parse(body) as { errors?: { code?: number; error_chain?: { code?: number }[] }[] };
    return (parsed.errors ?? []).flatMap((e) => [
      e.code ?? 0,
      ...(e.error_chain ?? []).map((c) => c.code ?? 0),
    ]);
  } catch {
    return [];
  }
}

/** Cloudflare may hand TXT content back wrapped in quotes. */
function unquote(content: string): string {
  return content.length >= 2 && content.startsWith('"') && content.endsWith('"')
    ? content.slice(1, -1)
    : content;
}

export const cloudflareProviderDefinition = defineDnsProvider<CloudflareConfig>({
  id: "cloudflare",
  aliases: ["cf"],
  legoCode: "cloudflare",
  legoEnv: {
    CF_DNS_API_TOKEN: "apiToken",
    CLOUDFLARE_BASE_URL: "baseUrl",
    CLOUDFLARE_DNS_API_TOKEN: "apiToken",
    CF_ZONE_API_TOKEN: "zoneApiToken",
    CLOUDFLARE_ZONE_API_TOKEN: "zoneApiToken",
    CF_API_KEY: "apiKey",
    CLOUDFLARE_API_KEY: "apiKey",
    CF_API_EMAIL: "apiEmail",
    CLOUDFLARE_EMAIL: "apiEmail",
    CF_TTL: "ttl",
    CLOUDFLARE_TTL: "ttl",
  },
  description: "Cloudflare DNS with a scoped API token (Zone:Read, DNS:Edit) or the legacy global API key.",
  schema: cloudflareConfigSchema,
  secretFields: ["apiToken", "zoneApiToken", "apiKey"],
  propagation: { timeoutMs: 120_000, intervalMs: 2_000 },
  create: (config, deps) => createCloudflareProvider(config, deps),
});
