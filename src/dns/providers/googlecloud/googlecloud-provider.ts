import { z } from "zod";
import { sleep } from "../../../core/clock.js";
import { CertfleetError, UpstreamError, throwIfAborted } from "../../../core/errors.js";
import { defineDnsProvider } from "../../define-provider.js";
import type { DnsProvider, TxtRecord, ZoneLister } from "../../dns-provider.js";
import {
  apiUrl,
  cleanupSignal,
  createKeyedMutex,
  createProviderHttp,
  isOAuthCredentialError,
  requestTimeoutSchema,
  backOffAfterConflict,
} from "../../http.js";
import type { DnsProviderDeps } from "../../registry.js";
import {
  CLOUD_DNS_SCOPE,
  createServiceAccountTokenSource,
  parseServiceAccountKey,
  readKeyFile,
  serviceAccountKeySchema,
  type ServiceAccountKey,
} from "./service-account.js";

/**
 * Google Cloud DNS (v1) with a service-account key. Cloud DNS stores one record set per name and
 * type, replaced whole through the `changes` API: adding a value is "delete the current set, add the
 * set plus the value" in one change. The deletion must match the current set exactly, so a writer
 * racing us makes the change fail (409/412) instead of silently dropping its value; we then read the
 * set again and retry. Writes to one name from this process are serialised to avoid racing ourselves.
 * A change is done when its status is "done".
 */
export const googleCloudConfigSchema = z
  .strictObject({
    serviceAccount: z
      .string()
      .min(1)
      .refine((s) => serviceAccountKeySchema.safeParse(safeJson(s)).success, {
        message: "expected a service-account key JSON (type, project_id, private_key, client_email)",
      })
      .optional()
      .describe("The service-account key JSON itself (lego: GCE_SERVICE_ACCOUNT)"),
    serviceAccountFile: z
      .string()
      .min(1)
      .optional()
      .describe("Path of the service-account key JSON (lego: GCE_SERVICE_ACCOUNT_FILE)."),
    project: z
      .string()
      .min(1)
      .optional()
      .describe("Project holding the zones; defaults to the key's project_id (lego: GCE_PROJECT)."),
    managedZone: z
      .string()
      .min(1)
      .optional()
      .describe("Managed zone name (not DNS name) to use instead of looking it up by DNS name."),
    tokenUrl: z.url().optional().describe("Token endpoint; defaults to the key's token_uri."),
    ttl: z
      .number()
      .int()
      .min(1)
      .max(86_400)
      .optional()
      .describe("TTL of created TXT records in seconds (default: the challenge TTL)"),
    baseUrl: z
      .url()
      .default("https://dns.googleapis.com/dns/v1")
      .describe("API base URL (override for a proxy or a test double)"),
    timeoutMs: requestTimeoutSchema,
    changePollIntervalMs: z
      .number()
      .int()
      .positive()
      .max(60_000)
      .default(2_000)
      .describe("How often to poll a pending change, and for how long."),
    changeTimeoutMs: z
      .number()
      .int()
      .positive()
      .max(900_000)
      .default(180_000)
      .describe("How long to wait for a change to be applied, in milliseconds"),
  })
  .refine((c) => (c.serviceAccount === undefined) !== (c.serviceAccountFile === undefined), {
    message: "set exactly one of serviceAccount or serviceAccountFile",
  });

export type GoogleCloudConfig = z.infer<typeof googleCloudConfigSchema>;

interface RRSet {
  name: string;
  type: string;
  ttl: number;
  rrdatas: string[];
}
interface Change {
  id: string;
  status: string;
}

