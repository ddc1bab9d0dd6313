import { createSocket } from "node:dgram";
import { isIP, connect } from "node:net";
import { CertfleetError } from "../core/errors.js";

/**
 * Send one DNS message and return the matching reply, over TCP (RFC 1035 §4.2.2 length prefix) or UDP.
 * A reply whose ID differs from the request's is ignored (UDP) or rejected (TCP). Rejects with a
 * CertfleetError `aborted` when the signal fires, and with a plain Error on network failure or timeout;
 * callers wrap those in their own UpstreamError.
 */
export interface DnsEndpoint {
  host: string;
  port: number;
}

export type DnsTransport = "tcp" | "udp";

/** "127.0.0.1:5353", "[::1]:53", "ns1.example.net" (port 53). */
export function parseEndpoint(input: string, defaultPort = 53): DnsEndpoint {
  const s = input.trim();
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (bracketed) return { host: bracketed[1]!, port: bracketed[2] ? Number(bracketed[2]) : defaultPort };
  if (isIP(s) === 6) return { host: s, port: defaultPort };
  const hostPort = /^([^:]+):(\d+)$/.exec(s);
  if (hostPort) return { host: hostPort[1]!, port: Number(hostPort[2]) };
  if (/^[^:\s]+$/.test(s)) return { host: s, port: defaultPort };
  throw new RangeError(`"${input}" is not host, host:port or [ipv6]:port`);
}

export function formatEndpoint(e: DnsEndpoint): string {
  return isIP(e.host) === 6 ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`;
}

function aborted(signal: AbortSignal): CertfleetError {
  return new CertfleetError("aborted", "operation was cancelled", { status: 499, cause: signal.reason });
}

export function exchange(
  endpoint: DnsEndpoint,
  message: Buffer,
  options: { transport: DnsTransport; timeoutMs: number; signal: AbortSignal },
): Promise<Buffer> {
  return options.transport === "tcp"
    ? exchangeTcp(endpoint, message, options)
    : exchangeUdp(endpoint, message, options);
}

/**
 * The part both transports share: one outcome, decided by the first of reply, error, timeout or
 * abort; the socket is released (by `release`) whichever it was.
 */
function settleOnce(
  endpoint: DnsEndpoint,
  options: { timeoutMs: number; signal: AbortSignal },
  reject: (e: Error) => void,
  resolve: (reply: Buffer) => void,
  release: () => void,
): (error: Error | undefined, reply?: Buffer) => void {
  let settled = false;
  const done = (error: Error | undefined, reply?: Buffer) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    options.signal.removeEventListener("abort", onAbort);
    release();
    if (error) reject(error);
    else resolve(reply!);
  };
  const onAbort = () => done(aborted(options.signal));
  const timer = setTimeout(
    () => done(new Error(`no reply from ${formatEndpoint(endpoint)} within ${options.timeoutMs} ms`)),
    options.timeoutMs,
  );
  options.signal.addEventListener("abort", onAbort, { once: true });
  return done;
}

function exchangeTcp(
  endpoint: DnsEndpoint,
  message: Buffer,
  options: { timeoutMs: number; signal: AbortSignal },
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    if (options.signal.aborted) return reject(aborted(options.signal));
    const socket = connect({ host: endpoint.host, port: endpoint.port });
    let received = Buffer.alloc(0);
    const done = settleOnce(endpoint, options, reject, resolve, () => socket.destroy());
    socket.on("connect", () => {
      const prefix = Buffer.alloc(2);
      prefix.writeUInt16BE(message.length, 0);
      socket.write(Buffer.concat([prefix, message]));
    });
    socket.on("data", (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 2) return;
      const length = received.readUInt16BE(0);
      if (received.length < 2 + length) return;
      const reply = received.subarray(2, 2 + length);
      if (reply.length < 12 || reply.readUInt16BE(0) !== message.readUInt16BE(0)) {
        return done(new Error(`reply from ${formatEndpoint(endpoint)} does not match the request id`));
      }
      done(undefined, Buffer.from(reply));
    });
    socket.on("error", (e) => done(e));
    socket.on("close", () =>
      done(new Error(`${formatEndpoint(endpoint)} closed the connection without a reply`)),
    );
  });
}

function exchangeUdp(
  endpoint: DnsEndpoint,
  message: Buffer,
  options: { timeoutMs: number; signal: AbortSignal },
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    if (options.signal.aborted) return reject(aborted(options.signal));
    const socket = createSocket(isIP(endpoint.host) === 6 ? "udp6" : "udp4");
    const done = settleOnce(endpoint, options, reject, resolve, () => socket.close());
    socket.on("message", (reply, from) => {
      // Ignore stray datagrams: wrong port or wrong id.
      if (
        from.port !== endpoint.port ||
        reply.length < 12 ||
        reply.readUInt16BE(0) !== message.readUInt16BE(0)
      )
        return;
      done(undefined, reply);
    });
    socket.on("error", (e) => done(e));
    socket.send(message, endpoint.port, endpoint.host);
  });
}
