// An HTTP/2 cleartext server on Node's own http2 module (the one under the TypeScript SDK's
// endpoint().listen()), for tests/test_h2c.py: each path plays one behaviour the client must
// handle. Prints its port, then serves until killed.
//   node tests/support/h2_server.js
const http2 = require("node:http2");

let sessions = 0;
const server = http2.createServer({ settings: { maxConcurrentStreams: Number(process.env.MAX_STREAMS || 1000) } });
server.on("session", (session) => {
  session.number = ++sessions;
  session.on("error", () => {});
});
server.on("stream", (stream, headers) => {
  stream.on("error", () => {});  // a reset by the client (or after ours): nothing to do here
  const path = headers[":path"];
  const session = String(stream.session.number);
  if (path === "/echo") {
    // Full duplex: every chunk goes back as it arrives, before the request ends.
    stream.respond({ ":status": 200, "x-session": session, "x-request-header-bytes": String((headers["x-big"] || "").length) });
    stream.on("data", (chunk) => stream.write(chunk));
    stream.on("end", () => stream.end());
  } else if (path === "/count") {
    // The request's length, once it ended: a body larger than the server's window arrived whole.
    let length = 0;
    stream.on("data", (chunk) => { length += chunk.length; });
    stream.on("end", () => { stream.respond({ ":status": 200 }); stream.end(String(length)); });
  } else if (path === "/big") {
    const size = Number(headers["x-size"]);
    stream.respond({ ":status": 200, "x-big": "h".repeat(Number(headers["x-header-size"] || 0)) });
    stream.end(Buffer.alloc(size, 7));
  } else if (path === "/early") {
    // The response ends before the request does.
    stream.respond({ ":status": 202 }, { endStream: true });
  } else if (path === "/trailers") {
    stream.respond({ ":status": 200 }, { waitForTrailers: true });
    stream.on("wantTrailers", () => stream.sendTrailers({ "x-trailer": "yes" }));
    stream.end("body");
  } else if (path === "/reset") {
    // A reset in the middle of the body.
    stream.respond({ ":status": 200 });
    stream.write("partial", () => stream.destroy(new Error("reset by the test server")));
  } else if (path === "/goaway") {
    // The connection is ending: this stream still completes, new ones go elsewhere.
    stream.session.goaway(http2.constants.NGHTTP2_NO_ERROR);
    stream.respond({ ":status": 200, "x-session": session });
    stream.end("bye");
    stream.session.close();
  } else if (path === "/drop") {
    stream.respond({ ":status": 200 });
    stream.write("partial", () => stream.session.destroy());
  } else {
    stream.respond({ ":status": 404 });
    stream.end("no such path");
  }
});
server.listen(0, "127.0.0.1", () => console.log(server.address().port));
process.on("SIGTERM", () => process.exit(0));
