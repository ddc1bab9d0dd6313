import { createConnection, createServer, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";

/**
 * A TCP forwarder on 127.0.0.1:<free port> in front of a server, with a switch: `down()` drops every
 * open connection and refuses new ones (the server "is down"), `up()` forwards again. TLS passes
 * through untouched.
 */
export interface TcpSwitch {
  port: number;
  connections: number;
  down(): void;
  up(): void;
  close(): Promise<void>;
}

export async function startTcpSwitch(targetPort: number): Promise<TcpSwitch> {
  let isUp = true;
  const sockets = new Set<Socket>();
  const state = { connections: 0 };
  const server: Server = createServer((client) => {
    if (!isUp) return void client.destroy();
    state.connections++;
    const upstream = createConnection({ host: "127.0.0.1", port: targetPort });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => undefined);
    }
    client.pipe(upstream).pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    get connections() {
      return state.connections;
    },
    down() {
      isUp = false;
      for (const s of sockets) s.destroy();
    },
    up() {
      isUp = true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
