import type { DnsProviderDefinition } from "./registry.js";

/**
 * Type-check a provider definition against its own config type, then widen it for the registry list.
 * A zod schema is covariant in its output, so `DnsProviderDefinition<MyConfig>` is not assignable to the
 * list's `DnsProviderDefinition<never>` without this one audited cast; the registry only ever calls
 * `create` with what `schema` produced, which keeps the pair consistent.
 */
export function defineDnsProvider<C>(definition: DnsProviderDefinition<C>): DnsProviderDefinition<never> {
  return definition as unknown as DnsProviderDefinition<never>;
}
