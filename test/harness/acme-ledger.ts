import type { Exchange } from "./reset-proxy.js";

/**
 * What a CA did, read from the exchanges a proxy in front of Pebble saw (Pebble's URL shapes:
 * `/order-plz`, `/my-order/<id>`, `/finalize-order/<id>`, `/certZ/<serial>`). An order Pebble accepted
 * a finalize for is an order it issues a certificate for, whether or not any client ever downloads it.
 */
export interface AcmeLedger {
  /** Order id → the names it was created for and when. */
  orders: Map<string, { names: string[]; createdAt: number }>;
  /** Order id → when Pebble first accepted its finalize (the CA issues its certificate then). */
  finalized: Map<string, number>;
  /** Order id → its certificate's serial, from any order object the CA sent with a `certificate` URL. */
  certificateOf: Map<string, string>;
  /** Serials whose certificate a client received in full. */
  downloaded: Set<string>;
  /** Finalized orders whose certificate no client had received by `at` (ms since the epoch). */
  undeliveredAt(at: number): string[];
  /** Orders created for `name`, oldest first. */
  ordersFor(name: string): string[];
}

/** Serial numbers as hex without separators or leading zeros, lower case. */
export function normalizeSerial(serial: string): string {
  return (
    serial
      .toLowerCase()
      .replace(/[^0-9a-f]/g, "")
      .replace(/^0+/, "") || "0"
  );
}

function jwsPayload(body: Buffer): unknown {
  try {
    const jws = JSON.parse(body.toString("utf8")) as { payload?: string };
    if (!jws.payload) return undefined;
    return JSON.parse(Buffer.from(jws.payload, "base64url").toString("utf8"));
  } catch {
    return undefined;
  }
}

function json(body: Buffer | undefined): Record<string, unknown> | undefined {
  if (!body) return undefined;
  try {
    return JSON.parse(body.toString("utf8")) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

const tail = (urlOrPath: string) => urlOrPath.split("?")[0]!.split("/").pop()!;

export function readLedger(exchanges: readonly Exchange[]): AcmeLedger {
  const orders = new Map<string, { names: string[]; createdAt: number }>();
  const finalized = new Map<string, number>();
  const certificateOf = new Map<string, string>();
  const downloaded = new Map<string, number>();
  for (const x of exchanges) {
    if (x.status === undefined) continue;
    if (x.method === "POST" && x.path.startsWith("/order-plz") && x.status === 201 && x.location) {
      const payload = jwsPayload(x.requestBody) as { identifiers?: { value: string }[] } | undefined;
      orders.set(tail(x.location), {
        names: (payload?.identifiers ?? []).map((i) => i.value),
        createdAt: x.startedAt,
      });
    }
    if (x.path.startsWith("/finalize-order/") && x.status === 200) {
      const id = tail(x.path);
      if (!finalized.has(id)) finalized.set(id, x.startedAt);
    }
    if (x.path.startsWith("/finalize-order/") || x.path.startsWith("/my-order/")) {
      const certificate = json(x.responseBody)?.certificate;
      if (typeof certificate === "string")
        certificateOf.set(tail(x.path), normalizeSerial(tail(certificate)));
    }
    if (x.path.startsWith("/certZ/") && x.status === 200 && x.answeredAt !== undefined) {
      const serial = normalizeSerial(tail(x.path));
      downloaded.set(serial, Math.min(downloaded.get(serial) ?? Infinity, x.answeredAt));
    }
  }
  return {
    orders,
    finalized,
    certificateOf,
    downloaded: new Set(downloaded.keys()),
    undeliveredAt(at) {
      return [...finalized]
        .filter(([, finalizedAt]) => finalizedAt < at)
        .filter(([id]) => {
          const serial = certificateOf.get(id);
          const deliveredAt = serial === undefined ? undefined : downloaded.get(serial);
          return deliveredAt === undefined || deliveredAt >= at;
        })
        .map(([id]) => id);
    },
    ordersFor(name) {
      return [...orders]
        .filter(([, o]) => o.names.includes(name))
        .sort((a, b) => a[1].createdAt - b[1].createdAt)
        .map(([id]) => id);
    },
  };
}

/**
 * Everything that contradicts "every certificate the CA issued is the one served, and no name was
 * ordered again once an order for it was finalized", as readable lines (empty: nothing lost).
 * `served` maps each name to the serial certfleet serves for it.
 */
export function lostCertificates(ledger: AcmeLedger, served: ReadonlyMap<string, string>): string[] {
  const problems: string[] = [];
  for (const [name, servedSerial] of served) {
    const orders = ledger.ordersFor(name);
    const finalized = orders.filter((id) => ledger.finalized.has(id));
    if (finalized.length !== 1) {
      problems.push(`${name}: ${finalized.length} finalized orders (${finalized.join(", ")})`);
      continue;
    }
    const [order] = finalized as [string];
    const finalizedAt = ledger.finalized.get(order)!;
    const later = orders.filter((id) => ledger.orders.get(id)!.createdAt > finalizedAt);
    if (later.length > 0) problems.push(`${name}: ordered again after its order was finalized`);
    const issued = ledger.certificateOf.get(order);
    if (issued === undefined)
      problems.push(`${name}: the certificate of finalized order ${order} was never fetched`);
    else if (issued !== normalizeSerial(servedSerial))
      problems.push(`${name}: serves ${servedSerial}, the CA issued ${issued} for order ${order}`);
  }
  return problems;
}
