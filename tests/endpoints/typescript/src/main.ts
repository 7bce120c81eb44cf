// Serves the test services in one of the ways Restate reaches an endpoint:
//   node build/main.js MODE PORT
//   h2       restate.endpoint().listen(PORT): HTTP/2 cleartext, BIDI_STREAM
//   h2-rr    http2.createServer(endpoint.http2Handler({ bidirectional: false })): REQUEST_RESPONSE
//   h1       http.createServer(endpoint.http1Handler()): HTTP/1.1, REQUEST_RESPONSE
//   h1-bidi  http.createServer(endpoint.http1Handler({ bidirectional: true })): HTTP/1.1, BIDI_STREAM
// $RESTATE_IDENTITY_KEYS (comma-separated publickeyv1_... keys) makes the endpoint verify requests.
import * as restate from "@restatedev/restate-sdk";
import * as http from "node:http";
import * as http2 from "node:http2";
import { ALL } from "./services";

const [mode, portArg] = process.argv.slice(2);
const port = Number(portArg);
if (!["h2", "h2-rr", "h1", "h1-bidi"].includes(mode) || !Number.isInteger(port)) {
  console.error("usage: main.js h2|h2-rr|h1|h1-bidi PORT");
  process.exit(2);
}

const endpoint = restate.endpoint();
for (const service of ALL) endpoint.bind(service);
const keys = (process.env.RESTATE_IDENTITY_KEYS ?? "").split(",").filter((key) => key !== "");
if (keys.length > 0) endpoint.withIdentityV1(...keys);

function serve(server: http.Server | http2.Http2Server) {
  server.listen(port, "127.0.0.1", () => console.log(`listening on ${port} (${mode})`));
}

if (mode === "h2") {
  endpoint.listen(port).then((bound) => console.log(`listening on ${bound} (${mode})`));
} else if (mode === "h2-rr") {
  serve(http2.createServer(endpoint.http2Handler({ bidirectional: false })));
} else {
  serve(http.createServer(endpoint.http1Handler({ bidirectional: mode === "h1-bidi" })));
}
// A clean stop on SIGTERM: the servers keep the event loop alive otherwise.
process.on("SIGTERM", () => process.exit(0));
