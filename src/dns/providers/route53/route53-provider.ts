import { randomInt } from "node:crypto";
import aws4 from "aws4";
import { z } from "zod";
import { sleep } from "../../../core/clock.js";
import { CertfleetError, UpstreamError, throwIfAborted } from "../../../core/errors.js";
import { defineDnsProvider } from "../../define-provider.js";
import type { DnsProvider, TxtRecord, ZoneLister } from "../../dns-provider.js";
import {
  cleanupSignal,
  createKeyedMutex,
  createProviderHttp,
  type ProviderResponse,
  requestTimeoutSchema,
  backOffAfterConflict,
} from "../../http.js";
import type { DnsProviderDeps } from "../../registry.js";
import { createAwsCredentialSource, isAwsCredentialError, type AwsCredentials } from "./aws-credentials.js";
import { children, escapeXml, parseXml, textAt, type XmlElement } from "./xml.js";

/**
 * AWS Route 53 (REST API 2013-04-01), every request signed with SigV4 (the `aws4` signer).
 *
 * Route 53 keeps one record set per name and type. Values are kept by read-modify-write, and the
 * write is a single atomic batch "DELETE the set exactly as read + CREATE the new set" rather than a
 * blind UPSERT: if another writer changed the set in between, the DELETE no longer matches, Route 53
 * rejects the whole batch (InvalidChangeBatch), and we read again — so a concurrent challenge's value
 * is never overwritten. An append waits until the change is INSYNC on Route 53's servers.
 */
export const route53ConfigSchema = z
  .strictObject({
    accessKeyId: z.string().min(1).optional().describe("AWS access key id (lego: AWS_ACCESS_KEY_ID)"),
    secretAccessKey: z
      .string()
      .min(1)
      .optional()
      .describe("AWS secret access key (lego: AWS_SECRET_ACCESS_KEY)"),
    sessionToken: z.string().min(1).optional().describe("Session token for temporary keys"),
    region: z
      .string()
      .min(1)
      .default("us-east-1")
      .describe("Used for STS and to pick the partition; Route 53 itself is global."),
    hostedZoneId: z
      .string()
      .min(1)
      .optional()
      .describe("Skip the zone lookup (e.g. for a split-horizon setup)."),
    profile: z
      .string()
      .min(1)
      .optional()
      .describe("Profile in the shared credentials file, when no keys or web identity are set."),
    sharedCredentialsFile: z
      .string()
      .min(1)
      .optional()
      .describe("Shared credentials file (default ~/.aws/credentials)"),
    roleArn: z
      .string()
      .min(1)
      .optional()
      .describe("Web identity: role to assume with the token in `webIdentityTokenFile`."),
    webIdentityTokenFile: z
      .string()
      .min(1)
      .optional()
      .describe("File holding the web identity token (lego: AWS_WEB_IDENTITY_TOKEN_FILE)"),
    roleSessionName: z
      .string()
      .min(2)
      .max(64)
      .default("certfleet")
      .describe("Session name for AssumeRoleWithWebIdentity"),
    ttl: z
      .number()
      .int()
      .min(1)
      .max(86_400)
      .optional()
      .describe("TTL of created TXT records in seconds (default: the challenge TTL)"),
    endpoint: z
      .url()
      .default("https://route53.amazonaws.com")
      .describe("Route 53 API endpoint (override for a proxy or a test double)"),
    stsEndpoint: z.url().optional().describe("STS endpoint for web identity; defaults to the regional one."),
    timeoutMs: requestTimeoutSchema,
    changePollIntervalMs: z
      .number()
      .int()
      .positive()
      .max(60_000)
      .default(4_000)
      .describe("How often to poll a pending change, in milliseconds"),
    changeTimeoutMs: z
      .number()
      .int()
      .positive()
      .max(900_000)
      .default(180_000)
      .describe("How long to wait for a change to be applied, in milliseconds"),
  })
  .refine((c) => (c.accessKeyId === undefined) === (c.secretAccessKey === undefined), {
    message: "accessKeyId and secretAccessKey go together",
  })
  .refine((c) => (c.roleArn === undefined) === (c.webIdentityTokenFile === undefined), {
    message: "roleArn and webIdentityTokenFile go together",
  });

export type Route53Config = z.infer<typeof route53ConfigSchema>;

