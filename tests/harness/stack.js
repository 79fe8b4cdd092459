#!/usr/bin/env node
'use strict';

// End-to-end fixture for emitgate. See README.md for the CLI and control API.

const { ADAPTERS, Cluster, PARSERS, SUBSCRIPTION_MODES } = require('./lib/cluster');
const { createControlServer } = require('./lib/control');
const { killAllNow, startRedisServer, startGateway, waitForRedis } = require('./lib/processes');
const { log, withTimeout } = require('./lib/util');

const USAGE = `usage: node stack.js [--redis-url URL] [--gateway PATH] [--gateway-arg ARG]...
                     [--servers N] [--key K] [--control-port P]
                     [--adapter classic|sharded|streams] [--subscription-mode MODE]
                     [--redis-cluster] [--stream-name NAME] [--stream-count N]
                     [--parser msgpack|json]

Starts redis-server (unless --redis-url), the gateway (if --gateway) and N
Socket.IO servers (default 2) with @socket.io/redis-adapter (or the adapter
chosen with --adapter), then prints one JSON line on stdout and serves the
control API. Exits, stopping everything it started, when stdin closes or on
SIGTERM/SIGINT.`;

function parseArgs(argv) {
  const opts = {
    redisUrl: null,
    gateway: null,
    gatewayArgs: [],
    servers: 2,
    key: undefined,
    controlPort: 0,
    adapter: 'classic',
    subscriptionMode: undefined,
    redisCluster: false,
    streamName: undefined,
    streamCount: undefined,
    parser: 'msgpack',
  };
  const valued = new Set([
    '--redis-url',
    '--gateway',
    '--gateway-arg',
    '--servers',
    '--key',
    '--control-port',
    '--adapter',
    '--subscription-mode',
    '--stream-name',
    '--stream-count',
    '--parser',
  ]);
  for (let i = 0; i < argv.length; i++) {
    let flag = argv[i];
    let value;
    if (flag === '--help' || flag === '-h') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    }
    if (flag === '--redis-cluster') {
      opts.redisCluster = true;
      continue;
    }
    const eq = flag.indexOf('=');
    if (flag.startsWith('--') && eq > 0) {
      value = flag.slice(eq + 1);
      flag = flag.slice(0, eq);
    }
    if (!valued.has(flag)) throw new Error(`unknown argument ${JSON.stringify(argv[i])}\n${USAGE}`);
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new Error(`${flag} needs a value`);
      value = argv[++i];
    }
    switch (flag) {
      case '--redis-url':
        opts.redisUrl = value;
        break;
      case '--gateway':
        opts.gateway = value;
        break;
      case '--gateway-arg':
        opts.gatewayArgs.push(value);
        break;
      case '--servers':
        if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 32) throw new Error('--servers must be an integer from 1 to 32');
        opts.servers = Number(value);
        break;
      case '--key':
        if (value === '') throw new Error('--key must not be empty');
        opts.key = value;
        break;
      case '--control-port':
        if (!/^\d+$/.test(value) || Number(value) > 65535) throw new Error('--control-port must be a port number');
        opts.controlPort = Number(value);
        break;
      case '--adapter':
        if (!ADAPTERS.includes(value)) throw new Error(`--adapter must be one of ${ADAPTERS.join(', ')}`);
        opts.adapter = value;
        break;
      case '--subscription-mode':
        if (!SUBSCRIPTION_MODES.includes(value)) throw new Error(`--subscription-mode must be one of ${SUBSCRIPTION_MODES.join(', ')}`);
        opts.subscriptionMode = value;
        break;
      case '--stream-name':
        if (value === '') throw new Error('--stream-name must not be empty');
        opts.streamName = value;
        break;
      case '--stream-count':
        if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 64) throw new Error('--stream-count must be an integer from 1 to 64');
        opts.streamCount = Number(value);
        break;
      case '--parser':
        if (!PARSERS.includes(value)) throw new Error(`--parser must be one of ${PARSERS.join(', ')}`);
        opts.parser = value;
        break;
    }
  }
  if (opts.gatewayArgs.length && !opts.gateway) throw new Error('--gateway-arg needs --gateway');
  if (opts.subscriptionMode !== undefined && opts.adapter !== 'sharded') throw new Error('--subscription-mode needs --adapter sharded');
  if ((opts.streamName !== undefined || opts.streamCount !== undefined) && opts.adapter !== 'streams') {
    throw new Error('--stream-name and --stream-count need --adapter streams');
  }
  if (opts.parser !== 'msgpack' && opts.adapter !== 'classic') throw new Error('--parser needs --adapter classic (the other adapters have no parser option)');
  if (opts.redisCluster && !opts.redisUrl) throw new Error('--redis-cluster needs --redis-url (the seed URL(s) of a running Redis Cluster)');
  return opts;
}

