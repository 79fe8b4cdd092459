'use strict';

// N real Socket.IO 4 servers sharing one Redis (or Redis Cluster) through a
// real adapter (classic or sharded @socket.io/redis-adapter, or
// @socket.io/redis-streams-adapter), plus the socket.io-client connections
// and the records the control API reads.

const { EventEmitter } = require('node:events');
const http = require('node:http');
const { Server } = require('socket.io');
const { io: connectClient } = require('socket.io-client');
const { createAdapter, createShardedAdapter } = require('@socket.io/redis-adapter');
const { createAdapter: createStreamsAdapter } = require('@socket.io/redis-streams-adapter');
const { createClient, createCluster } = require('redis');
const { log, encodeValue, decodeValue, waitUntil, withTimeout, HttpError, describeError } = require('./util');

// The sharded adapter's own MessagePack decoder, to notice payloads it would drop.
const notepack = require(require.resolve('notepack.io', { paths: [require.resolve('@socket.io/redis-adapter')] }));

const ADAPTERS = ['classic', 'sharded', 'streams'];
// The classic adapter's `parser` option: its default (notepack MessagePack), or JSON.
const PARSERS = ['msgpack', 'json'];
const JSON_PARSER = { encode: JSON.stringify, decode: JSON.parse };
const SUBSCRIPTION_MODES = ['static', 'dynamic', 'dynamic-private'];

// Server-side event of the stream readers' start-up check (see syncStreamReaders).
const STREAM_SYNC_EVENT = 'emitgate-harness-stream-sync';

// Connection-state recovery for the streams adapter (it is the reason to run it).
const RECOVERY = { maxDisconnectionDuration: 2 * 60 * 1000, skipMiddlewares: true };

// Namespace events that Socket.IO itself uses; a server-side listener on them
// would see sockets, not serverSideEmit arguments.
// The uid the gateway puts in the ClusterMessages it publishes.
const GATEWAY_UID = 'emitter';

const RESERVED_SERVER_EVENTS = new Set(['connect', 'connection', 'new_namespace']);

function normalizeNamespace(value) {
  if (value === undefined || value === null) return '/';
  if (typeof value !== 'string' || value.length === 0) {
    throw new HttpError(400, 'namespace must be a non-empty string such as "/" or "/admin"');
  }
  return value.startsWith('/') ? value : `/${value}`;
}

