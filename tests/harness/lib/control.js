'use strict';

// The HTTP control API (JSON in, JSON out) over a Cluster.

const http = require('node:http');
const { HttpError } = require('./util');

const MAX_BODY = 1024 * 1024;
const MAX_TIMEOUT_MS = 600000;

function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function readJson(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reject(new HttpError(413, `body larger than ${MAX_BODY} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', reject);
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '') return resolve({});
      try {
        resolve(JSON.parse(text));
      } catch (err) {
        reject(new HttpError(400, `body is not valid JSON: ${err.message}`));
      }
    });
  });
}

function intParam(query, name, { min, max, fallback }) {
  const raw = query.get(name);
  if (raw === null || raw === '') return fallback;
  if (!/^\d+$/.test(raw)) throw new HttpError(400, `${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  const value = Number(raw);
  if (value < min || value > max) throw new HttpError(400, `${name} must be between ${min} and ${max}, got ${value}`);
  return value;
}

function timeoutParam(query) {
  return intParam(query, 'timeout_ms', { min: 0, max: MAX_TIMEOUT_MS, fallback: 5000 });
}

// Routes: [method, regexp, handler(match, req, url, signal) -> {status, body} | body]
function routes(cluster, info) {
  return [
    ['GET', /^\/info$/, () => info()],
    ['GET', /^\/errors$/, () => ({ errors: cluster.errors })],
    [
      'DELETE',
      /^\/errors$/,
      () => {
        const cleared = cluster.errors.length;
        cluster.errors.length = 0;
        return { cleared };
      },
    ],
    ['GET', /^\/clients$/, () => ({ clients: cluster.listClients() })],
    ['POST', /^\/clients$/, async (m, req, url) => cluster.createClient(await readJson(req), timeoutParam(url.searchParams))],
    [
      'GET',
      /^\/clients\/([^/]+)\/events$/,
      async (m, req, url, signal) => {
        const q = url.searchParams;
        const until = q.has('until') ? q.get('until') : undefined;
        const count = intParam(q, 'count', { min: 0, max: 1e9, fallback: undefined });
        const { ok, body } = await cluster.clientEvents(decodeURIComponent(m[1]), { until, count, timeoutMs: timeoutParam(q), signal });
        return { status: ok ? 200 : 408, body };
      },
    ],
    [
      'GET',
      /^\/clients\/([^/]+)\/disconnect$/,
      async (m, req, url, signal) => {
        const { ok, body } = await cluster.clientDisconnect(decodeURIComponent(m[1]), { timeoutMs: timeoutParam(url.searchParams), signal });
        return { status: ok ? 200 : 408, body };
      },
    ],
    ['GET', /^\/clients\/([^/]+)\/rooms$/, (m) => cluster.clientRooms(decodeURIComponent(m[1]))],
    ['POST', /^\/clients\/([^/]+)\/drop$/, (m, req, url) => cluster.dropClient(decodeURIComponent(m[1]), timeoutParam(url.searchParams))],
    [
      'POST',
      /^\/clients\/([^/]+)\/reconnect$/,
      (m, req, url) => cluster.reconnectClient(decodeURIComponent(m[1]), timeoutParam(url.searchParams)),
    ],
    [
      'GET',
      /^\/clients\/([^/]+)$/,
      (m) => {
        const id = decodeURIComponent(m[1]);
        cluster.client(id); // 404 when unknown
        return cluster.listClients().find((c) => c.id === id);
      },
    ],
    ['DELETE', /^\/clients\/([^/]+)$/, (m) => cluster.deleteClient(decodeURIComponent(m[1]))],
    ['POST', /^\/reset$/, () => cluster.reset()],
    [
      'POST',
      /^\/servers\/(\d+)\/kill$/,
      async (m, req) => {
        if (!cluster.kill) throw new HttpError(404, 'this stack cannot kill a server');
        const body = await readJson(req);
        return cluster.kill({ ...(body && typeof body === 'object' && !Array.isArray(body) ? body : {}), server: Number(m[1]) });
      },
    ],
    [
      'GET',
      /^\/servers\/(\d+)\/killed$/,
      async (m, req, url, signal) => {
        if (!cluster.waitKilled) throw new HttpError(404, 'this stack cannot kill a server');
        const { ok, body } = await cluster.waitKilled(Number(m[1]), { timeoutMs: timeoutParam(url.searchParams), signal });
        return { status: ok ? 200 : 408, body };
      },
    ],
    ['POST', /^\/listen$/, async (m, req) => cluster.listen(await readJson(req))],
    [
      'GET',
      /^\/server-events$/,
      async (m, req, url, signal) => {
        const q = url.searchParams;
        const { ok, body } = await cluster.serverEvents({
          namespace: q.has('namespace') ? q.get('namespace') : undefined,
          event: q.get('event'),
          count: intParam(q, 'count', { min: 0, max: 1e9, fallback: undefined }),
          timeoutMs: timeoutParam(q),
          signal,
        });
        return { status: ok ? 200 : 408, body };
      },
    ],
  ];
}

function createControlServer(cluster, info) {
  const table = routes(cluster, info);
  const server = http.createServer(async (req, res) => {
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    try {
      const url = new URL(req.url, 'http://control');
      let matchedPath = false;
      for (const [method, pattern, handler] of table) {
        const m = pattern.exec(url.pathname);
        if (!m) continue;
        matchedPath = true;
        if (method !== req.method) continue;
        const result = await handler(m, req, url, abort.signal);
        if (result && typeof result.status === 'number' && 'body' in result) send(res, result.status, result.body);
        else send(res, 200, result);
        return;
      }
      if (matchedPath) throw new HttpError(405, `method ${req.method} not allowed on ${url.pathname}`);
      throw new HttpError(404, `no route ${req.method} ${url.pathname}`);
    } catch (err) {
      if (res.headersSent) return;
      if (err instanceof HttpError) send(res, err.status, err.body || { error: err.message });
      else {
        cluster.recordError('control', err, { request: `${req.method} ${req.url}` });
        send(res, 500, { error: err.message });
      }
    }
  });
  server.requestTimeout = 0; // waits may be long; each is bounded by its own timeout_ms
  return server;
}

module.exports = { createControlServer };
