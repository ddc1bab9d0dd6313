import { randomInt } from "node:crypto";
import * as dnsPacket from "dns-packet";
import { z } from "zod";
import type { Clock } from "../../../core/clock.js";
import { CertfleetError, UpstreamError, throwIfAborted } from "../../../core/errors.js";
import { defineDnsProvider } from "../../define-provider.js";
import type { DnsProvider, TxtRecord } from "../../dns-provider.js";
import { exchange, formatEndpoint, parseEndpoint, type DnsEndpoint } from "../../dns-transport.js";
import { listRecords } from "../../dns-wire.js";
import {
  DEFAULT_FUDGE_SECONDS,
  TSIG_ERROR,
  parseTsigAlgorithm,
  signMessage,
  verifyMessage,
  type TsigKey,
} from "../../tsig.js";

/**
 * RFC 2136 dynamic updates signed with TSIG (RFC 8945), for BIND, Knot, PowerDNS and friends.
 * Adding a value is "class IN TXT value"; removing exactly one value is "class NONE TXT value, TTL 0"
 * (RFC 2136 §2.5.4), so other values at the same name are never touched. The server's reply must carry
 * a valid TSIG too: an unsigned or forged success is not believed.
 */
export const rfc2136ConfigSchema = z.strictObject({
  /** The primary server accepting updates: "host:port", "[v6]:port" or "host" (port 53). */
  nameserver: z.string().refine(
    (s) => {
      try {
        parseEndpoint(s);
        return true;
      } catch {
        return false;
      }
    },
    { message: "expected host, host:port or [ipv6]:port" },
  ),
  tsigKeyName: z.string().min(1),
  tsigAlgorithm: z
    .string()
    .default("hmac-sha256")
    .refine((s) => parseTsigAlgorithm(s) !== undefined, {
      message: "expected hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384 or hmac-sha512",
    }),
  /** Base64 shared secret, as `tsig-keygen` prints it. */
  tsigSecret: z.base64().min(1),
  /** Zone to update; defaults to the zone found by SOA lookup for each record. */
  zone: z.string().min(1).optional(),
  /** Overrides the TTL the caller asks for (lego: RFC2136_TTL). */
  ttl: z.number().int().min(0).max(86_400).optional(),
  transport: z.enum(["tcp", "udp"]).default("tcp"),
  timeoutMs: z.number().int().positive().max(120_000).default(10_000),
});

export type Rfc2136Config = z.infer<typeof rfc2136ConfigSchema>;

const OPCODE_UPDATE = 5 << 11;
const CLASS_NONE = 254;
const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  NOTAUTH: 9,
  NOTZONE: 10,
};
const RCODE_NAMES: Record<number, string> = {
  1: "FORMERR",
  2: "SERVFAIL",
  3: "NXDOMAIN",
  4: "NOTIMP",
  5: "REFUSED",
  6: "YXDOMAIN",
  7: "YXRRSET",
  8: "NXRRSET",
  9: "NOTAUTH",
  10: "NOTZONE",
};
const TSIG_ERROR_NAMES: Record<number, string> = {
  16: "BADSIG",
  17: "BADKEY",
  18: "BADTIME",
  22: "BADTRUNC",
};

/** TXT character-strings hold at most 255 bytes each; longer values are split (RFC 1035 §3.3.14). */
function txtStrings(value: string): Buffer[] {
  const bytes = Buffer.from(value, "utf8");
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 255) out.push(bytes.subarray(i, i + 255));
  return out.length > 0 ? out : [Buffer.alloc(0)];
}

export function buildUpdateMessage(
  zone: string,
  record: TxtRecord,
  op: "add" | "delete",
  id: number,
): Buffer {
  const message = dnsPacket.encode({
    id,
    type: "query",
    flags: OPCODE_UPDATE,
    questions: [{ name: zone, type: "SOA", class: "IN" }], // zone section
    authorities: [
      // update section; dns-packet has no class NONE, so the class is patched below
      {
        name: record.name,
        type: "TXT",
        class: "IN",
        ttl: op === "add" ? record.ttl : 0,
        data: txtStrings(record.value),
      },
    ],
  });
  if (op === "delete") {
    const rr = listRecords(message).find((r) => r.section === "authority")!;
    message.writeUInt16BE(CLASS_NONE, rr.typeOffset + 2);
  }
  return message;
}

