import { createHash, createHmac, createPrivateKey, randomBytes, X509Certificate } from "node:crypto";
import { ContentInfo, id_data } from "@peculiar/asn1-cms";
import {
  AuthenticatedSafe,
  CertBag,
  id_certBag,
  id_pkcs8ShroudedKeyBag,
  id_x509Certificate,
  MacData,
  PFX,
  PKCS12Attribute,
  PKCS8ShroudedKeyBag,
  SafeBag,
  SafeContents,
} from "@peculiar/asn1-pfx";
import {
  FriendlyName,
  id_pkcs9_at_friendlyName,
  id_pkcs9_at_localKeyId,
  LocalKeyId,
} from "@peculiar/asn1-pkcs9";
import { DigestInfo } from "@peculiar/asn1-rsa";
import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import { AlgorithmIdentifier } from "@peculiar/asn1-x509";

/**
 * A PKCS#12 (PFX, RFC 7292) file, structured with @peculiar/asn1-pfx: the certificate chain in a plain
 * SafeContents (certificates are public) and the private key as a pkcs8ShroudedKeyBag that OpenSSL
 * encrypts (Node's `KeyObject.export` with a passphrase: PBES2, PBKDF2-HMAC-SHA256 with 2048 iterations,
 * AES-256-CBC), integrity-protected by an HMAC-SHA256 MAC whose key comes from the RFC 7292 appendix B
 * derivation (the one piece no installed library offers; OpenSSL 3.0 reads and writes this form, and
 * has no PBMAC1). Any PKCS#8 key works (ECDSA included). The leaf's cert bag and the key bag share a
 * localKeyId (SHA-1 of the leaf DER) so importers pair them. This is the modern profile OpenSSL 3
 * writes by default; legacy RC2/3DES files are not written.
 */
export interface Pkcs12Input {
  keyPem: string;
  /** Leaf first, then the chain. */
  certPems: readonly string[];
  password: string;
  friendlyName?: string;
  /** MAC iterations (default 2048, what OpenSSL uses). */
  iterations?: number;
}

const ID_SHA256 = "2.16.840.1.101.3.4.2.1";

const der = (value: unknown): ArrayBuffer => AsnConvert.serialize(value);
const arrayBuffer = (b: Buffer): ArrayBuffer =>
  b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;

/** A ContentInfo of type data holding `contentDer` in an OCTET STRING. */
function dataContentInfo(contentDer: ArrayBuffer): ContentInfo {
  return new ContentInfo({ contentType: id_data, content: der(new OctetString(contentDer)) });
}

function attribute(id: string, value: unknown): PKCS12Attribute {
  const attr = new PKCS12Attribute(); // its constructor ignores params (asn1-pfx 2.x)
  attr.attrId = id;
  attr.attrValues = [AsnConvert.serialize(value)];
  return attr;
}

export function buildPkcs12(input: Pkcs12Input): Buffer {
  const iterations = input.iterations ?? 2048;
  const certDers = input.certPems.map((pem) => new X509Certificate(pem).raw);
  if (certDers.length === 0) throw new Error("a PKCS#12 file needs at least the leaf certificate");
  const localKeyId = createHash("sha1").update(certDers[0]!).digest();
  const attributes = [attribute(id_pkcs9_at_localKeyId, new LocalKeyId(localKeyId))];
  if (input.friendlyName !== undefined) {
    attributes.push(attribute(id_pkcs9_at_friendlyName, new FriendlyName(input.friendlyName)));
  }

  const certBags = certDers.map(
    (certDer, i) =>
      new SafeBag({
        bagId: id_certBag,
        bagValue: der(
          new CertBag({ certId: id_x509Certificate, certValue: der(new OctetString(arrayBuffer(certDer))) }),
        ),
        ...(i === 0 ? { bagAttributes: attributes } : {}),
      }),
  );

  const encryptedKey = createPrivateKey(input.keyPem).export({
    type: "pkcs8",
    format: "der",
    cipher: "aes-256-cbc",
    passphrase: input.password,
  });
  const keyBag = new SafeBag({
    bagId: id_pkcs8ShroudedKeyBag,
    bagValue: der(AsnConvert.parse(encryptedKey, PKCS8ShroudedKeyBag)),
    bagAttributes: attributes,
  });

  const authenticatedSafe = der(
    new AuthenticatedSafe([
      dataContentInfo(der(new SafeContents(certBags))),
      dataContentInfo(der(new SafeContents([keyBag]))),
    ]),
  );

  const macSalt = randomBytes(16);
  const macKey = pkcs12Kdf(input.password, macSalt, 3, iterations, 32);
  const mac = createHmac("sha256", macKey).update(Buffer.from(authenticatedSafe)).digest();
  const macData = new MacData({
    mac: new DigestInfo({
      digestAlgorithm: new AlgorithmIdentifier({ algorithm: ID_SHA256, parameters: null }),
      digest: new OctetString(mac),
    }),
    macSalt: new OctetString(macSalt),
    iterations,
  });

  return Buffer.from(der(new PFX({ version: 3, authSafe: dataContentInfo(authenticatedSafe), macData })));
}

/**
 * RFC 7292 appendix B.2 key derivation with SHA-256 (u = 32, v = 64 bytes): `id` 3 makes MAC keys. The
 * password is a BMPString with a terminating NUL (UTF-16BE + 00 00).
 */
function pkcs12Kdf(password: string, salt: Buffer, id: number, iterations: number, length: number): Buffer {
  const u = 32;
  const v = 64;
  const pass = Buffer.alloc(password.length * 2 + 2);
  for (let i = 0; i < password.length; i++) pass.writeUInt16BE(password.charCodeAt(i), i * 2);
  const repeatTo = (data: Buffer) => {
    if (data.length === 0) return Buffer.alloc(0);
    const out = Buffer.alloc(v * Math.ceil(data.length / v));
    for (let i = 0; i < out.length; i++) out[i] = data[i % data.length]!;
    return out;
  };
  const D = Buffer.alloc(v, id);
  const I = Buffer.concat([repeatTo(salt), repeatTo(pass)]);
  const blocks: Buffer[] = [];
  for (let produced = 0; produced < length; produced += u) {
    let A = createHash("sha256").update(D).update(I).digest();
    for (let r = 1; r < iterations; r++) A = createHash("sha256").update(A).digest();
    blocks.push(A);
    const B = repeatTo(A).subarray(0, v);
    // I_j = (I_j + B + 1) mod 2^(8v), for each v-byte block of I
    for (let j = 0; j < I.length; j += v) {
      let carry = 1;
      for (let k = v - 1; k >= 0; k--) {
        const sum = I[j + k]! + B[k]! + carry;
        I[j + k] = sum & 0xff;
        carry = sum >> 8;
      }
    }
  }
  return Buffer.concat(blocks).subarray(0, length);
}
