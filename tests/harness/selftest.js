'use strict';

// Self-test of the fixture: starts stack.js as a child process (like the SDK
// test suites do) and publishes hand-built @socket.io/redis-emitter packets
// with a plain Redis client. Run with `npm test` in this directory.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { createClient } = require('redis');

const STACK = path.join(__dirname, 'stack.js');

// ---- a minimal msgpack encoder (enough for emitter packets) ----------------

function mp(value) {
  if (value === null) return Buffer.from([0xc0]);
  if (value === true) return Buffer.from([0xc3]);
  if (value === false) return Buffer.from([0xc2]);
  if (Buffer.isBuffer(value)) {
    assert.ok(value.length < 256);
    return Buffer.concat([Buffer.from([0xc4, value.length]), value]);
  }
  if (typeof value === 'number') {
    assert.ok(Number.isInteger(value) && value >= 0 && value < 128, 'only positive fixints');
    return Buffer.from([value]);
  }
  if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8');
    const head = bytes.length < 32 ? Buffer.from([0xa0 | bytes.length]) : Buffer.from([0xd9, bytes.length]);
    return Buffer.concat([head, bytes]);
  }
  if (Array.isArray(value)) {
    assert.ok(value.length < 16);
    return Buffer.concat([Buffer.from([0x90 | value.length]), ...value.map(mp)]);
  }
  const entries = Object.entries(value);
  assert.ok(entries.length < 16);
  return Buffer.concat([Buffer.from([0x80 | entries.length]), ...entries.flatMap(([k, v]) => [mp(k), mp(v)])]);
}

// Equivalent of @socket.io/redis-emitter's BroadcastOperator.emit.
function emitterPacket(nsp, rooms, event, ...args) {
  return mp(['emitter', { type: 2, data: [event, ...args], nsp }, { rooms, flags: {}, except: [] }]);
}

// io.to("room1").emit("chat message", "hello") from the real emitter 5.1.0.
const CANONICAL_ROOM1 = Buffer.from(
  '93a7656d697474657283a47479706502a46461746192ac63686174206d657373616765a568656c6c6fa36e7370a12f83a5726f6f6d7391a5726f6f6d31a5666c61677380a665786365707490',
  'hex',
);

// ---- driving stack.js ---------------------------------------------------------

function startStack(args = [], { timeoutMs = 10000 } = {}) {
  const proc = spawn(process.execPath, [STACK, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (chunk) => {
    stderr += chunk;
    if (process.env.HARNESS_VERBOSE) process.stderr.write(chunk);
  });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const ready = new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`stack not ready after ${timeoutMs} ms\n${stderr}`)), timeoutMs);
    proc.stdout.on('data', (chunk) => {
      out += chunk;
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(JSON.parse(out.slice(0, nl)));
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(Object.assign(new Error(`stack exited (${code ?? signal}) before ready\n${stderr}`), { code }));
    });
  });
  return { proc, ready, exited, stderr: () => stderr };
}