const API = "/2013-04-01";
const XMLNS = "https://route53.amazonaws.com/doc/2013-04-01/";
/** Route 53 answers 400 (not 429) when throttling. */
const THROTTLED = ["Throttling", "PriorRequestNotComplete"];

interface RecordSet {
  ttl: number;
  values: string[];
}

export function createRoute53Provider(
  config: Route53Config,
  deps: DnsProviderDeps,
): DnsProvider & ZoneLister {
  const id = "route53";
  const http = createProviderHttp({
    provider: id,
    fetch: deps.fetch,
    logger: deps.logger,
    clock: deps.clock,
    timeoutMs: config.timeoutMs,
    isAuthFailure: isAwsCredentialError,
  });
  const credentials = createAwsCredentialSource(
    {
      ...config,
      stsEndpoint:
        config.stsEndpoint ??
        `https://sts.${config.region}.amazonaws.com${config.region.startsWith("cn-") ? ".cn" : ""}`,
    },
    http,
    deps.clock,
  );
  const signingRegion = config.region.startsWith("cn-")
    ? "cn-northwest-1"
    : config.region.startsWith("us-gov-")
      ? "us-gov-west-1"
      : "us-east-1";
  const endpoint = new URL(config.endpoint);
  const zoneIds = new Map<string, Promise<string>>();
  const exclusive = createKeyedMutex();

  /** One signed call. 400 comes back to the caller for Route 53's own error codes. */
  async function call(
    method: "GET" | "POST",
    path: string,
    zone: string,
    action: string,
    signal: AbortSignal,
    body?: string,
  ): Promise<ProviderResponse> {
    for (let attempt = 1; ; attempt++) {
      const creds = await credentials.get(zone, signal);
      const headers = sign(method, path, body, creds);
      const response = await http.request({
        method,
        url: new URL(path, endpoint),
        headers,
        body,
        accept: [400],
        zone,
        action,
        signal,
      });
      if (response.status !== 400) return response;
      const code = errorCode(response.text);
      if (THROTTLED.includes(code) && attempt < 4) {
        await sleep(250 * 2 ** attempt + randomInt(0, 250), signal).catch(() => throwIfAborted(signal));
        continue;
      }
      return response;
    }
  }

  function sign(
    method: string,
    path: string,
    body: string | undefined,
    creds: AwsCredentials,
  ): Record<string, string> {
    const request = {
      host: endpoint.host,
      path: endpoint.pathname.replace(/\/$/, "") + path,
      method,
      service: "route53",
      region: signingRegion,
      headers: body !== undefined ? { "Content-Type": "application/xml" } : {},
      body,
    };
    const signed = aws4.sign(request, creds);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(signed.headers ?? {})) {
      // fetch sets these itself (to the same values that were signed).
      if (k.toLowerCase() !== "host" && k.toLowerCase() !== "content-length") headers[k] = String(v);
    }
    return headers;
  }

  function fail(response: ProviderResponse, zone: string, action: string): never {
    const code = errorCode(response.text);
    throw new UpstreamError(
      "dns_provider_error",
      `route53: ${action} for zone ${zone} was refused (${code || `HTTP ${response.status}`})`,
      {
        retryable: THROTTLED.includes(code),
        internal: response.text.slice(0, 2048),
        details: { provider: id, zone, status: response.status, code },
      },
    );
  }

  function hostedZone(zone: string, signal: AbortSignal): Promise<string> {
    if (config.hostedZoneId !== undefined)
      return Promise.resolve(config.hostedZoneId.replace(/^\/hostedzone\//, ""));
    let pending = zoneIds.get(zone);
    if (!pending) {
      pending = (async () => {
        const action = "look up the hosted zone";
        const response = await call(
          "GET",
          `${API}/hostedzonesbyname?${new URLSearchParams({ dnsname: zone, maxitems: "10" })}`,
          zone,
          action,
          signal,
        );
        if (response.status === 400) fail(response, zone, action);
        const doc = xml(response.text, zone);
        const candidates = children(doc && child1(doc, "HostedZones"), "HostedZone").filter(
          (z) => textAt(z, "Name")?.toLowerCase() === `${zone}.`,
        );
        const match = candidates.find((z) => textAt(z, "Config", "PrivateZone") !== "true") ?? candidates[0];
        const hzId = match && textAt(match, "Id");
        if (!hzId) {
          throw new UpstreamError(
            "dns_zone_not_found",
            `route53: no hosted zone for ${zone} in this account`,
            {
              retryable: false,
              details: { provider: id, zone },
            },
          );
        }
        return hzId.replace(/^\/hostedzone\//, "");
      })();
      zoneIds.set(zone, pending);
      pending.catch(() => zoneIds.delete(zone));
    }
    return pending;
  }

  async function readSet(hz: string, record: TxtRecord, signal: AbortSignal): Promise<RecordSet | undefined> {
    const action = "read the TXT record set";
    const query = new URLSearchParams({ name: `${record.name}.`, type: "TXT", maxitems: "1" });
    const response = await call("GET", `${API}/hostedzone/${hz}/rrset?${query}`, record.zone, action, signal);
    if (response.status === 400) fail(response, record.zone, action);
    const set = children(
      child1(xml(response.text, record.zone), "ResourceRecordSets"),
      "ResourceRecordSet",
    )[0];
    if (
      !set ||
      textAt(set, "Type") !== "TXT" ||
      unescapeName(textAt(set, "Name") ?? "") !== `${record.name}.`
    )
      return undefined;
    return {
      ttl: Number(textAt(set, "TTL") ?? record.ttl),
      values: children(child1(set, "ResourceRecords"), "ResourceRecord").map((r) => textAt(r, "Value") ?? ""),
    };
  }

  async function update(
    record: TxtRecord,
    signal: AbortSignal,
    wait: boolean,
    next: (values: string[]) => string[] | undefined,
  ): Promise<void> {
    const hz = await hostedZone(record.zone, signal);
    await exclusive(record.name, async () => {
      for (let attempt = 1; ; attempt++) {
        throwIfAborted(signal);
        const current = await readSet(hz, record, signal);
        const wanted = next(current?.values ?? []);
        if (wanted === undefined) return;
        const changes: string[] = [];
        if (current) changes.push(change("DELETE", record.name, current));
        if (wanted.length > 0)
          changes.push(change("CREATE", record.name, { ttl: config.ttl ?? record.ttl, values: wanted }));
        const body =
          `<?xml version="1.0" encoding="UTF-8"?>\n<ChangeResourceRecordSetsRequest xmlns="${XMLNS}">` +
          `<ChangeBatch><Comment>certfleet ACME challenge</Comment><Changes>${changes.join("")}</Changes></ChangeBatch>` +
          `</ChangeResourceRecordSetsRequest>`;
        const action = "change the TXT record set";
        const response = await call(
          "POST",
          `${API}/hostedzone/${hz}/rrset/`,
          record.zone,
          action,
          signal,
          body,
        );
        if (response.status === 400) {
          if (errorCode(response.text) !== "InvalidChangeBatch") fail(response, record.zone, action);
          await backOffAfterConflict(
            attempt,
            { provider: id, zone: record.zone, name: record.name, internal: response.text.slice(0, 2048) },
            signal,
          );
          continue;
        }
        const changeId = textAt(xml(response.text, record.zone), "ChangeInfo", "Id")?.replace(
          /^\/change\//,
          "",
        );
        if (wait && changeId) await waitInSync(changeId, record.zone, signal);
        return;
      }
    });
  }

  async function waitInSync(changeId: string, zone: string, signal: AbortSignal): Promise<void> {
    const deadline = deps.clock.now().getTime() + config.changeTimeoutMs;
    for (;;) {
      const action = "check the change status";
      const response = await call(
        "GET",
        `${API}/change/${encodeURIComponent(changeId)}`,
        zone,
        action,
        signal,
      );
      if (response.status === 400) fail(response, zone, action);
      const status = textAt(xml(response.text, zone), "ChangeInfo", "Status");
      if (status === "INSYNC") return;
      if (deps.clock.now().getTime() > deadline) {
        throw new UpstreamError(
          "dns_provider_timeout",
          `route53: change ${changeId} in zone ${zone} is still ${status}`,
          {
            details: { provider: id, zone, change: changeId },
          },
        );
      }
      await sleep(config.changePollIntervalMs, signal).catch(() => {
        throw new CertfleetError("aborted", "operation was cancelled", { status: 499, cause: signal.reason });
      });
    }
  }

  function xml(text: string, zone: string): XmlElement {
    try {
      return parseXml(text);
    } catch (e) {
      throw new UpstreamError("dns_provider_error", `route53: unreadable XML response (zone ${zone})`, {
        cause: e,
        internal: text.slice(0, 512),
        details: { provider: id, zone },
      });
    }
  }

  return {
    id,
    async appendTxt(record, signal) {
      throwIfAborted(signal);
      const quoted = quote(record.value);
      await update(record, signal, true, (values) =>
        values.some((v) => unquote(v) === record.value) ? undefined : [...values, quoted],
      );
    },

    async deleteTxt(record) {
      const signal = cleanupSignal(config.timeoutMs * 4);
      await update(record, signal, false, (values) =>
        values.some((v) => unquote(v) === record.value)
          ? values.filter((v) => unquote(v) !== record.value)
          : undefined,
      );
    },

    async listZones(signal) {
      const names: string[] = [];
      let marker: string | undefined;
      for (let page = 0; page < 50; page++) {
        const query = new URLSearchParams({ maxitems: "100", ...(marker ? { marker } : {}) });
        const response = await call("GET", `${API}/hostedzone?${query}`, "*", "list hosted zones", signal);
        if (response.status === 400) fail(response, "*", "list hosted zones");
        const doc = xml(response.text, "*");
        for (const z of children(child1(doc, "HostedZones"), "HostedZone")) {
          if (textAt(z, "Config", "PrivateZone") !== "true")
            names.push(unescapeName(textAt(z, "Name") ?? "").replace(/\.$/, ""));
        }
        marker = textAt(doc, "IsTruncated") === "true" ? textAt(doc, "NextMarker") : undefined;
        if (!marker) break;
      }
      return names;
    },
  };
}

function change(action: "CREATE" | "DELETE", name: string, set: RecordSet): string {
  const records = set.values
    .map((v) => `<ResourceRecord><Value>${escapeXml(v)}</Value></ResourceRecord>`)
    .join("");
  return (
    `<Change><Action>${action}</Action><ResourceRecordSet><Name>${escapeXml(name)}.</Name><Type>TXT</Type>` +
    `<TTL>${set.ttl}</TTL><ResourceRecords>${records}</ResourceRecords></ResourceRecordSet></Change>`
  );
}

function child1(el: XmlElement | undefined, name: string): XmlElement | undefined {
  return el?.children.find((c) => c.name === name);
}

/** The Route 53 error code from `<ErrorResponse><Error><Code>` or an `<InvalidChangeBatch>` document. */
function errorCode(text: string): string {
  try {
    const doc = parseXml(text);
    if (doc.name === "InvalidChangeBatch") return "InvalidChangeBatch";
    return textAt(doc, "Error", "Code") ?? "";
  } catch {
    return "";
  }
}

/** Route 53 returns names with octal escapes for some characters (`\052` for `*`). */
function unescapeName(name: string): string {
  return name.toLowerCase().replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

function quote(value: string): string {
  return `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

function unquote(value: string): string {
  const parts = value.match(/"((?:[^"\\]|\\.)*)"/g);
  if (!parts) return value;
  return parts.map((p) => p.slice(1, -1).replace(/\\(.)/g, "$1")).join("");
}

export const route53ProviderDefinition = defineDnsProvider<Route53Config>({
  id: "route53",
  aliases: ["aws"],
  legoCode: "route53",
  legoEnv: {
    AWS_ACCESS_KEY_ID: "accessKeyId",
    AWS_SECRET_ACCESS_KEY: "secretAccessKey",
    AWS_SESSION_TOKEN: "sessionToken",
    AWS_REGION: "region",
    AWS_HOSTED_ZONE_ID: "hostedZoneId",
    AWS_PROFILE: "profile",
    AWS_SHARED_CREDENTIALS_FILE: "sharedCredentialsFile",
    AWS_ROLE_ARN: "roleArn",
    AWS_WEB_IDENTITY_TOKEN_FILE: "webIdentityTokenFile",
    AWS_ROLE_SESSION_NAME: "roleSessionName",
    AWS_TTL: "ttl",
  },
  description:
    "AWS Route 53 (SigV4): static keys, a shared-credentials profile, or web identity (role ARN + token file).",
  schema: route53ConfigSchema,
  secretFields: ["secretAccessKey", "sessionToken"],
  propagation: { timeoutMs: 180_000, intervalMs: 5_000 },
  create: (config, deps) => createRoute53Provider(config, deps),
});
