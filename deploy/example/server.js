// A Socket.IO 4 server sharing its rooms through @socket.io/redis-adapter:
// the kind of cluster emitgate publishes into. Run several and they act as
// one. A client joins the rooms named in its `room` query parameter
// (comma-separated), e.g. http://localhost:3000/?room=user:42.
//
// Environment: REDIS_URL (default redis://127.0.0.1:6379), PORT (3000),
// KEY (the adapter's key, default "socket.io": emitgate's target `key`).
'use strict';

const { createServer } = require('node:http');
const { readFileSync } = require('node:fs');
const path = require('node:path');
const { Server } = require('socket.io');
const { createAdapter } = require('@socket.io/redis-adapter');
const { createClient } = require('redis');

const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const PORT = Number(process.env.PORT || 3000);
const KEY = process.env.KEY || 'socket.io';
const PAGE = readFileSync(path.join(__dirname, 'index.html'));

async function main() {
  const pub = createClient({ url: REDIS_URL });
  const sub = pub.duplicate();
  for (const c of [pub, sub]) c.on('error', (e) => console.error('redis:', e.message));
  await Promise.all([pub.connect(), sub.connect()]);

  const http = createServer((req, res) => {
    if (req.url === '/' || req.url.startsWith('/?')) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(PAGE);
    } else {
      res.writeHead(404).end();
    }
  });
  const io = new Server(http, { adapter: createAdapter(pub, sub, { key: KEY }) });

  io.on('connection', (socket) => {
    const rooms = String(socket.handshake.query.room || '').split(',').filter(Boolean);
    socket.join(rooms);
    console.log(`client ${socket.id} connected, rooms: ${rooms.join(', ') || '(none)'}`);
    socket.on('disconnect', (reason) => console.log(`client ${socket.id} disconnected: ${reason}`));
  });
  // What emitgate's ServerSideEmit with event "hello" reaches.
  io.on('hello', (...args) => console.log('server-side event hello:', JSON.stringify(args)));

  http.listen(PORT, () => console.log(`socket.io listening on :${PORT}, adapter on ${REDIS_URL} (key ${KEY})`));
  const stop = () => io.close(() => Promise.all([pub.quit(), sub.quit()]).finally(() => process.exit(0)));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
