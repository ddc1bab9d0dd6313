import { parseDuration, type ConfigFile } from "../config/schema.js";
import { checkWebhookUrl } from "./safe-post.js";
import { NOTIFICATION_EVENT_TYPES, type ChannelConfig, type NotificationsConfig } from "./types.js";

/**
 * Resolve the `notifications:` block: default channel names (`<type>-<n>`), filters and durations.
 * Problems are pushed to `issues` with their key path (unique names, webhook URLs the SSRF guard
 * would refuse); settings that load but deserve attention go to `warnings`.
 */
export function resolveNotifications(
  file: ConfigFile["notifications"],
  renewWhenRemaining: number,
  issues: { path: string; message: string }[],
  warnings: { path: string; message: string }[],
): NotificationsConfig {
  const seen = new Set<string>();
  const channels = file.channels.map((c, i): ChannelConfig => {
    const path = `notifications.channels.${i}`;
    const name = c.name ?? `${c.type}-${i + 1}`;
    if (seen.has(name)) issues.push({ path: `${path}.name`, message: `duplicate channel name "${name}"` });
    seen.add(name);
    if (c.type !== "email") {
      try {
        checkWebhookUrl(c.url, { allowPrivateAddresses: file.allowPrivateAddresses });
      } catch (e) {
        issues.push({ path: `${path}.url`, message: e instanceof Error ? e.message : String(e) });
      }
    }
    return { ...c, name, events: c.events ?? [...NOTIFICATION_EVENT_TYPES], names: c.names ?? ["*"] };
  });
  if (file.expiringWhenRemaining >= renewWhenRemaining)
    warnings.push({
      path: "notifications.expiringWhenRemaining",
      message:
        "is not below certificates.renewWhenRemaining: certificate.expiring may fire before renewal is even tried",
    });
  if (file.allowPrivateAddresses && file.channels.length > 0)
    warnings.push({
      path: "notifications.allowPrivateAddresses",
      message: "webhooks may reach loopback and private addresses over plain http",
    });
  return {
    channels,
    expiringWhenRemaining: file.expiringWhenRemaining,
    retryAttempts: file.retryAttempts,
    retryDelayMs: parseDuration(file.retryDelay),
    allowPrivateAddresses: file.allowPrivateAddresses,
  };
}
