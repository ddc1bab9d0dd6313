import { describe, expect, it } from "vitest";
import { MAX_PLUGIN_STATE_BYTES, runAuthPlugin } from "../../src/agent/auth/exec-plugin.js";
import { AgentAuthError } from "../../src/agent/agent-errors.js";

/** The exec auth-plugin protocol, run against real child processes (sh and node scripts). */
const run = (script: string, state = "", timeoutMs = 10_000) => {
  const messages: string[] = [];
  const result = runAuthPlugin(["sh", "-c", script], Buffer.from(state), {
    timeoutMs,
    signal: new AbortController().signal,
    env: { PATH: process.env.PATH ?? "" },
    platform: process.platform,
    onMessage: (line) => messages.push(line),
  });
  return { result, messages };
};

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    expect(e).toBeInstanceOf(AgentAuthError);
    return (e as AgentAuthError).code;
  }
}

describe("exec auth plugin protocol", () => {
  it("passes the state on stdin, takes the token from stdout and the new state from fd 3", async () => {
    const { result, messages } = run(
      's=$(cat); echo "got [$s]" >&2; printf "tok-%s" "$s"; printf "next-%s" "$s" >&3',
      "abc",
    );
    expect(await result).toEqual({ token: "tok-abc", state: Buffer.from("next-abc") });
    expect(messages).toEqual(["got [abc]"]);
  });

  it("an empty first state; a plugin that writes no state leaves it empty; a trailing newline is dropped", async () => {
    const { result } = run('s=$(cat); [ -z "$s" ] && echo token-1');
    expect(await result).toEqual({ token: "token-1", state: Buffer.alloc(0) });
  });

  it("binary state survives byte for byte", async () => {
    const state = Buffer.from([0, 1, 2, 255, 10, 13, 0]);
    const echo =
      "const b=[];process.stdin.on('data',d=>b.push(d)).on('end',()=>{require('fs').writeSync(3,Buffer.concat(b));process.stdout.write('t')})";
    const result = await runAuthPlugin([process.execPath, "-e", echo], state, {
      timeoutMs: 10_000,
      signal: new AbortController().signal,
      env: {},
      platform: process.platform,
      onMessage: () => undefined,
    });
    expect(result.state.equals(state)).toBe(true);
  });

  it("a non-zero exit is plugin_failed with the exit code", async () => {
    const { result, messages } = run('echo "login expired" >&2; exit 4');
    const error = await result.catch((e: AgentAuthError) => e);
    expect(error).toMatchObject({ code: "plugin_failed", details: { exitCode: 4 } });
    expect(messages).toEqual(["login expired"]);
  });

  it("no token is plugin_no_token", async () => {
    expect(await codeOf(run("printf state >&3").result)).toBe("plugin_no_token");
  });

  it("more than 10 MiB of state kills the plugin: plugin_state_too_large", async () => {
    const script = `head -c ${MAX_PLUGIN_STATE_BYTES + 1024} /dev/zero >&3; printf t`;
    expect(await codeOf(run(script).result)).toBe("plugin_state_too_large");
    // exactly 10 MiB is fine
    const ok = await run(`head -c ${MAX_PLUGIN_STATE_BYTES} /dev/zero >&3; printf t`).result;
    expect(ok.state.length).toBe(MAX_PLUGIN_STATE_BYTES);
  });

  it("a plugin that hangs is killed at the timeout: plugin_timeout", async () => {
    expect(await codeOf(run("sleep 30", "", 300).result)).toBe("plugin_timeout");
  });
});
