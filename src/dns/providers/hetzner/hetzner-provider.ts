import { z } from "zod";
import { UpstreamError, throwIfAborted } from "../../../core/errors.js";
import { defineDnsProvider } from "../../define-provider.js";
import type { DnsProvider, TxtRecord, ZoneLister } from "../../dns-provider.js";
import { apiUrl, cleanupSignal, createProviderHttp, relativeName } from "../../http.js";
import type { DnsProviderDeps } from "../../registry.js";

/**
 * Hetzner DNS Console API (dns.hetzner.com/api/v1), authenticated with the `Auth-API-Token` header.
 * Zones are found by name; each TXT value is one record with an id, remembered for cleanup (with a
 * lookup by name + value after a restart).
 */
export const hetznerConfigSchema = z.strictObject({
  apiKey: z.string().min(1).describe("DNS Console API token (lego: HETZNER_API_KEY)."),
  ttl: z
    .number()
    .int()
    .min(60)
    .max(86_400)
    .optional()
    .describe("TTL of created TXT records in seconds (default: the challenge TTL)"),
  baseUrl: z
    .url()
    .default("https://dns.hetzner.com/api/v1")
    .describe("API base URL (override for a proxy or a test double)"),
  timeoutMs: z
    .number()
    .int()
    .positive()
    .max(120_000)
    .default(30_000)
    .describe("Timeout of one API request, in milliseconds"),
});

export type HetznerConfig = z.infer<typeof hetznerConfigSchema>;

interface HetznerRecord {
  id: string;
  type: string;
  name: string;
  value: string;
  zone_id: string;
}

export function createHetznerProvider(
  config: HetznerConfig,
  deps: DnsProviderDeps,
): DnsProvider & ZoneLister {
  const id = "hetzner";
  const http = createProviderHttp({
    provider: id,
    fetch: deps.fetch,
    logger: deps.logger,
    clock: deps.clock,
    timeoutMs: config.timeoutMs,
  });
  const headers = { "auth-api-token": config.apiKey };
  const zoneIds = new Map<string, Promise<string>>();
  const created = new Map<string, string>();

  function zoneId(zone: string, signal: AbortSignal): Promise<string> {
    let pending = zoneIds.get(zone);
    if (!pending) {
      pending = (async () => {
        const response = await http.request({
          method: "GET",
          url: apiUrl(config.baseUrl, "/zones", { name: zone }),
          headers,
          accept: [404],
          zone,
          action: "look up the zone",
          signal,
        });
        const match =
          response.status === 404
            ? undefined
            : (response.json<{ zones?: { id: string; name: string }[] }>().zones ?? []).find(
                (z) => z.name.toLowerCase() === zone,
              );
        if (!match) {
          throw new UpstreamError("dns_zone_not_found", `hetzner: zone ${zone} is not in this account`, {
            retryable: false,
            details: { provider: id, zone },
          });
        }
        return match.id;
      })();
      zoneIds.set(zone, pending);
      pending.catch(() => zoneIds.delete(zone));
    }
    return pending;
  }

  async function find(record: TxtRecord, signal: AbortSignal): Promise<HetznerRecord[]> {
    const zid = await zoneId(record.zone, signal);
    const body = await http.requestJson<{ records?: HetznerRecord[] }>({
      method: "GET",
      url: apiUrl(config.baseUrl, "/records", { zone_id: zid }),
      headers,
      zone: record.zone,
      action: "find the TXT record",
      signal,
    });
    const relative = relativeName(record.name, record.zone);
    return (body.records ?? []).filter(
      (r) => r.type === "TXT" && r.name === relative && unquote(r.value) === record.value,
    );
  }

  return {
    id,
    async appendTxt(record, signal) {
      throwIfAborted(signal);
      const zid = await zoneId(record.zone, signal);
      const body = await http.requestJson<{ record: HetznerRecord }>({
        method: "POST",
        url: apiUrl(config.baseUrl, "/records"),
        headers,
        json: {
          zone_id: zid,
          type: "TXT",
          name: relativeName(record.name, record.zone),
          value: record.value,
          ttl: config.ttl ?? Math.max(record.ttl, 60),
        },
        zone: record.zone,
        action: "create the TXT record",
        signal,
      });
      created.set(`${record.name}\n${record.value}`, body.record.id);
    },

    async deleteTxt(record) {
      const signal = cleanupSignal(config.timeoutMs * 2);
      const key = `${record.name}\n${record.value}`;
      const remembered = created.get(key);
      const ids = remembered !== undefined ? [remembered] : (await find(record, signal)).map((r) => r.id);
      for (const recordId of ids) {
        await http.request({
          method: "DELETE",
          url: apiUrl(config.baseUrl, `/records/${encodeURIComponent(recordId)}`),
          headers,
          accept: [404],
          zone: record.zone,
          action: "delete the TXT record",
          signal,
        });
      }
      created.delete(key);
    },

    async listZones(signal) {
      const names: string[] = [];
      for (let page = 1; page <= 50; page++) {
        const body = await http.requestJson<{
          zones?: { name: string }[];
          meta?: { pagination?: { last_page?: number } };
        }>({
          method: "GET",
          url: apiUrl(config.baseUrl, "/zones", { page: String(page), per_page: "100" }),
          headers,
          zone: "*",
          action: "list zones",
          signal,
        });
        names.push(...(body.zones ?? []).map((z) => z.name.toLowerCase()));
        if (page >= (body.meta?.pagination?.last_page ?? 1)) break;
      }
      return names;
    },
  };
}

function unquote(value: string): string {
  return value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value;
}

export const hetznerProviderDefinition = defineDnsProvider<HetznerConfig>({
  id: "hetzner",
  aliases: [],
  legoCode: "hetzner",
  legoEnv: { HETZNER_API_KEY: "apiKey", HETZNER_TTL: "ttl" },
  description: "Hetzner DNS Console (dns.hetzner.com) with an API token.",
  schema: hetznerConfigSchema,
  secretFields: ["apiKey"],
  propagation: { timeoutMs: 120_000, intervalMs: 5_000 },
  create: (config, deps) => createHetznerProvider(config, deps),
});
