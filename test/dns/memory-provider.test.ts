import { createMemoryDnsProvider } from "../../src/dns/memory-provider.js";
import { runDnsProviderConformance } from "./conformance.js";

runDnsProviderConformance("memory", async () => {
  const provider = createMemoryDnsProvider();
  return {
    provider,
    zone: "memory.test",
    lookup: async (name) => provider.values(name),
    cleanup: async () => {},
  };
});
