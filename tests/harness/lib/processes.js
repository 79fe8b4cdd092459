'use strict';

// Child processes the stack starts: redis-server and the gateway.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { createClient } = require('redis');
const { log, sleep, withTimeout } = require('./util');

const OUTPUT_LIMIT = 64 * 1024;

// Every child still running, so that exit can kill them whatever happened.
const live = new Set();

function killAllNow() {
  for (const child of live) child.killNow();
}

// A free TCP port on 127.0.0.1, for programs that must be told their port.
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function findOnPath(command) {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, command);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

// A spawned process: keeps the tail of its output, knows whether it exited,
// and can be stopped gracefully (SIGTERM, then SIGKILL) or at once.
class Child {
  constructor(name, command, args, { forward, env }) {
    this.name = name;
    this.output = '';
    this.exitInfo = null;
    this.proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    this.pid = this.proc.pid;
    live.add(this);
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => {
        live.delete(this);
        this.exitInfo = signal ? `killed by ${signal}` : `exit code ${code}`;
        resolve();
      });
      this.proc.on('error', (err) => {
        live.delete(this);
        this.output += `${err.message}\n`;
        if (!this.exitInfo) this.exitInfo = `failed to start: ${err.message}`;
        resolve();
      });
    });
    const collect = (chunk) => {
      const text = chunk.toString();
      this.output = (this.output + text).slice(-OUTPUT_LIMIT);
      if (forward) {
        for (const line of text.split('\n')) {
          if (line.length) process.stderr.write(`[${name}] ${line}\n`);
        }
      }
    };
    this.proc.stdout.on('data', collect);
    this.proc.stderr.on('data', collect);
  }

  get running() {
    return this.exitInfo === null;
  }

  async stop(graceMs = 2000) {
    if (!this.running) return;
    this.proc.kill('SIGTERM');
    let timer;
    const kill = new Promise((resolve) => {
      timer = setTimeout(() => {
        if (this.running) this.proc.kill('SIGKILL');
        resolve();
      }, graceMs);
    });
    await Promise.race([this.exited, kill]);
    clearTimeout(timer);
    await this.exited;
  }

  killNow() {
    if (this.running) {
      try {
        this.proc.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

// Connects to url and expects PONG; retries until timeoutMs, or stops early
// once child (if any) has exited.
async function waitForRedis(url, { timeoutMs, child }) {
  const deadline = Date.now() + timeoutMs;
  let lastError = null;
  const client = createClient({
    url,
    socket: {
      connectTimeout: Math.min(1000, timeoutMs),
      reconnectStrategy: (retries, cause) => {
        lastError = cause;
        if (child && !child.running) return new Error(`${child.name} exited (${child.exitInfo})`);
        if (Date.now() >= deadline) return new Error(`no answer within ${timeoutMs} ms`);
        return 20;
      },
    },
  });
  client.on('error', (err) => {
    lastError = err;
  });
  try {
    await withTimeout(client.connect(), timeoutMs + 1000, `connect timed out after ${timeoutMs} ms`);
    const pong = await withTimeout(client.ping(), Math.max(500, deadline - Date.now()), 'PING timed out');
    if (pong !== 'PONG') throw new Error(`unexpected PING answer ${JSON.stringify(pong)}`);
  } catch (err) {
    const cause = lastError && lastError !== err ? ` (last error: ${lastError.message})` : '';
    throw new Error(`redis at ${url} did not answer PING: ${err.message}${cause}`);
  } finally {
    await client.disconnect().catch(() => {});
  }
}

async function startRedisServer({ timeoutMs = 5000 } = {}) {
  const binary = findOnPath('redis-server');
  if (!binary) {
    throw new Error(
      'redis-server is not on PATH: run `make setup` (it installs the Debian package redis-server), ' +
        'or pass --redis-url redis://HOST:PORT to use a running Redis',
    );
  }
  let lastError;
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort();
    const url = `redis://127.0.0.1:${port}`;
    const child = new Child(
      'redis-server',
      binary,
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', os.tmpdir()],
      { forward: false },
    );
    try {
      await waitForRedis(url, { timeoutMs, child });
      return { child, url, port };
    } catch (err) {
      await child.stop(500);
      lastError = new Error(
        `redis-server did not start on port ${port}: ${err.message}\n` +
          `--- redis-server output (${child.exitInfo}) ---\n${child.output.trim()}`,
      );
      // Lost a race for the port with another program: try another one.
      if (/Address already in use/i.test(child.output)) continue;
      throw lastError;
    }
  }
  throw lastError;
}

async function waitForTcp(port, { timeoutMs, child }) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child && !child.running) throw new Error(`${child.name} exited (${child.exitInfo}) before accepting connections`);
    const ok = await new Promise((resolve) => {
      const sock = net.connect({ host: '127.0.0.1', port });
      sock.setTimeout(500);
      sock.once('connect', () => {
        sock.destroy();
        resolve(true);
      });
      sock.once('timeout', () => {
        sock.destroy();
        resolve(false);
      });
      sock.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() >= deadline) throw new Error(`port ${port} did not accept connections within ${timeoutMs} ms`);
    await sleep(20);
  }
}

function hasFlag(args, flag) {
  return args.some((a) => a === flag || a.startsWith(`${flag}=`));
}

// Spawns `binary --listen 127.0.0.1:PORT --redis-url URL [--key K] [--config F] EXTRA...`
// and waits until the port accepts TCP connections. `targetConfig` (TOML for
// the default target: dialect, Redis Cluster) is written to a temporary file
// passed as --config, unless EXTRA already has a --config.
async function startGateway({ binary, redisUrl, key, extraArgs, targetConfig = null, timeoutMs = 10000 }) {
  const resolved = path.resolve(binary);
  try {
    fs.accessSync(resolved, fs.constants.X_OK);
  } catch {
    throw new Error(`gateway binary ${resolved} does not exist or is not executable (build it with \`cargo build -p emitgate\`)`);
  }
  const port = await freePort();
  const args = ['--listen', `127.0.0.1:${port}`, '--redis-url', redisUrl];
  if (key !== undefined && !hasFlag(extraArgs, '--key')) args.push('--key', key);
  // Several gateways may run at once (one per test stack): an admin
  // listener on a free port each, unless the caller chose one.
  if (!hasFlag(extraArgs, '--admin-listen') && !process.env.EMITGATE_ADMIN_LISTEN) args.push('--admin-listen', '127.0.0.1:0');
  if (targetConfig && !hasFlag(extraArgs, '--config')) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'emitgate-harness-'));
    const file = path.join(dir, 'gateway.toml');
    fs.writeFileSync(file, targetConfig);
    process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
    args.push('--config', file);
  }
  args.push(...extraArgs);
  log(`starting gateway: ${resolved} ${args.join(' ')}`);
  // Its output goes to our stderr, usually a file or a pipe: no colour codes.
  const child = new Child('gateway', resolved, args, { forward: true, env: { NO_COLOR: '1' } });
  try {
    await waitForTcp(port, { timeoutMs, child });
  } catch (err) {
    await child.stop(500);
    throw new Error(`gateway did not start: ${err.message}\n--- gateway output (${child.exitInfo}) ---\n${child.output.trim()}`);
  }
  return { child, address: `127.0.0.1:${port}`, port };
}

module.exports = { killAllNow, freePort, findOnPath, Child, waitForRedis, startRedisServer, startGateway, waitForTcp };