function apiFor(control) {
  return async (method, route, body, { raw } = {}) => {
    const res = await fetch(control + route, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : raw ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
}

function accepts(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

function pidAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// ---- the shared stack --------------------------------------------------------

let stack;
let info;
let api;
let redis;
const ids = {};

async function barrier(name = 'barrier') {
  await redis.publish('socket.io#/#', emitterPacket('/', [], name));
}

before(async () => {
  // No startup-time assertion: speed is measured in `make bench`, and a
  // loaded machine is no reason for a red test.
  stack = startStack();
  info = await stack.ready;
  api = apiFor(info.control);
  redis = createClient({ url: info.redis_url });
  await redis.connect();
});

after(async () => {
  if (redis) await redis.quit().catch(() => {});
  if (stack && stack.proc.exitCode === null) stack.proc.kill('SIGKILL');
});

test('the ready line has the documented shape', async () => {
  assert.deepEqual(Object.keys(info), ['control', 'redis_url', 'grpc', 'servers']);
  assert.match(info.control, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.match(info.redis_url, /^redis:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(info.grpc, null);
  assert.equal(info.servers.length, 2);
  assert.deepEqual((await api('GET', '/info')).body, info);
  assert.deepEqual((await api('GET', '/errors')).body, { errors: [] });
});

test('the test encoder reproduces the emitter bytes', () => {
  assert.equal(emitterPacket('/', ['room1'], 'chat message', 'hello').toString('hex'), CANONICAL_ROOM1.toString('hex'));
});

test('a room emit reaches the room members on every server and nobody else', async () => {
  const specs = {
    in0: { namespace: '/', server: 0, rooms: ['room1'] },
    in1: { namespace: '/', server: 1, rooms: ['room1', 'room2'] },
    out0: { namespace: '/', server: 0, rooms: [] },
    out1: { namespace: '/', server: 1, rooms: ['room2'] },
  };
  for (const [name, spec] of Object.entries(specs)) {
    const res = await api('POST', '/clients', spec);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.match(res.body.id, /^c\d+$/);
    assert.equal(typeof res.body.sid, 'string');
    ids[name] = res.body;
  }
  const rooms = await api('GET', `/clients/${ids.in1.id}/rooms`);
  assert.equal(rooms.status, 200);
  assert.deepEqual([...rooms.body.rooms].sort(), [ids.in1.sid, 'room1', 'room2'].sort());

  await redis.publish('socket.io#/#room1#', CANONICAL_ROOM1);
  await barrier();

  for (const name of ['in0', 'in1']) {
    const res = await api('GET', `/clients/${ids[name].id}/events?until=barrier&timeout_ms=5000`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body, {
      events: [
        { event: 'chat message', args: ['hello'] },
        { event: 'barrier', args: [] },
      ],
      connected: true,
      disconnect_reason: null,
    });
  }
  for (const name of ['out0', 'out1']) {
    const res = await api('GET', `/clients/${ids[name].id}/events?until=barrier&timeout_ms=5000`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body.events, [{ event: 'barrier', args: [] }]);
  }
});

test('binary values anywhere in the args arrive as $binary', async () => {
  const bin = Buffer.from([1, 2, 3]);
  await redis.publish('socket.io#/#', emitterPacket('/', [], 'file', bin, { b: bin, arr: [bin, 'x'] }));
  const res = await api('GET', `/clients/${ids.out1.id}/events?until=file`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const got = res.body.events.find((e) => e.event === 'file');
  assert.deepEqual(got.args, [{ $binary: 'AQID' }, { b: { $binary: 'AQID' }, arr: [{ $binary: 'AQID' }, 'x'] }]);
});

test('namespaces are created on demand on every server', async () => {
  const res = await api('POST', '/clients', { namespace: '/admin', server: 1 });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  ids.admin = res.body;
  await redis.publish('socket.io#/admin#', emitterPacket('/admin', [], 'hi', 7));
  const got = await api('GET', `/clients/${ids.admin.id}/events?count=1`);
  assert.equal(got.status, 200, JSON.stringify(got.body));
  assert.deepEqual(got.body.events, [{ event: 'hi', args: [7] }]);
});

test('serverSideEmit from the emitter reaches the listeners of every server', async () => {
  const listen = await api('POST', '/listen', { namespace: '/', event: 'hello' });
  assert.equal(listen.status, 200, JSON.stringify(listen.body));
  await redis.publish('socket.io-request#/#', JSON.stringify({ uid: 'emitter', type: 6, data: ['hello', 'world', 1] }));
  const res = await api('GET', '/server-events?namespace=/&event=hello&count=2&timeout_ms=5000');
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const events = [...res.body.events].sort((a, b) => a.server - b.server);
  assert.deepEqual(events, [
    { server: 0, args: ['world', 1] },
    { server: 1, args: ['world', 1] },
  ]);
});

test('a disconnectSockets request disconnects the room members only', async () => {
  await redis.publish('socket.io-request#/#', JSON.stringify({ type: 4, opts: { rooms: ['room1'], except: [] }, close: false }));
  for (const name of ['in0', 'in1']) {
    const res = await api('GET', `/clients/${ids[name].id}/disconnect?timeout_ms=5000`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body, { reason: 'io server disconnect' });
  }
  await barrier('barrier2');
  for (const name of ['out0', 'out1']) {
    const res = await api('GET', `/clients/${ids[name].id}/events?until=barrier2`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.connected, true);
  }
  const rooms = await api('GET', `/clients/${ids.in0.id}/rooms`);
  assert.deepEqual(rooms.body, { rooms: [], connected: false });
  // A disconnected client gets nothing more: the answer does not wait for the timeout.
  const t0 = Date.now();
  const none = await api('GET', `/clients/${ids.in0.id}/events?until=never&timeout_ms=10000`);
  assert.equal(none.status, 408);
  assert.equal(none.body.disconnect_reason, 'io server disconnect');
  assert.ok(Date.now() - t0 < 5000);
});

test('a malformed Redis message is recorded in /errors and the servers keep working', async () => {
  await redis.publish('socket.io#/#', Buffer.from([0xc0]));
  await barrier('barrier3');
  for (const name of ['out0', 'out1']) {
    const res = await api('GET', `/clients/${ids[name].id}/events?until=barrier3`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
  }
  const errors = (await api('GET', '/errors')).body.errors;
  assert.deepEqual(errors.map((e) => [e.kind, e.server, e.channel]).sort(), [
    ['adapter.onmessage', 0, 'socket.io#/#'],
    ['adapter.onmessage', 1, 'socket.io#/#'],
  ]);
  assert.deepEqual((await api('DELETE', '/errors')).body, { cleared: 2 });
  assert.deepEqual((await api('GET', '/errors')).body, { errors: [] });
});

test('bad requests get 400, unknown ids 404, timeouts 408', async () => {
  assert.equal((await api('GET', '/clients/c999/events')).status, 404);
  assert.equal((await api('GET', '/clients/c999/rooms')).status, 404);
  assert.equal((await api('DELETE', '/clients/c999')).status, 404);
  assert.equal((await api('GET', '/nowhere')).status, 404);
  assert.equal((await api('PUT', '/clients')).status, 405);
  const badServer = await api('POST', '/clients', { server: 9 });
  assert.equal(badServer.status, 400);
  assert.match(badServer.body.error, /server/);
  assert.equal((await api('POST', '/clients', { rooms: 'room1' })).status, 400);
  assert.equal((await api('POST', '/clients', '{not json', { raw: true })).status, 400);
  assert.equal((await api('GET', `/clients/${ids.out0.id}/events?timeout_ms=soon`)).status, 400);
  assert.equal((await api('POST', '/listen', { event: 'connection' })).status, 400);
  assert.equal((await api('GET', '/server-events?event=unheard')).status, 404);

  const late = await api('GET', `/clients/${ids.out0.id}/events?until=never&timeout_ms=50`);
  assert.equal(late.status, 408);
  assert.equal(late.body.connected, true);
  assert.ok(late.body.events.length > 0);
  const notYet = await api('GET', `/clients/${ids.out0.id}/disconnect?timeout_ms=50`);
  assert.equal(notYet.status, 408);
  assert.deepEqual(notYet.body, { reason: null });
  const fewer = await api('GET', '/server-events?event=hello&count=3&timeout_ms=50');
  assert.equal(fewer.status, 408);
  assert.equal(fewer.body.events.length, 2);
});

test('DELETE /clients/:id and POST /reset drop clients and records', async () => {
  const del = await api('DELETE', `/clients/${ids.out1.id}`);
  assert.equal(del.status, 200, JSON.stringify(del.body));
  assert.equal(del.body.reason, 'io client disconnect');
  assert.equal((await api('GET', `/clients/${ids.out1.id}/events`)).status, 404);
  const reset = await api('POST', '/reset');
  assert.equal(reset.status, 200);
  assert.equal((await api('GET', `/clients/${ids.out0.id}/events`)).status, 404);
  assert.deepEqual((await api('GET', '/clients')).body, { clients: [] });
  assert.equal((await api('GET', '/server-events?event=hello')).status, 404);
  // The stack is still usable after a reset.
  const again = await api('POST', '/clients', { server: 1, rooms: ['room1'] });
  assert.equal(again.status, 200);
  await redis.publish('socket.io#/#room1#', CANONICAL_ROOM1);
  assert.equal((await api('GET', `/clients/${again.body.id}/events?until=chat%20message`)).status, 200);
});

test('a second stack can share the Redis (--redis-url, --servers, --key) and stops on SIGTERM', async () => {
  const other = startStack(['--redis-url', info.redis_url, '--servers', '1', '--key', 'other']);
  const otherInfo = await other.ready;
  assert.equal(otherInfo.redis_url, info.redis_url);
  assert.equal(otherInfo.servers.length, 1);
  const otherApi = apiFor(otherInfo.control);
  const c = await otherApi('POST', '/clients', { rooms: ['room1'] });
  assert.equal(c.status, 200);
  await redis.publish('socket.io#/#room1#', CANONICAL_ROOM1); // the default key: not for this stack
  await redis.publish('other#/#room1#', emitterPacket('/', ['room1'], 'mine'));
  const got = await otherApi('GET', `/clients/${c.body.id}/events?until=mine`);
  assert.deepEqual(got.body.events, [{ event: 'mine', args: [] }]);

  other.proc.kill('SIGTERM');
  assert.deepEqual(await other.exited, { code: 0, signal: null });
  assert.equal(await redis.ping(), 'PONG', 'the shared redis-server was not ours to stop');
});

test('startup failures are reported and leave nothing running', async () => {
  const missing = startStack(['--redis-url', info.redis_url, '--gateway', '/nonexistent/emitgate']);
  await assert.rejects(missing.ready, /does not exist/);
  assert.equal((await missing.exited).code, 1);

  const early = startStack(['--gateway', '/bin/false']);
  await assert.rejects(early.ready, /gateway did not start: gateway exited \(exit code 1\)/);
  assert.equal((await early.exited).code, 1);
  const pid = Number(/redis-server pid (\d+)/.exec(early.stderr())[1]);
  assert.equal(pidAlive(pid), false, 'the redis-server it started is gone');

  const badArg = startStack(['--servers', 'lots']);
  await assert.rejects(badArg.ready, /--servers/);
});

test('with a built gateway, --gateway starts it and reports its address', async (t) => {
  const bin = process.env.EMITGATE_BIN || path.join(__dirname, '..', '..', 'target', 'debug', 'emitgate');
  if (!fs.existsSync(bin)) {
    t.skip(`gateway binary ${bin} not built`);
    return;
  }
  const gw = startStack(['--redis-url', info.redis_url, '--servers', '1', '--gateway', bin]);
  const gwInfo = await gw.ready;
  assert.match(gwInfo.grpc, /^127\.0\.0\.1:\d+$/);
  assert.equal(await accepts(Number(gwInfo.grpc.split(':')[1])), true);
  gw.proc.stdin.end();
  assert.equal((await gw.exited).code, 0);
  assert.equal(await accepts(Number(gwInfo.grpc.split(':')[1])), false, 'the gateway was stopped');
});

// ---- other adapters ------------------------------------------------------------

// The sharded adapter's ClusterMessage, as JSON (docs/protocol.md §4).
function clusterMessage(nsp, rooms, event, ...args) {
  return JSON.stringify({ uid: 'emitter', nsp, type: 3, data: { packet: { type: 2, data: [event, ...args], nsp }, opts: { rooms, except: [], flags: {} } } });
}

test('--adapter sharded: SPUBLISHed ClusterMessages, room channels in dynamic mode, undecodable payloads recorded', async () => {
  const sharded = startStack(['--redis-url', info.redis_url, '--adapter', 'sharded', '--subscription-mode', 'dynamic', '--key', 'sh']);
  const shInfo = await sharded.ready;
  const shApi = apiFor(shInfo.control);
  try {
    const member = await shApi('POST', '/clients', { server: 1, rooms: ['room1'] });
    const outsider = await shApi('POST', '/clients', { server: 0 });
    assert.equal(member.status, 200, JSON.stringify(member.body));
    // In dynamic mode the member's server subscribes the room's own channel,
    // and the answer comes once Redis confirmed it.
    assert.equal(await redis.sPublish('sh#/#room1#', clusterMessage('/', ['room1'], 'chat message', 'hello')), 1);
    // A plain PUBLISH reaches no sharded subscriber.
    assert.equal(await redis.publish('sh#/#', clusterMessage('/', [], 'lost')), 0);
    await redis.sPublish('sh#/#', clusterMessage('/', [], 'sh-barrier'));
    const got = await shApi('GET', `/clients/${member.body.id}/events?until=sh-barrier`);
    assert.deepEqual(got.body.events, [
      { event: 'chat message', args: ['hello'] },
      { event: 'sh-barrier', args: [] },
    ]);
    const other = await shApi('GET', `/clients/${outsider.body.id}/events?until=sh-barrier`);
    assert.deepEqual(other.body.events, [{ event: 'sh-barrier', args: [] }]);

    await redis.sPublish('sh#/#', Buffer.from([0xc1]));
    await redis.sPublish('sh#/#', clusterMessage('/', [], 'sh-barrier2'));
    assert.equal((await shApi('GET', `/clients/${outsider.body.id}/events?until=sh-barrier2`)).status, 200);
    const errors = (await shApi('GET', '/errors')).body.errors;
    assert.deepEqual(errors.map((e) => [e.kind, e.channel, e.payload_hex]).sort(), [
      ['adapter.decode', 'sh#/#', 'c1'],
      ['adapter.decode', 'sh#/#', 'c1'],
    ]);
  } finally {
    sharded.proc.stdin.end();
    await sharded.exited;
  }
});

test('--adapter streams: stream entries reach clients with their offset; a dropped client recovers what it missed', async () => {
  const streams = startStack(['--redis-url', info.redis_url, '--adapter', 'streams', '--stream-name', 'selftest-stream']);
  const stInfo = await streams.ready;
  const stApi = apiFor(stInfo.control);
  const entry = (event, rooms) =>
    redis.xAdd('selftest-stream', '*', {
      uid: 'emitter',
      nsp: '/',
      type: '3',
      data: JSON.stringify({ packet: { type: 2, data: [event], nsp: '/' }, opts: { rooms, flags: {}, except: [] } }),
    });
  try {
    const c = await stApi('POST', '/clients', { server: 1, rooms: ['room1'] });
    assert.equal(c.status, 200, JSON.stringify(c.body));
    const first = await entry('first', ['room1']);
    const got = await stApi('GET', `/clients/${c.body.id}/events?until=first`);
    // Connection-state recovery is on: the entry id comes as the last argument.
    assert.deepEqual(got.body.events, [{ event: 'first', args: [first] }]);

    const drop = await stApi('POST', `/clients/${c.body.id}/drop`);
    assert.equal(drop.status, 200, JSON.stringify(drop.body));
    assert.equal((await stApi('GET', `/clients/${c.body.id}`)).body.connected, false);
    assert.equal((await stApi('POST', `/clients/${c.body.id}/drop`)).status, 409);
    const missed = await entry('missed', ['room1']);
    await entry('not mine', ['room2']);

    const back = await stApi('POST', `/clients/${c.body.id}/reconnect`);
    assert.equal(back.status, 200, JSON.stringify(back.body));
    assert.deepEqual(back.body, { id: c.body.id, sid: c.body.sid, recovered: true });
    const after = await stApi('GET', `/clients/${c.body.id}/events?until=missed`);
    assert.deepEqual(after.body.events, [
      { event: 'first', args: [first] },
      { event: 'missed', args: [missed] },
    ]);
    assert.equal((await stApi('POST', `/clients/${c.body.id}/reconnect`)).status, 409);
    assert.deepEqual((await stApi('GET', '/errors')).body, { errors: [] });
  } finally {
    streams.proc.stdin.end();
    await streams.exited;
  }
});

test('--parser json: the classic adapter reads JSON.stringify packets and records a MessagePack one', async () => {
  const js = startStack(['--redis-url', info.redis_url, '--parser', 'json', '--key', 'js']);
  const jsInfo = await js.ready;
  const jsApi = apiFor(jsInfo.control);
  try {
    const member = await jsApi('POST', '/clients', { server: 1, rooms: ['room1'] });
    assert.equal(member.status, 200, JSON.stringify(member.body));
    const packet = (rooms, event, ...args) =>
      JSON.stringify(['emitter', { type: 2, data: [event, ...args], nsp: '/' }, { rooms, flags: {}, except: [] }]);
    assert.equal(await redis.publish('js#/#room1#', packet(['room1'], 'chat message', { n: 1e21 })), 2);
    await redis.publish('js#/#', emitterPacket('/', [], 'lost'));
    await redis.publish('js#/#', packet([], 'js-barrier'));
    const got = await jsApi('GET', `/clients/${member.body.id}/events?until=js-barrier`);
    assert.deepEqual(got.body.events, [
      { event: 'chat message', args: [{ n: 1e21 }] },
      { event: 'js-barrier', args: [] },
    ]);
    const errors = (await jsApi('GET', '/errors')).body.errors;
    assert.deepEqual(errors.map((e) => [e.kind, e.channel]), [
      ['adapter.onmessage', 'js#/#'],
      ['adapter.onmessage', 'js#/#'],
    ]);
  } finally {
    js.proc.stdin.end();
    await js.exited;
  }
});

test('adapter options are checked', async () => {
  const badParser = startStack(['--redis-url', info.redis_url, '--adapter', 'sharded', '--parser', 'json']);
  await assert.rejects(badParser.ready, /--parser needs --adapter classic/);
  const badMode = startStack(['--redis-url', info.redis_url, '--subscription-mode', 'dynamic']);
  await assert.rejects(badMode.ready, /--subscription-mode needs --adapter sharded/);
  const badAdapter = startStack(['--redis-url', info.redis_url, '--adapter', 'kafka']);
  await assert.rejects(badAdapter.ready, /--adapter must be one of classic, sharded, streams/);
  const noSeed = startStack(['--redis-cluster']);
  await assert.rejects(noSeed.ready, /--redis-cluster needs --redis-url/);
});

test('closing stdin stops the stack and the redis-server it started', async () => {
  const redisPort = Number(new URL(info.redis_url).port);
  await redis.quit();
  redis = null;
  stack.proc.stdin.end();
  assert.deepEqual(await stack.exited, { code: 0, signal: null });
  assert.equal(await accepts(redisPort), false);
  for (const port of info.servers) assert.equal(await accepts(port), false);
});
