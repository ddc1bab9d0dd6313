import { z } from "zod";
import { UpstreamError, throwIfAborted } from "../../../core/errors.js";
import { defineDnsProvider } from "../../define-provider.js";
import type { DnsProvider, TxtRecord, ZoneLister } from "../../dns-provider.js";
import { apiUrl, cleanupSignal, createProviderHttp, relativeName } from "../../http.js";
import type { DnsProviderDeps } from "../../registry.js";

/**
 * DigitalOcean's v2 domains API with a personal access token. Each TXT value is one domain record
 * with a numeric id: the id from create is remembered for cleanup, with a lookup by name + data as
 * the fallback after a restart.
 */
export const digitalOceanConfigSchema = z.strictObject({
  authToken: z.string().min(1).describe("Personal access token with write scope (lego: DO_AUTH_TOKEN)."),
  ttl: z
    .number()
    .int()
    .min(30)
    .max(86_400)
    .optional()
    .describe("TTL for created records; DigitalOcean's minimum is 30."),
  baseUrl: z
    .url()
    .default("https://api.digitalocean.com")
    .describe("API base URL (override for a proxy or a test double)"),
  timeoutMs: z
    .number()
    .int()
    .positive()
    .max(120_000)
    .default(30_000)
    .describe("Timeout of one API request, in milliseconds"),
});

export type DigitalOceanConfig = z.infer<typeof digitalOceanConfigSchema>;

interface DoRecord {
  id: number;
  type: string;
  name: string;
  data: string;
}

export function createDigitalOceanProvider(
  config: DigitalOceanConfig,
  deps: DnsProviderDeps,
): DnsProvider & ZoneLister {
  const id = "digitalocean";
  const http = createProviderHttp({
    provider: id,
    fetch: deps.fetch,
    logger: deps.logger,
    clock: deps.clock,
    timeoutMs: config.timeoutMs,
  });
  const headers = { authorization: `Bearer ${config.authToken}` };
  const created = new Map<string, number>();
  const recordsUrl = (zone: string) =>
    apiUrl(config.baseUrl, `/v2/domains/${encodeURIComponent(zone)}/records`);

  function zoneNotFound(zone: string): UpstreamError {
    return new UpstreamError("dns_zone_not_found", `digitalocean: domain ${zone} is not in this account`, {
      retryable: false,
      details: { provider: id, zone },
    });
  }

  async function find(record: TxtRecord, signal: AbortSignal): Promise<DoRecord[]> {
    const url = recordsUrl(record.zone);
    url.searchParams.set("type", "TXT");
    url.searchParams.set("name", record.name);
    url.searchParams.set("per_page", "200");
    const response = await http.request({
      method: "GET",
      url,
      headers,
      accept: [404],
      zone: record.zone,
      action: "find the TXT record",
      signal,
    });
    if (response.status === 404) return [];
    const body = response.json<{ domain_records?: DoRecord[] }>();
    const relative = relativeName(record.name, record.zone);
    return (body.domain_records ?? []).filter(
      (r) => r.type === "TXT" && (r.name === relative || r.name === record.name) && r.data === record.value,
    );
  }

  return {
    id,
    async appendTxt(record, signal) {
      throwIfAborted(signal);
      const response = await http.request({
        method: "POST",
        url: recordsUrl(record.zone),
        headers,
        json: {
          type: "TXT",
          name: relativeName(record.name, record.zone),
          data: record.value,
          ttl: config.ttl ?? Math.max(record.ttl, 30),
        },
        accept: [404],
        zone: record.zone,
        action: "create the TXT record",
        signal,
      });
      if (response.status === 404) throw zoneNotFound(record.zone);
      created.set(
        `${record.name}\n${record.value}`,
        response.json<{ domain_record: DoRecord }>().domain_record.id,
      );
    },

    async deleteTxt(record) {
      const signal = cleanupSignal(config.timeoutMs * 2);
      const key = `${record.name}\n${record.value}`;
      const remembered = created.get(key);
      const ids = remembered !== undefined ? [remembered] : (await find(record, signal)).map((r) => r.id);
      for (const recordId of ids) {
        await http.request({
          method: "DELETE",
          url: apiUrl(config.baseUrl, `/v2/domains/${encodeURIComponent(record.zone)}/records/${recordId}`),
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
      let next: string | undefined = apiUrl(config.baseUrl, "/v2/domains", { per_page: "200" }).toString();
      for (let page = 0; next !== undefined && page < 50; page++) {
        const body: { domains?: { name: string }[]; links?: { pages?: { next?: string } } } =
          await http.requestJson({
            method: "GET",
            url: next,
            headers,
            zone: "*",
            action: "list domains",
            signal,
          });
        names.push(...(body.domains ?? []).map((d) => d.name.toLowerCase()));
        next = body.links?.pages?.next;
      }
      return names;
    },
  };
}

export const digitalOceanProviderDefinition = defineDnsProvider<DigitalOceanConfig>({
  id: "digitalocean",
  aliases: ["do"],
  legoCode: "digitalocean",
  legoEnv: { DO_AUTH_TOKEN: "authToken", DO_API_URL: "baseUrl", DO_TTL: "ttl" },
  description: "DigitalOcean DNS (domains API) with a personal access token.",
  schema: digitalOceanConfigSchema,
  secretFields: ["authToken"],
  propagation: { timeoutMs: 120_000, intervalMs: 5_000 },
  create: (config, deps) => createDigitalOceanProvider(config, deps),
});
