import { randomBytes } from "node:crypto";
import aws4 from "aws4";
import { children, parseXml, textAt } from "../../../src/dns/providers/route53/xml.js";
import {
  Violation,
  check,
  route,
  startLoopbackApi,
  type ApiReply,
  type LoopbackApi,
  type RecordedRequest,
  type TxtChangeHook,
} from "./loopback-api.js";

/**
 * Route 53 (2013-04-01) + STS AssumeRoleWithWebIdentity double. Every Route 53 request must carry a
 * valid SigV4 signature (service route53, region us-east-1), recomputed here from the signed headers
 * with the key's secret; temporary keys from STS also need their session token. Change batches are
 * atomic: a DELETE must match the current set exactly and a CREATE must not collide, else
 * InvalidChangeBatch. GetChange answers PENDING once, then INSYNC. `rrset?name=` lists from that
 * name on, so it may return a different, later name, like the real API.
 */
export interface Route53Api extends LoopbackApi {
  stsUrl: string;
  hostedZoneId(zone: string): string;
  addKey(accessKeyId: string, secretAccessKey: string): void;
  stsCalls(): number;
}

interface Key {
  secret: string;
  sessionToken?: string;
}
interface RRSet {
  name: string;
  ttl: number;
  values: string[];
}

const XMLNS = "https://route53.amazonaws.com/doc/2013-04-01/";

