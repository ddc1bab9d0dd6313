import { startLoopbackHttp, type LoopbackHttp } from "./loopback-http.js";

/**
 * The GCE metadata server's identity endpoint:
 * `GET /computeMetadata/v1/instance/service-accounts/<account>/identity?audience=…&format=full` with
 * `Metadata-Flavor: Google` (403 without it); the answer is the bare JWT, with `Metadata-Flavor: Google`.
 */
export async function startGcpMetadata(
  mint: (request: { account: string; audience: string }) => Promise<string>,
): Promise<LoopbackHttp & { metadataUrl: string }> {
  const http = await startLoopbackHttp(async (req, res) => {
    const m = /^\/computeMetadata\/v1\/instance\/service-accounts\/([^/]+)\/identity$/.exec(req.url.pathname);
    if (!m) return void res.writeHead(404).end();
    if (req.headers["metadata-flavor"] !== "Google")
      return void res.writeHead(403).end("Missing Metadata-Flavor:Google header.");
    const audience = req.url.searchParams.get("audience");
    if (!audience) return void res.writeHead(400).end("non-empty audience parameter required");
    const token = await mint({ account: decodeURIComponent(m[1]!), audience });
    res.writeHead(200, { "content-type": "application/text", "metadata-flavor": "Google" }).end(token);
  });
  return { ...http, metadataUrl: `${http.origin}/computeMetadata/v1` };
}
