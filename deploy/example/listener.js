// A Socket.IO client that prints every event it receives, one JSON line
// each: the other end of an emitgate call. It joins the rooms in ROOM
// (comma-separated, default "user:42").
//
// Environment: SERVER_URL (default http://127.0.0.1:3000), ROOM, NAMESPACE ("/").
'use strict';

const { io } = require('socket.io-client');

const SERVER_URL = process.env.SERVER_URL || 'http://127.0.0.1:3000';
const ROOM = process.env.ROOM || 'user:42';
const NAMESPACE = process.env.NAMESPACE || '/';

const socket = io(SERVER_URL + NAMESPACE, { query: { room: ROOM }, transports: ['websocket'] });
socket.on('connect', () => console.log(JSON.stringify({ connected: socket.id, rooms: ROOM, namespace: NAMESPACE })));
socket.on('connect_error', (e) => console.log(JSON.stringify({ connect_error: e.message })));
socket.on('disconnect', (reason) => console.log(JSON.stringify({ disconnected: reason })));
socket.onAny((event, ...args) => {
  // Binary arguments arrive as Buffers: print them as base64.
  const shown = args.map((a) => (Buffer.isBuffer(a) ? { base64: a.toString('base64') } : a));
  console.log(JSON.stringify({ event, args: shown }));
});
process.on('SIGTERM', () => {
  socket.close();
  process.exit(0);
});
