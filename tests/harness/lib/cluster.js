'use strict';

// N real Socket.IO 4 servers sharing one Redis through @socket.io/redis-adapter,
// plus the socket.io-client connections and the records the control API reads.

const { EventEmitter } = require('node:events');
const http = require('node:http');
const { Server } = require('socket.io');
const { io: connectClient } = require('socket.io-client');
const { createAdapter } = require('@socket.io/redis-adapter');
const { createClient } = require('redis');
const { log, encodeValue, waitUntil, withTimeout, HttpError, describeError } = require('./util');

// Namespace events that Socket.IO itself uses; a server-side listener on them
// would see sockets, not serverSideEmit arguments.
const RESERVED_SERVER_EVENTS = new Set(['connect', 'connection', 'new_namespace']);

function normalizeNamespace(value) {
  if (value === undefined || value === null) return '/';
  if (typeof value !== 'string' || value.length === 0) {
    throw new HttpError(400, 'namespace must be a non-empty string such as "/" or "/admin"');
  }
  return value.startsWith('/') ? value : `/${value}`;
}

class Cluster {
  constructor({ redisUrl, key, servers }) {
    this.redisUrl = redisUrl;
    this.key = key;
    this.serverCount = servers;
    this.servers = [];
    this.namespaces = new Map(); // name -> Promise<void> (set up on every server)
    this.clients = new Map(); // id -> client record
    this.nextClientId = 1;
    this.listeners = new Map(); // `${ns}\0${event}` -> { events, changes, handlers }
    this.errors = [];
    this.serverSockets = new Set(); // `${server}\0${ns}\0${sid}` once the connection handler ran
    this.serverChanges = new EventEmitter();
    this.serverChanges.setMaxListeners(0);
    this.syncSeq = 0;
  }

  // ---- errors -----------------------------------------------------------

  recordError(kind, err, context = {}) {
    const { message, stack } = describeError(err);
    const entry = { kind, message, stack, time: new Date().toISOString(), ...context };
    this.errors.push(entry);
    const where = Object.entries(context)
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
      .join(' ');
    log(`ERROR (${kind}${where ? ` ${where}` : ''}): ${stack}`);
  }

  // ---- servers ----------------------------------------------------------

  async start() {
    for (let index = 0; index < this.serverCount; index++) {
      this.servers.push(await this.startServer(index));
    }
    await this.ensureNamespace('/');
  }

  redisClientFor(index, role) {
    const client = createClient({ url: this.redisUrl });
    client.on('error', (err) => this.recordError('redis', err, { server: index, client: role }));
    return client;
  }

  async startServer(index) {
    const httpServer = http.createServer();
    const io = new Server(httpServer, { serveClient: false });
    const pub = this.redisClientFor(index, 'pub');
    const sub = pub.duplicate();
    sub.on('error', (err) => this.recordError('redis', err, { server: index, client: 'sub' }));
    await Promise.all([pub.connect(), sub.connect()]);
    io.adapter(this.guardedAdapter(index, createAdapter(pub, sub, { key: this.key })));
    await new Promise((resolve, reject) => {
      httpServer.once('error', reject);
      httpServer.listen(0, '127.0.0.1', () => {
        httpServer.off('error', reject);
        resolve();
      });
    });
    return { index, io, httpServer, pub, sub, port: httpServer.address().port };
  }

  // The classic adapter throws (or rejects) from inside the Redis client's
  // message callback when a message is malformed; in a plain server that is
  // an uncaught exception. Record it here, with the channel and payload, so
  // the Redis connection is not left mid-reply and tests can see it in /errors.
  guardedAdapter(index, factory) {
    const cluster = this;
    return function adapterFor(nsp) {
      const adapter = factory(nsp);
      const guard = (method, channelIndex, messageIndex) => {
        const original = adapter[method];
        adapter[method] = function guarded(...args) {
          const context = () => ({
            server: index,
            namespace: nsp.name,
            channel: String(args[channelIndex]),
            payload_hex: Buffer.isBuffer(args[messageIndex])
              ? args[messageIndex].subarray(0, 512).toString('hex')
              : String(args[messageIndex]).slice(0, 1024),
          });
          try {
            const result = original.apply(this, args);
            if (result && typeof result.then === 'function') {
              result.then(undefined, (err) => cluster.recordError(`adapter.${method}`, err, context()));
            }
            return undefined;
          } catch (err) {
            cluster.recordError(`adapter.${method}`, err, context());
            return undefined;
          }
        };
      };
      guard('onmessage', 1, 2); // onmessage(pattern, channel, msg)
      guard('onrequest', 0, 1); // onrequest(channel, msg)
      return adapter;
    };
  }