class Cluster {
  constructor({
    redisUrl,
    key,
    servers,
    adapter = 'classic',
    subscriptionMode = 'dynamic',
    redisCluster = false,
    streamName = 'socket.io',
    streamCount = 1,
    parser = 'msgpack',
  }) {
    if (!PARSERS.includes(parser)) throw new Error(`parser must be one of ${PARSERS.join(', ')}`);
    if (parser !== 'msgpack' && adapter !== 'classic') throw new Error('only the classic adapter has a parser option');
    if (!ADAPTERS.includes(adapter)) throw new Error(`adapter must be one of ${ADAPTERS.join(', ')}`);
    if (!SUBSCRIPTION_MODES.includes(subscriptionMode)) throw new Error(`subscription mode must be one of ${SUBSCRIPTION_MODES.join(', ')}`);
    this.redisUrl = redisUrl;
    this.key = key;
    this.serverCount = servers;
    this.adapterKind = adapter;
    this.subscriptionMode = subscriptionMode;
    this.redisCluster = redisCluster;
    this.streamName = streamName;
    this.streamCount = streamCount;
    this.parser = parser;
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

  // A killed server's clients report their own end: not an error.
  recordRedisError(index, role, err) {
    const server = this.servers[index];
    if (server && server.state === 'dead') return;
    this.recordError('redis', err, { server: index, client: role });
  }

  // ---- servers ----------------------------------------------------------

  async start() {
    for (let index = 0; index < this.serverCount; index++) {
      this.servers.push(await this.startServer(index));
    }
    await this.ensureNamespace('/');
    if (this.adapterKind === 'streams') await this.syncStreamReaders();
  }

  // A node-redis client, or a node-redis cluster client (createCluster) on the
  // seed URLs when --redis-cluster is set (the URL may list seeds, comma-separated).
  redisClientFor(index, role) {
    const client = this.redisCluster
      ? createCluster({ rootNodes: this.redisUrl.split(',').map((url) => ({ url: url.trim() })) })
      : createClient({ url: this.redisUrl });
    client.on('error', (err) => this.recordRedisError(index, role, err));
    return client;
  }

  adapterFactory(pub, sub) {
    switch (this.adapterKind) {
      case 'sharded':
        return createShardedAdapter(pub, sub, { channelPrefix: this.key, subscriptionMode: this.subscriptionMode });
      case 'streams':
        return createStreamsAdapter(pub, { streamName: this.streamName, streamCount: this.streamCount, channelPrefix: this.key });
      default:
        return createAdapter(pub, sub, { key: this.key, ...(this.parser === 'json' ? { parser: JSON_PARSER } : {}) });
    }
  }

  async startServer(index) {
    const httpServer = http.createServer();
    const streams = this.adapterKind === 'streams';
    const io = new Server(httpServer, { serveClient: false, ...(streams ? { connectionStateRecovery: RECOVERY } : {}) });
    const pub = this.redisClientFor(index, 'pub');
    // Every Redis client of this server, the adapters' own duplicates
    // included, so that killServer() can cut them all.
    const redisClients = new Set([pub]);
    const duplicate = pub.duplicate;
    pub.duplicate = function tracked(...args) {
      const copy = duplicate.apply(this, args);
      redisClients.add(copy);
      return copy;
    };
    // The streams adapter makes its own reading clients from pub.
    const sub = streams ? null : pub.duplicate();
    if (sub) sub.on('error', (err) => this.recordRedisError(index, 'sub', err));
    await Promise.all([pub.connect(), sub && sub.connect()]);
    const pendingSubscriptions = sub ? this.trackSubscriptions(index, sub) : new Set();
    io.adapter(this.guardedAdapter(index, this.adapterFactory(pub, sub)));
    const connections = new Set();
    httpServer.on('connection', (conn) => {
      connections.add(conn);
      conn.on('close', () => connections.delete(conn));
    });
    await new Promise((resolve, reject) => {
      httpServer.once('error', reject);
      httpServer.listen(0, '127.0.0.1', () => {
        httpServer.off('error', reject);
        resolve();
      });
    });
    const killed = new EventEmitter();
    killed.setMaxListeners(0);
    return {
      index,
      io,
      httpServer,
      pub,
      sub,
      pendingSubscriptions,
      port: httpServer.address().port,
      redisClients,
      connections,
      // Kill switch: 'alive', 'armed' (dies on the next gateway request) or 'dead'.
      state: 'alive',
      killed,
    };
  }

  // ---- killing a server ---------------------------------------------------

  // Kills server `index` as a SIGKILL of its process would: its Redis and
  // client TCP connections are destroyed without a word (no UNSUBSCRIBE, no
  // QUIT, no disconnect packet) and it handles nothing more. With
  // `when: "request"` the server is armed instead and dies when the next
  // request of the gateway reaches its adapter, before handling it: it was
  // counted by Redis as a receiver of that request and never answers.
  kill(body) {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, 'body must be a JSON object');
    const when = body.when === undefined ? 'now' : body.when;
    if (when !== 'now' && when !== 'request') throw new HttpError(400, 'when must be "now" or "request"');
    const server = this.serverAt(body.server);
    if (server.state === 'dead') throw new HttpError(409, `server ${server.index} is already dead`);
    if (when === 'now') this.killServer(server);
    else server.state = 'armed';
    return { server: server.index, state: server.state };
  }

  async waitKilled(index, { timeoutMs, signal }) {
    const server = this.serverAt(index);
    // Answers once the connections are cut, not merely once it stopped handling.
    const ok = await waitUntil(server.killed, () => server.cut, timeoutMs, signal);
    return { ok, body: { server: server.index, state: server.state } };
  }

