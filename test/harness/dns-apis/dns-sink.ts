import type { TxtChangeHook } from "./loopback-api.js";

/**
 * Makes a loopback DNS-API double also serve its TXT values over real DNS, for end-to-end issuance:
 * pass the result as `onChange` and every change is mirrored into a DNS server that Pebble resolves
 * through (pebble-challtestsrv here: clear the name, then set each current value). Changes to one name
 * are applied in order, so a quick add-then-delete cannot land reversed.
 */
export interface TxtServer {
  setTxt(host: string, value: string): Promise<void>;
  clearTxt(host: string): Promise<void>;
}

export function mirrorTxtInto(server: TxtServer): TxtChangeHook {
  const tails = new Map<string, Promise<void>>();
  return (name, values) => {
    const apply = async () => {
      await server.clearTxt(name);
      for (const v of values) await server.setTxt(name, v);
    };
    const next = (tails.get(name) ?? Promise.resolve()).then(apply, apply);
    tails.set(name, next);
    return next;
  };
}