  serverAt(index) {
    if (!Number.isInteger(index) || index < 0 || index >= this.servers.length) {
      throw new HttpError(400, `server must be an integer from 0 to ${this.servers.length - 1}`);
    }
    return this.servers[index];
  }

  // Creates the namespace on every server (once) and waits until every
  // server's adapter has its Redis subscriptions for it in place.
  ensureNamespace(name) {
    let ready = this.namespaces.get(name);
    if (!ready) {
      ready = this.setUpNamespace(name);
      this.namespaces.set(name, ready);
      ready.catch(() => this.namespaces.delete(name));
    }
    return ready;
  }

  async setUpNamespace(name) {
    for (const server of this.servers) {
      const nsp = server.io.of(name);
      nsp.on('connection', (socket) => this.onConnection(server.index, name, socket));
    }
    await Promise.all(this.servers.map((server) => this.syncSubscriptions(server)));
  }

  // The adapter subscribes without waiting for Redis to confirm. The sub
  // client sends commands in order, so once a later SUBSCRIBE of our own is
  // confirmed, the adapter's PSUBSCRIBE/SUBSCRIBE before it are active too.
  async syncSubscriptions(server) {
    const channel = `emitgate-harness-sync#${server.index}#${++this.syncSeq}`;
    const noop = () => {};
    await withTimeout(server.sub.subscribe(channel, noop), 5000, `server ${server.index}: SUBSCRIBE not confirmed within 5 s`);
    await withTimeout(server.sub.unsubscribe(channel, noop), 5000, `server ${server.index}: UNSUBSCRIBE not confirmed within 5 s`);
  }

  onConnection(index, namespace, socket) {
    // Join the requested rooms before anything else happens on this socket.
    const rooms = socket.handshake.auth && socket.handshake.auth.rooms;
    if (Array.isArray(rooms)) {
      const names = rooms.filter((room) => typeof room === 'string');
      if (names.length) socket.join(names);
    }
    const key = `${index}\0${namespace}\0${socket.id}`;
    this.serverSockets.add(key);
    socket.on('disconnect', () => {
      this.serverSockets.delete(key);
      this.serverChanges.emit('change');
    });
    this.serverChanges.emit('change');
  }

  // ---- clients ----------------------------------------------------------

  async createClient(body, timeoutMs = 5000) {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new HttpError(400, 'body must be a JSON object like {"namespace":"/","server":0,"rooms":["a"]}');
    }
    const namespace = normalizeNamespace(body.namespace);
    const server = this.serverAt(body.server === undefined ? 0 : body.server);
    const rooms = body.rooms === undefined ? [] : body.rooms;
    if (!Array.isArray(rooms) || rooms.some((room) => typeof room !== 'string')) {
      throw new HttpError(400, 'rooms must be an array of strings');
    }
    await this.ensureNamespace(namespace);

    const socket = connectClient(`http://127.0.0.1:${server.port}${namespace}`, {
      auth: { rooms },
      reconnection: false,
      transports: ['websocket'],
      forceNew: true,
    });
    const record = {
      id: null,
      namespace,
      server: server.index,
      socket,
      sid: null,
      events: [],
      connected: false,
      disconnectReason: null,
      changes: new EventEmitter(),
    };
    record.changes.setMaxListeners(0);
    socket.onAny((event, ...args) => {
      record.events.push({ event, args: encodeValue(args) });
      record.changes.emit('change');
    });
    socket.on('disconnect', (reason) => {
      record.connected = false;
      record.disconnectReason = reason;
      record.changes.emit('change');
    });