export function createGoogleCloudProvider(
  config: GoogleCloudConfig,
  deps: DnsProviderDeps,
): DnsProvider & ZoneLister {
  const id = "googlecloud";
  const http = createProviderHttp({
    provider: id,
    fetch: deps.fetch,
    logger: deps.logger,
    clock: deps.clock,
    timeoutMs: config.timeoutMs,
    isAuthFailure: isOAuthCredentialError,
  });

  let key: Promise<ServiceAccountKey> | undefined;
  const loadKey = () => {
    key ??= (async () =>
      config.serviceAccount !== undefined
        ? parseServiceAccountKey(config.serviceAccount, id, "serviceAccount")
        : parseServiceAccountKey(
            await readKeyFile(config.serviceAccountFile!, id),
            id,
            config.serviceAccountFile!,
          ))();
    key.catch(() => (key = undefined));
    return key;
  };
  const tokens = createServiceAccountTokenSource({
    loadKey,
    http,
    clock: deps.clock,
    scope: CLOUD_DNS_SCOPE,
    tokenUrl: config.tokenUrl,
  });
  const zones = new Map<string, Promise<string>>();
  const exclusive = createKeyedMutex();

  async function project(): Promise<string> {
    return config.project ?? (await loadKey()).project_id;
  }

  async function auth(zone: string, signal: AbortSignal): Promise<Record<string, string>> {
    return { authorization: `Bearer ${await tokens.token(zone, signal)}` };
  }

  async function zoneBase(zone: string, signal: AbortSignal): Promise<string> {
    const p = encodeURIComponent(await project());
    if (config.managedZone !== undefined)
      return `/projects/${p}/managedZones/${encodeURIComponent(config.managedZone)}`;
    let pending = zones.get(zone);
    if (!pending) {
      pending = (async () => {
        const body = await http.requestJson<{
          managedZones?: { name: string; dnsName: string; visibility?: string }[];
        }>({
          method: "GET",
          url: apiUrl(config.baseUrl, `/projects/${p}/managedZones`, { dnsName: `${zone}.` }),
          headers: await auth(zone, signal),
          zone,
          action: "look up the managed zone",
          signal,
        });
        const candidates = (body.managedZones ?? []).filter((z) => z.dnsName.toLowerCase() === `${zone}.`);
        const match = candidates.find((z) => z.visibility !== "private") ?? candidates[0];
        if (!match) {
          throw new UpstreamError(
            "dns_zone_not_found",
            `googlecloud: no managed zone for ${zone} in project ${await project()}`,
            {
              retryable: false,
              details: { provider: id, zone },
            },
          );
        }
        return `/projects/${p}/managedZones/${encodeURIComponent(match.name)}`;
      })();
      zones.set(zone, pending);
      pending.catch(() => zones.delete(zone));
    }
    return pending;
  }

  async function readSet(base: string, record: TxtRecord, signal: AbortSignal): Promise<RRSet | undefined> {
    const body = await http.requestJson<{ rrsets?: RRSet[] }>({
      method: "GET",
      url: apiUrl(config.baseUrl, `${base}/rrsets`, { name: `${record.name}.`, type: "TXT" }),
      headers: await auth(record.zone, signal),
      zone: record.zone,
      action: "read the TXT record set",
      signal,
    });
    return (body.rrsets ?? []).find((s) => s.type === "TXT" && s.name.toLowerCase() === `${record.name}.`);
  }

  /**
   * Read the set, compute the new one, submit the change; on a conflict read again. `next` returns
   * the rrdatas wanted, or undefined when nothing needs to change.
   */
  async function update(
    record: TxtRecord,
    signal: AbortSignal,
    next: (current: string[]) => string[] | undefined,
  ): Promise<void> {
    const base = await zoneBase(record.zone, signal);
    await exclusive(record.name, async () => {
      for (let attempt = 1; ; attempt++) {
        throwIfAborted(signal);
        const current = await readSet(base, record, signal);
        const wanted = next(current?.rrdatas ?? []);
        if (wanted === undefined) return;
        const change: { additions?: RRSet[]; deletions?: RRSet[] } = {};
        if (current) change.deletions = [current];
        if (wanted.length > 0) {
          const ttl = config.ttl ?? record.ttl;
          change.additions = [{ name: `${record.name}.`, type: "TXT", ttl, rrdatas: wanted }];
        }
        const response = await http.request({
          method: "POST",
          url: apiUrl(config.baseUrl, `${base}/changes`),
          headers: await auth(record.zone, signal),
          json: change,
          accept: [409, 412],
          zone: record.zone,
          action: "change the TXT record set",
          signal,
        });
        if (response.status === 409 || response.status === 412) {
          await backOffAfterConflict(attempt, { provider: id, zone: record.zone, name: record.name }, signal);
          continue;
        }
        await waitDone(base, response.json<Change>(), record, signal);
        return;
      }
    });
  }

  async function waitDone(
    base: string,
    change: Change,
    record: TxtRecord,
    signal: AbortSignal,
  ): Promise<void> {
    const deadline = deps.clock.now().getTime() + config.changeTimeoutMs;
    let status = change.status;
    while (status !== "done") {
      if (deps.clock.now().getTime() > deadline) {
        throw new UpstreamError(
          "dns_provider_timeout",
          `googlecloud: change ${change.id} in zone ${record.zone} is still ${status}`,
          {
            details: { provider: id, zone: record.zone, change: change.id },
          },
        );
      }
      await sleep(config.changePollIntervalMs, signal).catch(() => {
        throw new CertfleetError("aborted", "operation was cancelled", { status: 499, cause: signal.reason });
      });
      const polled = await http.requestJson<Change>({
        method: "GET",
        url: apiUrl(config.baseUrl, `${base}/changes/${encodeURIComponent(change.id)}`),
        headers: await auth(record.zone, signal),
        zone: record.zone,
        action: "check the change status",
        signal,
      });
      status = polled.status;
    }
  }

  return {
    id,
    async appendTxt(record, signal) {
      throwIfAborted(signal);
      const quoted = quote(record.value);
      await update(record, signal, (current) =>
        current.some((d) => unquote(d) === record.value) ? undefined : [...current, quoted],
      );
    },

    async deleteTxt(record) {
      const signal = cleanupSignal(config.changeTimeoutMs + config.timeoutMs);
      await update(record, signal, (current) =>
        current.some((d) => unquote(d) === record.value)
          ? current.filter((d) => unquote(d) !== record.value)
          : undefined,
      );
    },

    async listZones(signal) {
      const names: string[] = [];
      let pageToken: string | undefined;
      for (let page = 0; page < 50; page++) {
        const body: { managedZones?: { dnsName: string }[]; nextPageToken?: string } = await http.requestJson(
          {
            method: "GET",
            url: apiUrl(config.baseUrl, `/projects/${encodeURIComponent(await project())}/managedZones`, {
              pageToken,
            }),
            headers: await auth("*", signal),
            zone: "*",
            action: "list managed zones",
            signal,
          },
        );
        names.push(...(body.managedZones ?? []).map((z) => z.dnsName.toLowerCase().replace(/\.$/, "")));
        pageToken = body.nextPageToken;
        if (!pageToken) break;
      }
      return names;
    },
  };
}

function quote(value: string): string {
  return `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/** `"abc"` → abc; `"ab" "c"` (a long value split into strings) → abc. */
function unquote(rrdata: string): string {
  const parts = rrdata.match(/"((?:[^"\\]|\\.)*)"/g);
  if (!parts) return rrdata;
  return parts.map((p) => p.slice(1, -1).replace(/\\(.)/g, "$1")).join("");
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}

export const googleCloudProviderDefinition = defineDnsProvider<GoogleCloudConfig>({
  id: "googlecloud",
  aliases: ["gcloud"],
  legoCode: "gcloud",
  legoEnv: {
    GCE_SERVICE_ACCOUNT: "serviceAccount",
    GCE_SERVICE_ACCOUNT_FILE: "serviceAccountFile",
    GCE_PROJECT: "project",
    GCE_ZONE_ID: "managedZone",
    GCE_TTL: "ttl",
  },
  description:
    "Google Cloud DNS with a service-account key (JSON content or file); the project defaults to the key's.",
  schema: googleCloudConfigSchema,
  secretFields: ["serviceAccount"],
  propagation: { timeoutMs: 180_000, intervalMs: 5_000 },
  create: (config, deps) => createGoogleCloudProvider(config, deps),
});