  killServer(server) {
    server.state = 'dead';
    // A dead process runs nothing: from now on every command of its Redis
    // clients never settles (so the adapters' loops and session writes stop
    // quietly instead of failing), and its adapters drop what still arrives.
    const never = () => new Promise(() => {});
    const cuts = [];
    for (const client of server.redisClients) {
      cuts.push(client.disconnect.bind(client));
      // Every method of the client and its classes (commands, their
      // aliases, pub/sub, disconnect, quit), but not EventEmitter's.
      for (let proto = client; proto && proto !== EventEmitter.prototype; proto = Object.getPrototypeOf(proto)) {
        for (const name of Object.getOwnPropertyNames(proto)) {
          const d = Object.getOwnPropertyDescriptor(proto, name);
          if (name !== 'constructor' && d && typeof d.value === 'function') client[name] = never;
        }
      }
    }
    // Cut the connections on the next turn: this may run inside a Redis
    // client's reply callback, which must finish its chunk first.
    setImmediate(() => {
      for (const disconnect of cuts) Promise.resolve(disconnect()).catch(() => {});
      for (const conn of server.connections) conn.destroy();
      server.httpServer.close();
      server.cut = true;
      log(`server ${server.index} killed`);
      server.killed.emit('change');
    });
  }

  // Whether the adapter of server `index` should drop `message`: always once
  // the server is dead; an armed server dies on the gateway's next request.
  dropsMessage(index, isGatewayRequest) {
    const server = this.servers[index];
    if (!server || server.state === 'alive') return false;
    if (server.state === 'armed' && isGatewayRequest()) this.killServer(server);
    return server.state === 'dead';
  }

  // The adapters subscribe without waiting for Redis to confirm (the sharded
  // adapter SSUBSCRIBEs a room's channel when the room is created, in dynamic
  // modes). Keep each subscription's promise until it settles, so that
  // settleSubscriptions() can wait for all of them.
  trackSubscriptions(index, sub) {
    const cluster = this;
    const pending = new Set();
    for (const method of ['subscribe', 'pSubscribe', 'sSubscribe']) {
      const original = sub[method];
      if (typeof original !== 'function') continue;
      sub[method] = function tracked(...args) {
        const promise = Promise.resolve(original.apply(this, args));
        pending.add(promise);
        promise.then(
          () => pending.delete(promise),
          (err) => {
            pending.delete(promise);
            cluster.recordError('redis.subscribe', err, { server: index, method, channel: String(args[0]) });
          },
        );
        return promise;
      };
    }
    return pending;
  }

  async settleSubscriptions(server) {
    while (server.pendingSubscriptions.size) await Promise.allSettled([...server.pendingSubscriptions]);
  }

  // The streams adapter reads each stream from "$" once its reading client is
  // connected, so entries added before that are never read. Add a server-side
  // event entry to every stream until every server has read one from each.
  async syncStreamReaders(timeoutMs = 10000) {
    const streams =
      this.streamCount === 1 ? [this.streamName] : Array.from({ length: this.streamCount }, (_, i) => `${this.streamName}-${i}`);
    const seen = new Set();
    const changes = new EventEmitter();
    const handlers = this.servers.map((server) => {
      const handler = (streamIndex) => {
        seen.add(`${server.index}:${streamIndex}`);
        changes.emit('change');
      };
      server.io.of('/').on(STREAM_SYNC_EVENT, handler);
      return { server, handler };
    });
    const total = this.servers.length * streams.length;
    const deadline = Date.now() + timeoutMs;
    try {
      while (seen.size < total) {
        if (Date.now() > deadline) throw new Error(`the streams adapters did not read ${streams.join(', ')} within ${timeoutMs} ms`);
        for (const [i, stream] of streams.entries()) {
          if (this.servers.every((server) => seen.has(`${server.index}:${i}`))) continue;
          const data = JSON.stringify({ packet: [STREAM_SYNC_EVENT, i] });
          await this.servers[0].pub.xAdd(stream, '*', { uid: 'emitgate-harness', nsp: '/', type: '9', data });
        }
        await waitUntil(changes, () => seen.size >= total, 100);
      }
    } finally {
      for (const { server, handler } of handlers) server.io.of('/').off(STREAM_SYNC_EVENT, handler);
    }
  }

