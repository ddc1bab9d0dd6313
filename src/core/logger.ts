import { pino, type Logger as PinoLogger } from "pino";
import pretty from "pino-pretty";

export type Logger = PinoLogger;

/** Paths redacted from every log line: credentials never reach the logs. */
export const REDACT_PATHS = [
  "authorization",
  "*.authorization",
  "headers.authorization",
  "req.headers.authorization",
  "req.headers.cookie",
  "privateKeyPem",
  "*.privateKeyPem",
  "password",
  "*.password",
  "secret",
  "*.secret",
  "apiKey",
  "*.apiKey",
  "token",
  "*.token",
];

export const LOG_FORMATS = ["auto", "json", "pretty"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface LoggerOptions {
  level?: string;
  /**
   * `json`: one pino JSON object per line (for log shippers). `pretty`: one human line per event, the
   * level as a word and the time in ISO 8601 UTC. `auto` (default): pretty when the destination is a
   * terminal, JSON otherwise.
   */
  format?: LogFormat;
  destination?: NodeJS.WritableStream;
}

/** Which format `auto` picks for a destination: only a terminal gets the human form. */
export function effectiveLogFormat(format: LogFormat, destination: NodeJS.WritableStream): "json" | "pretty" {
  if (format !== "auto") return format;
  return (destination as { isTTY?: boolean }).isTTY === true ? "pretty" : "json";
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const destination = options.destination ?? process.stderr;
  const format = effectiveLogFormat(options.format ?? "auto", destination);
  const base = { level: options.level ?? "info", redact: { paths: REDACT_PATHS, censor: "[redacted]" } };
  if (format === "json") return pino(base, destination);
  // synchronous, in-process: a line is on the terminal before the process exits or crashes
  const stream = pretty({
    destination,
    sync: true,
    colorize: (destination as { isTTY?: boolean }).isTTY === true,
    translateTime: "UTC:yyyy-mm-dd'T'HH:MM:ss.l'Z'",
    ignore: "pid,hostname",
    singleLine: true,
  });
  return pino(base, stream);
}

/** A logger that writes nothing, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
