import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import { readFileSync } from "node:fs";
import * as dnsPacket from "dns-packet";
import { describe, expect, it } from "vitest";
import {
  parseTsigAlgorithm,
  readTsig,
  signMessage,
  verifyMessage,
  type TsigKey,
} from "../../src/dns/tsig.js";

interface Vector {
  algorithm: string;
  keyName: string;
  secret: string;
  message: string;
}

// Queries signed by BIND's own TSIG code (dig -y), captured once and stored as data.
const { vectors } = JSON.parse(
  readFileSync(new URL("./vectors/tsig-dig-queries.json", import.meta.url), "utf8"),
) as { vectors: Vector[] };

function keyOf(v: { algorithm: string; keyName: string; secret: string }): TsigKey {
  return {
    name: v.keyName,
    algorithm: parseTsigAlgorithm(v.algorithm)!,
    secret: Buffer.from(v.secret, "base64"),
  };
}

describe("TSIG known vectors (signed by dig)", () => {
  for (const v of vectors) {
    describe(v.algorithm, () => {
      const message = Buffer.from(v.message, "hex");
      const tsig = readTsig(message)!;

      it("reads the TSIG record", () => {
        expect(tsig.keyName).toBe(v.keyName);
        expect(parseTsigAlgorithm(tsig.algorithm)).toBe(v.algorithm);
        expect(tsig.fudge).toBe(300);
        expect(tsig.error).toBe(0);
      });

      it("verifies at the signing time", () => {
        expect(verifyMessage(message, keyOf(v), { now: tsig.timeSigned }).status).toBe("ok");
      });

      it("rejects a changed byte, another secret, another key name, a time outside the fudge", () => {
        const tampered = Buffer.from(message);
        tampered.writeUInt8(tampered.readUInt8(15) ^ 0x20, 15); // inside the question name
        expect(verifyMessage(tampered, keyOf(v), { now: tsig.timeSigned }).status).toBe("badsig");
        const otherSecret = { ...keyOf(v), secret: randomBytes(32) };
        expect(verifyMessage(message, otherSecret, { now: tsig.timeSigned }).status).toBe("badsig");
        expect(verifyMessage(message, { ...keyOf(v), name: "other" }, { now: tsig.timeSigned }).status).toBe(
          "badkey",
        );
        expect(verifyMessage(message, keyOf(v), { now: tsig.timeSigned + 301 }).status).toBe("badtime");
        expect(verifyMessage(message, keyOf(v), { now: tsig.timeSigned - 300 }).status).toBe("ok");
      });

      it("signing the same message with the same time reproduces dig's MAC", () => {
        // Strip dig's TSIG record and re-sign: our MAC must equal BIND's byte for byte.
        const unsigned = Buffer.from(message.subarray(0, tsig.start));
        unsigned.writeUInt16BE(message.readUInt16BE(10) - 1, 10);
        const { signed, mac } = signMessage(unsigned, keyOf(v), {
          timeSigned: tsig.timeSigned,
          fudge: tsig.fudge,
        });
        expect(mac.toString("hex")).toBe(tsig.mac.toString("hex"));
        expect(signed.toString("hex")).toBe(message.toString("hex"));
      });
    });
  }
});

describe("TSIG round trip", () => {
  const key: TsigKey = { name: "k.example", algorithm: "hmac-sha256", secret: randomBytes(32) };
  const query = dnsPacket.encode({
    id: 4242,
    type: "query",
    questions: [{ name: "example.org", type: "SOA" }],
  });

  it("a response MAC is bound to the request MAC", () => {
    const now = 1_700_000_000;
    const { signed: request, mac: requestMac } = signMessage(query, key, { timeSigned: now });
    expect(verifyMessage(request, key, { now }).status).toBe("ok");
    const response = Buffer.from(query);
    response.writeUInt16BE(0x8000, 2);
    const { signed } = signMessage(response, key, { timeSigned: now, requestMac });
    expect(verifyMessage(signed, key, { now, requestMac }).status).toBe("ok");
    expect(verifyMessage(signed, key, { now, requestMac: randomBytes(32) }).status).toBe("badsig");
    expect(verifyMessage(signed, key, { now }).status).toBe("badsig");
  });

  it("a message without TSIG is unsigned", () => {
    expect(verifyMessage(query, key, { now: 0 }).status).toBe("unsigned");
  });
});

describe("TSIG against dig live", () => {
  for (const algorithm of ["hmac-sha1", "hmac-sha256", "hmac-sha512"] as const) {
    it(`verifies a query dig signs with ${algorithm} now`, async () => {
      const key: TsigKey = { name: "live-key", algorithm, secret: randomBytes(32) };
      const socket = createSocket("udp4");
      await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
      try {
        const received = new Promise<Buffer>((resolve) => socket.once("message", (m: Buffer) => resolve(m)));
        const child = execFile(
          "dig",
          [
            "-y",
            `${algorithm}:${key.name}:${key.secret.toString("base64")}`,
            "@127.0.0.1",
            "-p",
            String(socket.address().port),
            "+tries=1",
            "+time=1",
            "example.org",
            "TXT",
          ],
          () => undefined,
        );
        const message = await received;
        child.kill();
        expect(verifyMessage(message, key, { now: Math.floor(Date.now() / 1000) }).status).toBe("ok");
      } finally {
        socket.close();
      }
    });
  }
});