  // The classic adapter throws (or rejects) from inside the Redis client's
  // message callback when a message is malformed; in a plain server that is
  // an uncaught exception. Record it here, with the channel and payload, so
  // the Redis connection is not left mid-reply and tests can see it in /errors.
  // The sharded and streams adapters drop a payload they cannot decode
  // silently (a debug log); record that too, as `adapter.decode`.
  guardedAdapter(index, factory) {
    const cluster = this;
    const kind = this.adapterKind;
    return function adapterFor(nsp) {
      const adapter = factory(nsp);
      const guard = (method, channelIndex, messageIndex, check) => {
        const original = adapter[method];
        adapter[method] = function guarded(...args) {
          const context = () => ({
            server: index,
            namespace: nsp.name,
            channel: String(args[channelIndex]),
            payload_hex: Buffer.isBuffer(args[messageIndex])
              ? args[messageIndex].subarray(0, 512).toString('hex')
              : typeof args[messageIndex] === 'object'
                ? JSON.stringify(args[messageIndex]).slice(0, 1024)
                : String(args[messageIndex]).slice(0, 1024),
          });
          if (check) {
            try {
              check(...args);
            } catch (err) {
              cluster.recordError('adapter.decode', err, context());
            }
          }
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
      // The kill switch (see kill()): a dead server's adapter handles nothing.
      const killSwitch = (method, isGatewayRequest) => {
        const original = adapter[method];
        adapter[method] = function switched(...args) {
          if (cluster.dropsMessage(index, () => isGatewayRequest(...args))) return undefined;
          return original.apply(this, args);
        };
      };
      if (kind === 'classic') {
        killSwitch('onmessage', () => false);
        killSwitch('onrequest', (channel) => String(channel) === adapter.requestChannel);
      } else {
        // Decoded ClusterMessages, from pub/sub and from the stream; the
        // gateway's carry its uid.
        killSwitch('onMessage', (message) => Boolean(message) && message.uid === GATEWAY_UID);
      }
      if (kind === 'sharded') {
        // onRawMessage(rawMessage, channel): JSON when it starts with "{", else MessagePack.
        guard('onRawMessage', 1, 0, (raw) => (raw[0] === 0x7b ? JSON.parse(raw.toString()) : notepack.decode(raw)));
      } else if (kind === 'streams') {
        // onRawMessage(entryFields, offset): the adapter's own decoder.
        guard('onRawMessage', 1, 0, (raw) => adapter.constructor.decode(raw));
      } else {
        guard('onmessage', 1, 2); // onmessage(pattern, channel, msg)
        guard('onrequest', 0, 1); // onrequest(channel, msg)
      }
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
    const live = this.servers.filter((server) => server.state !== 'dead');
    await Promise.all(live.map((server) => this.syncSubscriptions(server)));
  }

  // The adapter subscribes without waiting for Redis to confirm. The sub
  // client sends commands in order, so once a later SUBSCRIBE of our own is
  // confirmed, the adapter's PSUBSCRIBE/SUBSCRIBE before it are active too.
  async syncSubscriptions(server) {
    await this.settleSubscriptions(server);
    // The streams adapter has no subscriptions of its own to wait for.
    if (!server.sub) return;
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
    // socket.data set by the server, as applications do after authenticating.
    const data = socket.handshake.auth && socket.handshake.auth.data;
    if (data !== undefined) socket.data = decodeValue(data);
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

    // `auth` and `headers` let a test prove that secrets never come back
    // from fetchSockets; `data` becomes the server's socket.data; `ack`
    // is how the client answers events sent with an ack callback:
    // {"reply": <value, $binary allowed>} or "never" (the default).
    const auth = { rooms };
    if (body.data !== undefined) auth.data = body.data;
    if (body.auth !== undefined && body.auth !== null && typeof body.auth === 'object') Object.assign(auth, body.auth, { rooms });
    const ack = body.ack === undefined ? 'never' : body.ack;
    const socket = connectClient(`http://127.0.0.1:${server.port}${namespace}`, {
      auth,
      ...(body.headers && typeof body.headers === 'object' ? { extraHeaders: body.headers } : {}),
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
      if (args.length && typeof args[args.length - 1] === 'function') {
        const callback = args.pop();
        if (ack !== 'never' && ack && typeof ack === 'object' && 'reply' in ack) callback(decodeValue(ack.reply));
      }
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
      // Room channels the join made the adapter subscribe (sharded, dynamic modes).
      await this.settleSubscriptions(server);
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

  // Also waits until the subscriptions the adapter made for these rooms are
  // confirmed (sharded adapter, dynamic modes), so that a message published on
  // a room's channel after this answer reaches the server.
  async clientRooms(id) {
    const record = this.client(id);
    const server = this.servers[record.server];
    await this.settleSubscriptions(server);
    const nsp = server.io.of(record.namespace);
    const socket = nsp.sockets.get(record.sid);
    return { rooms: socket ? [...socket.rooms] : [], connected: Boolean(socket) };
  }

  // Closes the client's transport as a network failure would (the server sees
  // "transport close", so with connection-state recovery it keeps the
  // session), and waits until both sides consider the socket disconnected.
  async dropClient(id, timeoutMs = 5000) {
    const record = this.client(id);
    if (!record.connected) throw new HttpError(409, `client ${id} is not connected`);
    const key = `${record.server}\0${record.namespace}\0${record.sid}`;
    record.socket.io.engine.close();
    const serverSide = await waitUntil(this.serverChanges, () => !this.serverSockets.has(key), timeoutMs);
    const clientSide = await waitUntil(record.changes, () => !record.connected, timeoutMs);
    if (!serverSide || !clientSide) throw new HttpError(504, `client ${id} was not disconnected within ${timeoutMs} ms`);
    return { id, reason: record.disconnectReason };
  }

  // Reconnects a dropped client on the same manager: socket.io-client sends
  // its session id and last offset, and the server restores the session when
  // it can. Answers once connected: {"id","sid","recovered"}.
  async reconnectClient(id, timeoutMs = 5000) {
    const record = this.client(id);
    if (record.connected) throw new HttpError(409, `client ${id} is connected`);
    const { socket } = record;
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new HttpError(504, `client ${id} did not reconnect within ${timeoutMs} ms`));
      }, timeoutMs);
      const onConnect = () => {
        cleanup();
        resolve();
      };
      const onError = (err) => {
        cleanup();
        reject(new HttpError(502, `client ${id} could not reconnect: ${err.message}`));
      };
      const cleanup = () => {
        clearTimeout(timer);
        socket.off('connect', onConnect);
        socket.off('connect_error', onError);
      };
      socket.on('connect', onConnect);
      socket.on('connect_error', onError);
      socket.connect();
    });
    record.connected = true;
    record.disconnectReason = null;
    record.sid = socket.id;
    record.changes.emit('change');
    const key = `${record.server}\0${record.namespace}\0${socket.id}`;
    const joined = await waitUntil(this.serverChanges, () => this.serverSockets.has(key), timeoutMs);
    if (!joined) throw new HttpError(504, `server ${record.server} did not register socket ${socket.id} within ${timeoutMs} ms`);
    await this.settleSubscriptions(this.servers[record.server]);
    return { id, sid: socket.id, recovered: Boolean(socket.recovered) };
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
      const entry = { namespace, event, events: [], changes: new EventEmitter(), handlers: [], replies: new Map() };
      entry.changes.setMaxListeners(0);
      for (const server of this.servers) {
        const handler = (...args) => {
          let callback = null;
          while (args.length && typeof args[args.length - 1] === 'function') callback = args.pop(); // ack callback
          if (callback && entry.replies.has(server.index)) callback(decodeValue(entry.replies.get(server.index)));
          entry.events.push({ server: server.index, args: encodeValue(args) });
          entry.changes.emit('change');
        };
        server.io.of(namespace).on(event, handler);
        entry.handlers.push({ server, handler });
      }
      this.listeners.set(key, entry);
    }
    // {"reply": <value>, "servers": [0, 1]}: those servers' handlers call
    // the serverSideEmit callback with the value (default: every server);
    // without `reply` the handlers never call it.
    if (body.reply !== undefined) {
      const entry = this.listeners.get(key);
      const servers = Array.isArray(body.servers) ? body.servers : this.servers.map((s) => s.index);
      for (const index of servers) entry.replies.set(index, body.reply);
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
        if (server.state === 'dead') return;
        await withTimeout(server.io.close(), 2000, 'io.close timed out').catch(() => {});
        await Promise.all(
          [server.pub, server.sub].filter(Boolean).map((client) =>
            withTimeout(client.quit(), 1000, 'quit timed out').catch(() => client.disconnect().catch(() => {})),
          ),
        );
      }),
    );
  }
}

module.exports = { Cluster, normalizeNamespace, ADAPTERS, PARSERS, SUBSCRIPTION_MODES };