// The gateway's target for this stack, as a config file, when the flags
// alone cannot describe it (another dialect, or a Redis Cluster).
function gatewayTarget(opts) {
  const lines = [];
  if (opts.adapter === 'sharded') {
    lines.push('dialect = "socketio-sharded"');
    // The gateway's own default (static) is right for every server mode.
    if (opts.subscriptionMode) lines.push(`subscription_mode = ${JSON.stringify(opts.subscriptionMode)}`);
  }
  if (opts.adapter === 'streams') {
    lines.push('dialect = "socketio-streams"');
    if (opts.streamName !== undefined) lines.push(`stream_name = ${JSON.stringify(opts.streamName)}`);
    if (opts.streamCount !== undefined) lines.push(`stream_count = ${opts.streamCount}`);
  }
  if (opts.parser !== 'msgpack') lines.push(`parser = ${JSON.stringify(opts.parser)}`);
  if (opts.redisCluster) {
    const [first, ...more] = opts.redisUrl.split(',').map((u) => u.trim());
    lines.push(`redis_url = ${JSON.stringify(first)}`, 'cluster = true');
    if (more.length) lines.push(`cluster_seeds = ${JSON.stringify(more)}`);
  }
  if (!lines.length) return null;
  return ['[[targets]]', 'name = "default"', ...lines, ''].join('\n');
}

const children = []; // spawned processes, in start order
let cluster = null;
let controlServer = null;
let stopping = false;
const earlyErrors = [];

function recordError(kind, err) {
  if (cluster) cluster.recordError(kind, err);
  else {
    earlyErrors.push([kind, err]);
    log(`ERROR (${kind}): ${err && err.stack ? err.stack : err}`);
  }
}

// An error thrown by a Socket.IO server must not kill the fixture, nor go unnoticed.
process.on('uncaughtException', (err) => recordError('uncaughtException', err));
process.on('unhandledRejection', (err) => recordError('unhandledRejection', err));
process.on('exit', killAllNow);

async function shutdown(code, why) {
  if (stopping) return;
  stopping = true;
  if (why) log(`stopping (${why})`);
  setTimeout(() => {
    log('shutdown took too long; killing what is left');
    process.exit(code);
  }, 5000).unref();
  try {
    if (controlServer) {
      controlServer.close();
      controlServer.closeAllConnections();
    }
    if (cluster) await cluster.close();
  } catch (err) {
    log(`error while closing servers: ${err.stack || err}`);
  }
  // Gateway first (it talks to redis), then redis-server.
  for (const child of [...children].reverse()) await child.stop();
  process.exit(code);
}

function watchParent() {
  process.stdin.on('end', () => shutdown(0, 'stdin closed'));
  process.stdin.on('close', () => shutdown(0, 'stdin closed'));
  process.stdin.on('error', () => shutdown(0, 'stdin error'));
  process.stdin.resume(); // input is read and ignored
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(signal, () => shutdown(0, signal));
  process.stdout.on('error', () => {}); // a reader that went away must not crash us
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const started = Date.now();
  watchParent();
  const key = opts.key === undefined ? 'socket.io' : opts.key;

  let redisUrl = opts.redisUrl;
  if (redisUrl) {
    await waitForRedis(redisUrl.split(',')[0].trim(), { timeoutMs: 3000 });
  } else {
    const redis = await startRedisServer();
    children.push(redis.child);
    redisUrl = redis.url;
    log(`redis-server pid ${redis.child.pid} on ${redisUrl}`);
  }
  if (stopping) return;

  let grpc = null;
  if (opts.gateway) {
    const gateway = await startGateway({
      binary: opts.gateway,
      redisUrl: redisUrl.split(',')[0].trim(),
      key: opts.key,
      extraArgs: opts.gatewayArgs,
      targetConfig: gatewayTarget(opts),
    });
    children.push(gateway.child);
    grpc = gateway.address;
    log(`gateway pid ${gateway.child.pid} on ${grpc}`);
  }
  if (stopping) return;

  cluster = new Cluster({
    redisUrl,
    key,
    servers: opts.servers,
    adapter: opts.adapter,
    subscriptionMode: opts.subscriptionMode,
    redisCluster: opts.redisCluster,
    streamName: opts.streamName,
    streamCount: opts.streamCount,
    parser: opts.parser,
  });
  for (const [kind, err] of earlyErrors) cluster.recordError(kind, err);
  await cluster.start();
  if (stopping) return;

  let ready = null;
  controlServer = createControlServer(cluster, () => ready);
  await new Promise((resolve, reject) => {
    controlServer.once('error', reject);
    controlServer.listen(opts.controlPort, '127.0.0.1', resolve);
  });
  ready = {
    control: `http://127.0.0.1:${controlServer.address().port}`,
    redis_url: redisUrl,
    grpc,
    servers: cluster.servers.map((s) => s.port),
  };
  const topology = opts.redisCluster ? ', Redis Cluster' : '';
  const parser = opts.parser === 'msgpack' ? '' : `, ${opts.parser} parser`;
  log(`ready in ${Date.now() - started} ms (${opts.adapter} adapter${parser}${topology}, key ${JSON.stringify(key)}, ${opts.servers} servers)`);
  process.stdout.write(`${JSON.stringify(ready)}\n`);
}

main().catch(async (err) => {
  log(`failed to start: ${err.message}`);
  if (!stopping) {
    stopping = true;
    if (cluster) await withTimeout(cluster.close(), 3000, 'close timed out').catch(() => {});
    for (const child of [...children].reverse()) await child.stop(500);
  }
  process.exit(1);
});
