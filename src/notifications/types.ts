/** The events certfleet notifies about (docs/notifications.md). */
export const NOTIFICATION_EVENT_TYPES = [
  "certificate.expiring",
  "certificate.renewal_failed",
  "certificate.revoked",
  "certificate.recovered",
] as const;
export type NotificationEventType = (typeof NOTIFICATION_EVENT_TYPES)[number];

/** The JSON body a webhook receives (and what the other channels render as text). */
export interface NotificationEvent {
  type: NotificationEventType;
  /** ISO time the event was raised. */
  at: string;
  certificate: {
    id: string;
    names: string[];
    issuerId: string;
    serial: string | null;
    notAfter: string | null;
  };
  /** expiring: seconds left; renewal_failed: error code + message; revoked: reason. */
  detail: Record<string, unknown>;
}

export interface SmtpSettings {
  host: string;
  port: number;
  secure: boolean;
  requireTls: boolean;
  user?: string;
  password?: string;
}

interface ChannelCommon {
  /** Stable channel name (audit log, last-notified state). */
  name: string;
  /** Event types this channel receives. */
  events: NotificationEventType[];
  /** Name patterns (`*`, `example.com`, `*.example.com`, `.example.com`); any name matching one is enough. */
  names: string[];
}

export type ChannelConfig =
  | (ChannelCommon & { type: "webhook"; url: string; secret: string })
  | (ChannelCommon & { type: "slack"; url: string })
  | (ChannelCommon & { type: "email"; smtp: SmtpSettings; from: string; to: string[] });

export interface NotificationsConfig {
  channels: ChannelConfig[];
  expiringWhenRemaining: number;
  retryAttempts: number;
  retryDelayMs: number;
  allowPrivateAddresses: boolean;
}

/**
 * Delivers one event to one destination. Throws on failure (the notifier retries); resolves once the
 * receiver accepted it. Honors `signal` (timeouts, shutdown).
 */
export interface ChannelSender {
  send(event: NotificationEvent, signal: AbortSignal): Promise<void>;
}
