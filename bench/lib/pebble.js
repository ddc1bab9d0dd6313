// Pebble for the benchmarks: its own TLS certificate (self-signed, 127.0.0.1), pebble-challtestsrv as
// its DNS (every name → 127.0.0.1), no validation sleep, no nonce rejection, no authorization reuse,
// HTTP-01 validation against `httpPort`. Everything on 127.0.0.1 at free ports; stop() ends both.
import { execFile, spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { readFile, writeFile } from "node:fs/promises";
import { createServer as createNetServer } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { Agent, request } from "undici";

const run = promisify(execFile);

export async function freePort(udp = false) {
  for (;;) {
    const port = await new Promise((resolve, reject) => {
      const s = createNetServer();
      s.once("error", reject);
      s.listen(0, "127.0.0.1", () => {
        const p = s.address().port;
        s.close(() => resolve(p));
      });
    });
    if (!udp) return port;
    const ok = await new Promise((resolve) => {
      const u = createSocket("udp4");
      u.once("error", () => resolve(false));
      u.bind(port, "127.0.0.1", () => u.close(() => resolve(true)));
    });
    if (ok) return port;
  }
}

export async function waitFor(check, child, what, ms = 15_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited`);
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not start`);
}

/** @returns {Promise<{directoryUrl: string, caPem: string, pid: number, stop(): void}>} */
export async function startPebble({ dir, httpPort }) {
  await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    join(dir, "key.pem"),
    "-out",
    join(dir, "cert.pem"),
    "-days",
    "1",
    "-subj",
    "/CN=localhost",
    "-addext",
    "subjectAltName=IP:127.0.0.1,DNS:localhost",
  ]);
  const caPem = await readFile(join(dir, "cert.pem"), "utf8");
  const children = [];
  const stop = () => {
    for (const child of children) child.kill("SIGTERM");
  };
  try {
    const dnsPort = await freePort(true);
    const challMgmt = await freePort();
    const chall = spawn(
      "pebble-challtestsrv",
      [
        "-dns01",
        `127.0.0.1:${dnsPort}`,
        "-management",
        `127.0.0.1:${challMgmt}`,
        "-http01",
        "",
        "-https01",
        "",
        "-tlsalpn01",
        "",
        "-defaultIPv4",
        "127.0.0.1",
        "-defaultIPv6",
        "",
      ],
      { stdio: "ignore" },
    );
    children.push(chall);
    await waitFor(
      async () =>
        (await request(`http://127.0.0.1:${challMgmt}/clear-txt`, { method: "POST", body: '{"host":"x."}' }))
          .statusCode === 200,
      chall,
      "pebble-challtestsrv",
    );

    const port = await freePort();
    await writeFile(
      join(dir, "pebble.json"),
      JSON.stringify({
        pebble: {
          listenAddress: `127.0.0.1:${port}`,
          managementListenAddress: `127.0.0.1:${await freePort()}`,
          certificate: join(dir, "cert.pem"),
          privateKey: join(dir, "key.pem"),
          httpPort,
          tlsPort: await freePort(),
          ocspResponderURL: "",
          externalAccountBindingRequired: false,
        },
      }),
    );
    const pebble = spawn(
      "pebble",
      ["-config", join(dir, "pebble.json"), "-dnsserver", `127.0.0.1:${dnsPort}`],
      {
        cwd: dir,
        stdio: "ignore",
        env: {
          PATH: process.env.PATH,
          PEBBLE_VA_NOSLEEP: "1",
          PEBBLE_WFE_NONCEREJECT: "0",
          PEBBLE_AUTHZREUSE: "0",
        },
      },
    );
    children.push(pebble);
    const directoryUrl = `https://127.0.0.1:${port}/dir`;
    const probe = new Agent({ connect: { ca: caPem } });
    await waitFor(
      async () => (await request(directoryUrl, { dispatcher: probe })).statusCode === 200,
      pebble,
      "pebble",
    );
    await probe.close();
    return { directoryUrl, caPem, pid: pebble.pid, stop };
  } catch (e) {
    stop();
    throw e;
  }
}
