import { Writable } from "node:stream";
import { pino } from "pino";
import { createAgent, type AgentRuntime, type CertfleetAgent } from "../../../src/agent/agent.js";
import { parseAgentConfig } from "../../../src/agent/config/load-agent-config.js";
import { systemClock } from "../../../src/core/clock.js";

/**
 * The agent built in this process from a config document (same factories as the CLI), with its log
 * lines collected for assertions. For daemon tests that need a fast retry schedule (injected) or that
 * watch what happens over time.
 */
export interface InProcessAgent {
  agent: CertfleetAgent;
  logs: Record<string, unknown>[];
  messages(): string[];
}

export async function startInProcessAgent(
  raw: Record<string, unknown>,
  options: { baseDir: string; env?: NodeJS.ProcessEnv; runtime?: Partial<AgentRuntime> },
): Promise<InProcessAgent> {
  const logs: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split("\n"))
        if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const config = parseAgentConfig(raw, options.env ?? {}, options.baseDir);
  const agent = await createAgent(config, {
    logger: pino({ level: "debug" }, destination),
    clock: systemClock,
    env: options.env ?? {},
    platform: process.platform,
    fetch: globalThis.fetch,
    stderr: { write: () => true },
    ...options.runtime,
  });
  return { agent, logs, messages: () => logs.map((l) => String(l.msg)) };
}

export async function waitFor(
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