export async function startRoute53Api(options: {
  keys: Record<string, string>;
  zones: string[];
  /** Web identity tokens STS accepts, and the role ARN they may assume. */
  webIdentity?: { token: string; roleArn: string };
  onChange?: TxtChangeHook;
}): Promise<Route53Api> {
  const keys = new Map<string, Key>(Object.entries(options.keys).map(([k, secret]) => [k, { secret }]));
  const zones = new Map(
    options.zones.map((z, i) => [`Z${String(i + 1).padStart(4, "0")}CERTFLEET`, `${z}.`]),
  );
  const sets = new Map<string, RRSet>();
  const changes = new Map<string, number>();
  let sts = 0;

  const xml = (status: number, body: string): ApiReply => ({
    status,
    headers: { "content-type": "text/xml" },
    text: `<?xml version="1.0"?>\n${body}`,
  });
  const awsError = (status: number, code: string, message: string) =>
    xml(
      status,
      `<ErrorResponse xmlns="${XMLNS}"><Error><Type>Sender</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>r-1</RequestId></ErrorResponse>`,
    );
  const invalidBatch = (message: string) =>
    xml(
      400,
      `<InvalidChangeBatch xmlns="${XMLNS}"><Messages><Message>${message}</Message></Messages><RequestId>r-2</RequestId></InvalidChangeBatch>`,
    );

  function verifySignature(req: RecordedRequest): ApiReply | undefined {
    const auth = req.headers.authorization ?? "";
    const m =
      /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(
        auth,
      );
    if (!m) return awsError(403, "IncompleteSignature", "Authorization header missing or malformed");
    const [, akid, , region, service, signedHeaders, signature] = m;
    check(region === "us-east-1", `signing region ${region}`);
    check(service === "route53", `signing service ${service}`);
    for (const h of ["host", "x-amz-date"]) check(signedHeaders!.split(";").includes(h), `${h} not signed`);
    const key = keys.get(akid!);
    if (!key)
      return awsError(403, "InvalidClientTokenId", "The security token included in the request is invalid.");
    if (key.sessionToken !== undefined && req.headers["x-amz-security-token"] !== key.sessionToken) {
      return awsError(403, "InvalidClientTokenId", "The security token included in the request is invalid.");
    }
    const headers: Record<string, string> = {};
    for (const h of signedHeaders!.split(";")) headers[h] = String(req.headers[h] ?? "");
    const resigned = aws4.sign(
      {
        host: headers.host,
        path: req.rawUrl,
        method: req.method,
        service: "route53",
        region: "us-east-1",
        headers,
        body: req.body || undefined,
      },
      {
        accessKeyId: akid,
        secretAccessKey: key.secret,
        ...(key.sessionToken ? { sessionToken: key.sessionToken } : {}),
      },
    );
    const expected = /Signature=([0-9a-f]{64})/.exec(
      String(resigned.headers?.Authorization ?? resigned.headers?.authorization),
    )?.[1];
    if (expected !== signature)
      return awsError(
        403,
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided.",
      );
    return undefined;
  }

  function handleSts(req: RecordedRequest): ApiReply {
    sts += 1;
    check(req.method === "POST", "STS takes POST here");
    const form = new URLSearchParams(req.body);
    check(form.get("Action") === "AssumeRoleWithWebIdentity", `Action ${form.get("Action")}`);
    check(form.get("Version") === "2011-06-15", `Version ${form.get("Version")}`);
    check(form.get("RoleSessionName"), "RoleSessionName missing");
    check(req.headers.authorization === undefined, "AssumeRoleWithWebIdentity is unsigned");
    if (!options.webIdentity || form.get("WebIdentityToken") !== options.webIdentity.token) {
      return awsError(
        400,
        "InvalidIdentityToken",
        "Couldn't retrieve verification key from your identity provider",
      );
    }
    if (form.get("RoleArn") !== options.webIdentity.roleArn)
      return awsError(403, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity");
    const akid = `ASIA${randomBytes(8).toString("hex").toUpperCase()}`;
    const secret = randomBytes(20).toString("base64");
    const sessionToken = randomBytes(32).toString("base64");
    keys.set(akid, { secret, sessionToken });
    const expiration = new Date(Date.now() + 3600_000).toISOString();
    return xml(
      200,
      `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleWithWebIdentityResult>` +
        `<Credentials><AccessKeyId>${akid}</AccessKeyId><SecretAccessKey>${secret}</SecretAccessKey><SessionToken>${sessionToken}</SessionToken><Expiration>${expiration}</Expiration></Credentials>` +
        `</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>`,
    );
  }

  const zoneXml = (id: string, name: string) =>
    `<HostedZone><Id>/hostedzone/${id}</Id><Name>${name}</Name><CallerReference>c</CallerReference><Config><PrivateZone>false</PrivateZone></Config><ResourceRecordSetCount>2</ResourceRecordSetCount></HostedZone>`;
  const setXml = (s: RRSet) =>
    `<ResourceRecordSet><Name>${s.name}</Name><Type>TXT</Type><TTL>${s.ttl}</TTL><ResourceRecords>${s.values.map((v) => `<ResourceRecord><Value>${v.replace(/&/g, "&amp;").replace(/</g, "&lt;")}</Value></ResourceRecord>`).join("")}</ResourceRecords></ResourceRecordSet>`;
  const unquote = (v: string) => v.slice(1, -1);

  const api = await startLoopbackApi({
    name: "route53",
    onChange: options.onChange,
    async handle({ req, store }) {
      if (req.path === "/sts") return handleSts(req);
      const denied = verifySignature(req);
      if (denied) return denied;

      if (req.method === "GET" && req.path === "/2013-04-01/hostedzonesbyname") {
        const dnsname = req.query.get("dnsname");
        check(dnsname && !dnsname.endsWith("."), `dnsname ${dnsname}`);
        const max = Number(req.query.get("maxitems") ?? "100");
        const list = [...zones]
          .filter(([, n]) => n >= `${dnsname}.`)
          .sort((a, b) => a[1].localeCompare(b[1]))
          .slice(0, max);
        return xml(
          200,
          `<ListHostedZonesByNameResponse xmlns="${XMLNS}"><HostedZones>${list.map(([i, n]) => zoneXml(i, n)).join("")}</HostedZones><DNSName>${dnsname}</DNSName><IsTruncated>false</IsTruncated><MaxItems>${max}</MaxItems></ListHostedZonesByNameResponse>`,
        );
      }
      if (req.method === "GET" && req.path === "/2013-04-01/hostedzone") {
        return xml(
          200,
          `<ListHostedZonesResponse xmlns="${XMLNS}"><HostedZones>${[...zones].map(([i, n]) => zoneXml(i, n)).join("")}</HostedZones><IsTruncated>false</IsTruncated><MaxItems>100</MaxItems></ListHostedZonesResponse>`,
        );
      }
      const change = route<"id">(req.path, "/2013-04-01/change/:id");
      if (change) {
        check(req.method === "GET", `unexpected ${req.method}`);
        const polls = changes.get(change.id);
        if (polls === undefined) return awsError(404, "NoSuchChange", "no such change");
        changes.set(change.id, polls + 1);
        return xml(
          200,
          `<GetChangeResponse xmlns="${XMLNS}"><ChangeInfo><Id>/change/${change.id}</Id><Status>${polls >= 1 ? "INSYNC" : "PENDING"}</Status><SubmittedAt>2026-01-01T00:00:00Z</SubmittedAt></ChangeInfo></GetChangeResponse>`,
        );
      }
      const rr = route<"id">(req.path.replace(/\/$/, ""), "/2013-04-01/hostedzone/:id/rrset");
      if (!rr) throw new Violation("no such endpoint");
      const zone = zones.get(rr.id);
      if (!zone) return awsError(404, "NoSuchHostedZone", `No hosted zone found with ID: ${rr.id}`);

      if (req.method === "GET") {
        check(!req.path.endsWith("/"), "ListResourceRecordSets has no trailing slash");
        const name = req.query.get("name");
        check(name !== null && name.endsWith("."), `name must be absolute: ${name}`);
        check(req.query.get("type") === "TXT", "type must be TXT");
        const first = [...sets.values()]
          .filter((s) => s.name.endsWith(zone) && s.name >= name)
          .sort((a, b) => a.name.localeCompare(b.name))[0];
        return xml(
          200,
          `<ListResourceRecordSetsResponse xmlns="${XMLNS}"><ResourceRecordSets>${first ? setXml(first) : ""}</ResourceRecordSets><IsTruncated>false</IsTruncated><MaxItems>1</MaxItems></ListResourceRecordSetsResponse>`,
        );
      }

      check(
        req.method === "POST" && req.path.endsWith("/rrset/"),
        `expected POST …/rrset/, got ${req.method} ${req.path}`,
      );
      check(req.headers["content-type"]?.includes("xml"), "change batch must be XML");
      const doc = parseXml(req.body);
      check(doc.name === "ChangeResourceRecordSetsRequest", `root ${doc.name}`);
      check(req.body.includes(`xmlns="${XMLNS}"`), "missing Route 53 namespace");
      const batch = children(
        doc.children.find((c) => c.name === "ChangeBatch")?.children.find((c) => c.name === "Changes"),
        "Change",
      );
      check(batch.length > 0, "empty change batch");
      const parsed = batch.map((c) => {
        const action = textAt(c, "Action");
        check(action === "CREATE" || action === "DELETE" || action === "UPSERT", `action ${action}`);
        const s = c.children.find((x) => x.name === "ResourceRecordSet");
        const name = textAt(s, "Name") ?? "";
        check(name.endsWith(".") && name.endsWith(zone), `name ${name} outside ${zone}`);
        check(textAt(s, "Type") === "TXT", "type must be TXT");
        const ttl = Number(textAt(s, "TTL"));
        check(Number.isInteger(ttl) && ttl > 0, `ttl ${textAt(s, "TTL")}`);
        const values = children(
          s?.children.find((x) => x.name === "ResourceRecords"),
          "ResourceRecord",
        ).map((r) => textAt(r, "Value") ?? "");
        check(
          values.length > 0 && values.every((v) => /^"[^"]*"$/.test(v)),
          `values must be quoted: ${values.join(",")}`,
        );
        return { action, set: { name: name.toLowerCase(), ttl, values } };
      });
      // Validate the whole batch against a copy, then commit it.
      const next = new Map(sets);
      for (const { action, set } of parsed) {
        const cur = next.get(set.name);
        if (action === "DELETE") {
          if (
            !cur ||
            cur.ttl !== set.ttl ||
            JSON.stringify([...cur.values].sort()) !== JSON.stringify([...set.values].sort())
          ) {
            return invalidBatch(
              `Tried to delete resource record set [name='${set.name}', type='TXT'] but the values provided do not match the current values`,
            );
          }
          next.delete(set.name);
        } else if (action === "CREATE") {
          if (cur)
            return invalidBatch(
              `Tried to create resource record set [name='${set.name}', type='TXT'] but it already exists`,
            );
          next.set(set.name, set);
        } else next.set(set.name, set);
      }
      const touched = new Set(parsed.map((p) => p.set.name));
      sets.clear();
      for (const [k, v] of next) sets.set(k, v);
      for (const n of touched) await store.set(n, (sets.get(n)?.values ?? []).map(unquote));
      const id = `C${randomBytes(6).toString("hex").toUpperCase()}`;
      changes.set(id, 0);
      return xml(
        200,
        `<ChangeResourceRecordSetsResponse xmlns="${XMLNS}"><ChangeInfo><Id>/change/${id}</Id><Status>PENDING</Status><SubmittedAt>2026-01-01T00:00:00Z</SubmittedAt></ChangeInfo></ChangeResourceRecordSetsResponse>`,
      );
    },
  });
  return {
    ...api,
    stsUrl: `${api.url}/sts`,
    hostedZoneId: (zone) => [...zones].find(([, n]) => n === `${zone}.`)![0],
    addKey: (k, s) => keys.set(k, { secret: s }),
    stsCalls: () => sts,
  };
}
