'use strict';

// A TLS-terminating HTTP/2 proxy in front of the plaintext gateway, as a load
// balancer would be: it checks the client certificate against the CA and
// forwards every stream, headers, body and trailers, to the gateway.
// Usage: node tls-proxy.js UPSTREAM_HOST:PORT KEY CERT CA
// Prints the port it listens on, and exits when its stdin closes.

const http2 = require('http2');
const fs = require('fs');

const [upstream, key, cert, ca] = process.argv.slice(2);
const gateway = http2.connect(`http://${upstream}`);
gateway.on('error', (err) => console.error(`upstream: ${err.message}`));

const server = http2.createSecureServer({
  key: fs.readFileSync(key),
  cert: fs.readFileSync(cert),
  ca: fs.readFileSync(ca),
  requestCert: true,
  rejectUnauthorized: true,
});

server.on('stream', (stream, headers) => {
  const forwarded = {};
  for (const [name, value] of Object.entries(headers)) {
    if (name !== ':authority' && name !== ':scheme') forwarded[name] = value;
  }
  const up = gateway.request(forwarded);
  let trailers = {};
  stream.pipe(up);
  up.on('response', (response) => {
    const out = { ...response };
    if ('grpc-status' in response) {
      stream.respond(out, { endStream: true }); // trailers-only stays trailers-only
      return;
    }
    stream.respond(out, { waitForTrailers: true });
    up.pipe(stream);
  });
  up.on('trailers', (t) => {
    trailers = { ...t };
  });
  stream.on('wantTrailers', () => stream.sendTrailers(trailers));
  up.on('error', () => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR));
  stream.on('error', () => up.close(http2.constants.NGHTTP2_CANCEL));
});
server.on('error', (err) => console.error(`proxy: ${err.message}`));

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${server.address().port}\n`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
