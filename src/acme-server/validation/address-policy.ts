import { BlockList, isIPv4 } from "node:net";

/**
 * Which addresses challenge validation may connect to (SSRF defence). Never: unspecified, multicast,
 * broadcast and reserved ranges. Only with `allowPrivate`: loopback, RFC 1918 private, CGNAT,
 * link-local, unique-local and documentation/benchmark ranges — the places an attacker would aim a
 * validation at to reach internal services.
 */
const never = new BlockList();
never.addSubnet("0.0.0.0", 8, "ipv4");
never.addSubnet("224.0.0.0", 4, "ipv4");
never.addSubnet("240.0.0.0", 4, "ipv4");
never.addAddress("::", "ipv6");
never.addSubnet("ff00::", 8, "ipv6");

const internal = new BlockList();
internal.addSubnet("10.0.0.0", 8, "ipv4");
internal.addSubnet("100.64.0.0", 10, "ipv4");
internal.addSubnet("127.0.0.0", 8, "ipv4");
internal.addSubnet("169.254.0.0", 16, "ipv4");
internal.addSubnet("172.16.0.0", 12, "ipv4");
internal.addSubnet("192.0.0.0", 24, "ipv4");
internal.addSubnet("192.0.2.0", 24, "ipv4");
internal.addSubnet("192.168.0.0", 16, "ipv4");
internal.addSubnet("198.18.0.0", 15, "ipv4");
internal.addSubnet("198.51.100.0", 24, "ipv4");
internal.addSubnet("203.0.113.0", 24, "ipv4");
internal.addAddress("::1", "ipv6");
internal.addSubnet("fc00::", 7, "ipv6");
internal.addSubnet("fe80::", 10, "ipv6");
internal.addSubnet("2001:db8::", 32, "ipv6");
internal.addSubnet("64:ff9b::", 96, "ipv6");
internal.addSubnet("100::", 64, "ipv6");

export function isAllowedAddress(address: string, allowPrivate: boolean): boolean {
  const v4mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  const ip = v4mapped ?? address;
  const family = isIPv4(ip) ? "ipv4" : "ipv6";
  if (never.check(ip, family)) return false;
  return allowPrivate || !internal.check(ip, family);
}