export function createRfc2136Provider(config: Rfc2136Config, deps: { clock: Clock }): DnsProvider {
  const endpoint: DnsEndpoint = parseEndpoint(config.nameserver);
  const key: TsigKey = {
    name: config.tsigKeyName.replace(/\.$/, "").toLowerCase(),
    algorithm: parseTsigAlgorithm(config.tsigAlgorithm)!,
    secret: Buffer.from(config.tsigSecret, "base64"),
  };
  const server = formatEndpoint(endpoint);

  async function update(record: TxtRecord, op: "add" | "delete", signal: AbortSignal): Promise<void> {
    const zone = (config.zone ?? record.zone).replace(/\.$/, "").toLowerCase();
    const details = { provider: "rfc2136", zone, nameserver: server };
    const unsigned = buildUpdateMessage(
      zone,
      { ...record, ttl: config.ttl ?? record.ttl },
      op,
      randomInt(0, 0x10000),
    );
    const { signed, mac } = signMessage(unsigned, key, {
      timeSigned: Math.floor(deps.clock.now().getTime() / 1000),
      fudge: DEFAULT_FUDGE_SECONDS,
    });

    let reply: Buffer;
    try {
      reply = await exchange(endpoint, signed, {
        transport: config.transport,
        timeoutMs: config.timeoutMs,
        signal,
      });
      if (config.transport === "udp" && (reply.readUInt16BE(2) & 0x0200) !== 0) {
        reply = await exchange(endpoint, signed, { transport: "tcp", timeoutMs: config.timeoutMs, signal });
      }
    } catch (e) {
      if (e instanceof CertfleetError) throw e;
      throw new UpstreamError(
        "dns_provider_error",
        `rfc2136: cannot reach ${server} to update zone ${zone}`,
        {
          cause: e,
          internal: e instanceof Error ? e.message : String(e),
          details,
        },
      );
    }

    const rcode = reply.readUInt16BE(2) & 0x000f;
    let verification: ReturnType<typeof verifyMessage>;
    try {
      verification = verifyMessage(reply, key, {
        now: Math.floor(deps.clock.now().getTime() / 1000),
        requestMac: mac,
      });
    } catch (e) {
      throw new UpstreamError(
        "dns_provider_error",
        `rfc2136: malformed reply from ${server} for zone ${zone}`,
        {
          cause: e,
          details,
        },
      );
    }
    const tsigError = verification.tsig?.error ?? 0;

    if (tsigError !== TSIG_ERROR.NOERROR || (rcode === RCODE.NOTAUTH && verification.status === "unsigned")) {
      const reason = TSIG_ERROR_NAMES[tsigError] ?? "NOTAUTH";
      throw new UpstreamError(
        "dns_provider_auth",
        `rfc2136: ${server} rejected the TSIG key "${key.name}" for zone ${zone} (${reason})`,
        { details: { ...details, rcode: RCODE_NAMES[rcode] ?? rcode, tsigError: reason }, retryable: false },
      );
    }
    if (verification.status !== "ok") {
      throw new UpstreamError(
        "dns_provider_auth",
        `rfc2136: the reply from ${server} for zone ${zone} is not signed with our key (${verification.status})`,
        { details: { ...details, tsig: verification.status }, retryable: false },
      );
    }
    if (rcode !== RCODE.NOERROR) {
      const name = RCODE_NAMES[rcode] ?? `RCODE_${rcode}`;
      throw new UpstreamError(
        "dns_update_refused",
        `rfc2136: ${server} refused the update to zone ${zone} (${name})`,
        {
          details: { ...details, rcode: name },
          // SERVFAIL may be transient; REFUSED, NOTZONE, NOTAUTH, FORMERR are configuration problems.
          retryable: rcode === RCODE.SERVFAIL,
        },
      );
    }
  }

  return {
    id: "rfc2136",
    async appendTxt(record, signal) {
      throwIfAborted(signal);
      await update(record, "add", signal);
    },
    async deleteTxt(record) {
      await update(record, "delete", new AbortController().signal);
    },
  };
}

export const rfc2136ProviderDefinition = defineDnsProvider<Rfc2136Config>({
  id: "rfc2136",
  aliases: ["nsupdate", "bind"],
  legoCode: "rfc2136",
  legoEnv: {
    RFC2136_NAMESERVER: "nameserver",
    RFC2136_TSIG_KEY: "tsigKeyName",
    RFC2136_TSIG_SECRET: "tsigSecret",
    RFC2136_TSIG_ALGORITHM: "tsigAlgorithm",
    RFC2136_TTL: "ttl",
  },
  description: "RFC 2136 dynamic DNS updates signed with TSIG (BIND, Knot, PowerDNS, Windows DNS with TSIG).",
  schema: rfc2136ConfigSchema,
  secretFields: ["tsigSecret"],
  propagation: { timeoutMs: 60_000, intervalMs: 2_000 },
  create: (config, deps) => createRfc2136Provider(config, deps),
});
