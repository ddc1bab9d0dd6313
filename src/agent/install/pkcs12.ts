import { createHash, createPrivateKey, X509Certificate } from "node:crypto";
import forge from "node-forge";

/**
 * A PKCS#12 (PFX) file: the certificate chain in a plain SafeContents (certificates are public) and the
 * private key as a PBES2 / PBKDF2-HMAC-SHA256 / AES-256-CBC shrouded key bag, integrity-protected by an
 * HMAC-SHA256 MAC. Built from node-forge's ASN.1 primitives because its own PKCS#12 writer only takes
 * RSA keys; this one takes any PKCS#8 key (ECDSA included). The leaf's cert bag and the key bag share a
 * localKeyId (SHA-1 of the leaf DER) so importers pair them.
 */
export interface Pkcs12Input {
  keyPem: string;
  /** Leaf first, then the chain. */
  certPems: readonly string[];
  password: string;
  friendlyName?: string;
  /** PBKDF2 / MAC iterations (default 2048, what OpenSSL and forge use). */
  iterations?: number;
}

const { asn1, pki } = forge;
type Asn1 = forge.asn1.Asn1;

const seq = (items: Asn1[]) => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, items);
const set = (items: Asn1[]) => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SET, true, items);
const oid = (id: string) =>
  asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(id).getBytes());
const octets = (bytes: string) => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, bytes);
const explicit0 = (item: Asn1) => asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, [item]);
const der = (item: Asn1) => asn1.toDer(item).getBytes();
const dataContentInfo = (content: Asn1) => seq([oid(pki.oids.data!), explicit0(octets(der(content)))]);

function bagAttributes(localKeyId: string, friendlyName: string | undefined): Asn1 {
  const attrs = [seq([oid(pki.oids.localKeyId!), set([octets(localKeyId)])])];
  if (friendlyName !== undefined) {
    attrs.push(
      seq([
        oid(pki.oids.friendlyName!),
        set([asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BMPSTRING, false, friendlyName)]),
      ]),
    );
  }
  return set(attrs);
}

export function buildPkcs12(input: Pkcs12Input): Buffer {
  const iterations = input.iterations ?? 2048;
  const certDers = input.certPems.map((pem) => new X509Certificate(pem).raw);
  if (certDers.length === 0) throw new Error("a PKCS#12 file needs at least the leaf certificate");
  const localKeyId = createHash("sha1").update(certDers[0]!).digest().toString("binary");
  const attributes = bagAttributes(localKeyId, input.friendlyName);

  const certBags = certDers.map((d, i) =>
    seq([
      oid(pki.oids.certBag!),
      explicit0(seq([oid(pki.oids.x509Certificate!), explicit0(octets(d.toString("binary")))])),
      ...(i === 0 ? [attributes] : []),
    ]),
  );

  const pkcs8 = createPrivateKey(input.keyPem).export({ type: "pkcs8", format: "der" });
  const privateKeyInfo = asn1.fromDer(pkcs8.toString("binary"));
  const encrypted = pki.encryptPrivateKeyInfo(privateKeyInfo, input.password, {
    algorithm: "aes256",
    count: iterations,
    saltSize: 16,
    prfAlgorithm: "sha256",
  } as Parameters<typeof pki.encryptPrivateKeyInfo>[2]);
  const keyBag = seq([oid(pki.oids.pkcs8ShroudedKeyBag!), explicit0(encrypted), attributes]);

  const authenticatedSafe = seq([dataContentInfo(seq(certBags)), dataContentInfo(seq([keyBag]))]);
  const safeDer = der(authenticatedSafe);

  const macSalt = forge.random.getBytesSync(16);
  const sha256 = forge.md.sha256.create();
  const macKey = forge.pkcs12.generateKey(
    input.password,
    forge.util.createBuffer(macSalt),
    3,
    iterations,
    32,
    sha256,
  );
  const hmac = forge.hmac.create();
  hmac.start(forge.md.sha256.create(), macKey);
  hmac.update(safeDer);
  const macData = seq([
    seq([
      seq([oid(pki.oids.sha256!), asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, "")]),
      octets(hmac.digest().getBytes()),
    ]),
    octets(macSalt),
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, asn1.integerToDer(iterations).getBytes()),
  ]);

  const pfx = seq([
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, asn1.integerToDer(3).getBytes()),
    seq([oid(pki.oids.data!), explicit0(octets(safeDer))]),
    macData,
  ]);
  return Buffer.from(der(pfx), "binary");
}
