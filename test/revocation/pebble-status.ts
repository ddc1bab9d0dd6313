import { X509Certificate } from "node:crypto";
import { Agent, request } from "undici";
import type { PebbleServer } from "../harness/pebble.js";

/**
 * Pebble's management API view of a certificate: GET /cert-status-by-serial/<serial> answers
 * `{"Status": "Valid" | "Revoked", "Reason": n, ...}` for a certificate Pebble issued.
 */
export async function pebbleCertStatus(
  pebble: PebbleServer,
  certPem: string,
): Promise<{ status: string; reason?: number }> {
  const serial = new X509Certificate(certPem).serialNumber.toLowerCase();
  const agent = new Agent({ connect: { ca: pebble.caBundlePem } });
  try {
    const res = await request(`${pebble.managementUrl}/cert-status-by-serial/${serial}`, {
      dispatcher: agent,
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`pebble cert status ${serial}: ${res.statusCode} ${text}`);
    const body = JSON.parse(text) as { Status: string; Reason?: number };
    return { status: body.Status, ...(body.Reason !== undefined ? { reason: body.Reason } : {}) };
  } finally {
    await agent.close();
  }
}