    try {
      await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new HttpError(504, `client did not connect within ${timeoutMs} ms`)), timeoutMs);
        socket.once('connect', () => {
          clearTimeout(timer);
          resolve();
        });
        socket.once('connect_error', (err) => {
          clearTimeout(timer);
          reject(new HttpError(502, `client could not connect: ${err.message}`));
        });
      });
      record.connected = true;
      record.sid = socket.id;
      const key = `${server.index}\0${namespace}\0${socket.id}`;
      const joined = await waitUntil(this.serverChanges, () => this.serverSockets.has(key), timeoutMs);
      if (!joined) throw new HttpError(504, `server ${server.index} did not register socket ${socket.id} within ${timeoutMs} ms`);
    } catch (err) {
      socket.close();
      throw err;
    }
    record.id = `c${this.nextClientId++}`;
    this.clients.set(record.id, record);
    return { id: record.id, sid: record.sid };
  }

  client(id) {
    const record = this.clients.get(id);
    if (!record) throw new HttpError(404, `unknown client ${JSON.stringify(id)}`);
    return record;
  }

  static clientView(record) {
    return { events: record.events, connected: record.connected, disconnect_reason: record.disconnectReason };
  }

  listClients() {
    return [...this.clients.values()].map((r) => ({
      id: r.id,
      sid: r.sid,
      namespace: r.namespace,
      server: r.server,
      connected: r.connected,
      disconnect_reason: r.disconnectReason,
      events: r.events.length,
    }));
  }

  // Waits until `count` events named `until` arrived (or, without `until`,
  // `count` events in all). Returns { ok, body }. A disconnected client gets
  // no more events, so the answer comes at once instead of at the timeout.
  async clientEvents(id, { until, count, timeoutMs, signal }) {
    const record = this.client(id);
    const wanted = count === undefined ? (until === undefined ? 0 : 1) : count;
    const check = () => {
      const n = until === undefined ? record.events.length : record.events.filter((e) => e.event === until).length;
      return n >= wanted || !record.connected;
    };
    await waitUntil(record.changes, check, timeoutMs, signal);
    const n = until === undefined ? record.events.length : record.events.filter((e) => e.event === until).length;
    return { ok: n >= wanted, body: Cluster.clientView(record) };
  }

  async clientDisconnect(id, { timeoutMs, signal }) {
    const record = this.client(id);
    const ok = await waitUntil(record.changes, () => !record.connected, timeoutMs, signal);
    return { ok, body: { reason: record.disconnectReason } };
  }

  clientRooms(id) {
    const record = this.client(id);
    const nsp = this.servers[record.server].io.of(record.namespace);
    const socket = nsp.sockets.get(record.sid);
    return { rooms: socket ? [...socket.rooms] : [], connected: Boolean(socket) };
  }

  // Disconnects the client and waits until its server has dropped the socket.
  async closeClient(record, timeoutMs = 5000) {
    const key = `${record.server}\0${record.namespace}\0${record.sid}`;
    if (record.connected || record.socket.connected) record.socket.disconnect();
    await waitUntil(this.serverChanges, () => !this.serverSockets.has(key), timeoutMs);
  }

  async deleteClient(id) {
    const record = this.client(id);
    await this.closeClient(record);
    this.clients.delete(id);
    return { id, reason: record.disconnectReason };
  }

  // ---- server-side listeners ----------------------------------------------

  async listen(body) {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new HttpError(400, 'body must be a JSON object like {"namespace":"/","event":"hello"}');
    }
    const namespace = normalizeNamespace(body.namespace);
    const { event } = body;
    if (typeof event !== 'string' || event.length === 0) throw new HttpError(400, 'event must be a non-empty string');
    if (RESERVED_SERVER_EVENTS.has(event)) throw new HttpError(400, `"${event}" is a reserved namespace event and cannot be listened to`);
    await this.ensureNamespace(namespace);
    const key = `${namespace}\0${event}`;
    if (!this.listeners.has(key)) {
      const entry = { namespace, event, events: [], changes: new EventEmitter(), handlers: [] };
      entry.changes.setMaxListeners(0);
      for (const server of this.servers) {
        const handler = (...args) => {
          while (args.length && typeof args[args.length - 1] === 'function') args.pop(); // ack callback
          entry.events.push({ server: server.index, args: encodeValue(args) });
          entry.changes.emit('change');
        };
        server.io.of(namespace).on(event, handler);
        entry.handlers.push({ server, handler });
      }
      this.listeners.set(key, entry);
    }
    return { namespace, event };
  }

  async serverEvents({ namespace: rawNamespace, event, count, timeoutMs, signal }) {
    const namespace = normalizeNamespace(rawNamespace);
    if (typeof event !== 'string' || event.length === 0) throw new HttpError(400, 'event query parameter is required');
    const entry = this.listeners.get(`${namespace}\0${event}`);
    if (!entry) {
      throw new HttpError(404, `no listener for event ${JSON.stringify(event)} in namespace ${JSON.stringify(namespace)}; POST /listen first`);
    }
    const wanted = count === undefined ? 1 : count;
    const ok = await waitUntil(entry.changes, () => entry.events.length >= wanted, timeoutMs, signal);
    return { ok, body: { events: entry.events } };
  }

  // ---- reset / shutdown -------------------------------------------------

  async reset() {
    const records = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(records.map((record) => this.closeClient(record)));
    for (const entry of this.listeners.values()) {
      for (const { server, handler } of entry.handlers) server.io.of(entry.namespace).off(entry.event, handler);
    }
    this.listeners.clear();
    return { ok: true, closed: records.length };
  }

  async close() {
    for (const record of this.clients.values()) record.socket.disconnect();
    this.clients.clear();
    await Promise.all(
      this.servers.map(async (server) => {
        await withTimeout(server.io.close(), 2000, 'io.close timed out').catch(() => {});
        await Promise.all(
          [server.pub, server.sub].map((client) =>
            withTimeout(client.quit(), 1000, 'quit timed out').catch(() => client.disconnect().catch(() => {})),
          ),
        );
      }),
    );
  }
}

module.exports = { Cluster, normalizeNamespace };
