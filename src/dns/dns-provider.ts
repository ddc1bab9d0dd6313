/**
 * The minimal DNS provider contract (after libdns): add one TXT value, remove exactly that value.
 *
 * - `appendTxt` must not touch other values at the same name: `example.com` and `*.example.com` are
 *   validated through the same `_acme-challenge.example.com` name at the same time.
 * - `deleteTxt` removes only the value it is given; a value that is already gone is not an error. It
 *   takes no signal: cleanup must always run.
 * - Names are absolute FQDNs without the trailing dot, lowercase. `zone` is the zone apex the record
 *   lives in (found by SOA lookup or given by config).
 * - Implementations are safe for concurrent use and throw UpstreamError (code `dns_provider_error`,
 *   `dns_provider_auth`, …) naming the provider and zone.
 */
export interface DnsProvider {
  /** Provider id from the registry, e.g. "cloudflare", "rfc2136". */
  readonly id: string;
  appendTxt(record: TxtRecord, signal: AbortSignal): Promise<void>;
  deleteTxt(record: TxtRecord): Promise<void>;
}

export interface TxtRecord {
  zone: string;
  name: string;
  value: string;
  ttl: number;
}

/** Optional: providers that can list the zones their credentials manage. */
export interface ZoneLister {
  listZones(signal: AbortSignal): Promise<string[]>;
}

export function canListZones(p: DnsProvider): p is DnsProvider & ZoneLister {
  return typeof (p as Partial<ZoneLister>).listZones === "function";
}
