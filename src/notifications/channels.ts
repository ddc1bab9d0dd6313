import { createHmac } from "node:crypto";
import { createTransport } from "nodemailer";
import { UpstreamError } from "../core/errors.js";
import type { Clock } from "../core/clock.js";
import { safePostJson } from "./safe-post.js";
import type { ChannelConfig, ChannelSender, NotificationEvent } from "./types.js";

/**
 * `X-Certfleet-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` — the receiver
 * recomputes it over the raw body, compares in constant time and rejects old `t` (replay).
 */
export function signWebhookBody(secret: string, body: string, unixSeconds: number): string {
  const mac = createHmac("sha256", secret).update(`${unixSeconds}.${body}`).digest("hex");
  return `t=${unixSeconds},v1=${mac}`;
}

/** One line a human reads first (Slack text, email subject). */
export function summarize(event: NotificationEvent): string {
  const name = event.certificate.names[0] ?? event.certificate.id;
  const more = event.certificate.names.length > 1 ? ` (+${event.certificate.names.length - 1})` : "";
  switch (event.type) {
    case "certificate.expiring":
      return `Certificate for ${name}${more} expires ${event.certificate.notAfter} and has not been renewed`;
    case "certificate.renewal_failed":
      return `Renewal failed for ${name}${more}: ${String(event.detail.code)}: ${String(event.detail.message)}`;
    case "certificate.revoked":
      return `Certificate for ${name}${more} (serial ${event.certificate.serial}) was revoked: ${String(event.detail.reason)}`;
    case "certificate.recovered":
      return `Certificate for ${name}${more} renewed again after failures (valid until ${event.certificate.notAfter})`;
  }
}

function describe(event: NotificationEvent): string {
  const c = event.certificate;
  return [
    summarize(event),
    "",
    `event:       ${event.type}`,
    `at:          ${event.at}`,
    `certificate: ${c.id}`,
    `names:       ${c.names.join(", ")}`,
    `issuer:      ${c.issuerId}`,
    ...(c.serial ? [`serial:      ${c.serial}`] : []),
    ...(c.notAfter ? [`not after:   ${c.notAfter}`] : []),
    ...Object.entries(event.detail).map(([k, v]) => `${k}: ${String(v)}`),
  ].join("\n");
}

export interface SenderDeps {
  clock: Clock;
  allowPrivateAddresses: boolean;
}

/** Build the sender for one configured channel. */
export function createChannelSender(channel: ChannelConfig, deps: SenderDeps): ChannelSender {
  switch (channel.type) {
    case "webhook":
      return {
        async send(event, signal) {
          const body = JSON.stringify(event);
          const t = Math.floor(deps.clock.now().getTime() / 1000);
          await safePostJson(
            channel.url,
            body,
            {
              "x-certfleet-signature": signWebhookBody(channel.secret, body, t),
              "x-certfleet-event": event.type,
            },
            { allowPrivateAddresses: deps.allowPrivateAddresses },
            signal,
          );
        },
      };
    case "slack":
      return {
        async send(event, signal) {
          // Slack and Teams (incoming webhooks / workflows) both render a bare {"text": …}
          const body = JSON.stringify({ text: describe(event) });
          await safePostJson(
            channel.url,
            body,
            {},
            { allowPrivateAddresses: deps.allowPrivateAddresses },
            signal,
          );
        },
      };
    case "email": {
      const transport = createTransport({
        host: channel.smtp.host,
        port: channel.smtp.port,
        secure: channel.smtp.secure,
        requireTLS: channel.smtp.requireTls && !channel.smtp.secure,
        ...(channel.smtp.user
          ? { auth: { user: channel.smtp.user, pass: channel.smtp.password ?? "" } }
          : {}),
        connectionTimeout: 10_000,
        greetingTimeout: 10_000,
        socketTimeout: 20_000,
      });
      return {
        async send(event, signal) {
          signal.throwIfAborted();
          try {
            await transport.sendMail({
              from: channel.from,
              to: channel.to,
              subject: `[certfleet] ${summarize(event)}`,
              text: describe(event),
              headers: { "X-Certfleet-Event": event.type },
            });
          } catch (e) {
            const code = (e as { responseCode?: number }).responseCode;
            throw new UpstreamError(
              "notification_delivery_failed",
              `SMTP delivery failed: ${e instanceof Error ? e.message : String(e)}`,
              // 5xx SMTP replies are permanent; connection problems and 4xx are worth retrying
              { retryable: code === undefined || code < 500 },
            );
          }
        },
      };
    }
  }
}
