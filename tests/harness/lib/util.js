'use strict';

// Small helpers shared by the harness modules.

function log(...parts) {
  process.stderr.write(`[harness] ${parts.join(' ')}\n`);
}

// Turns a value received from Socket.IO into plain JSON. Binary values
// (Buffer, ArrayBuffer, typed arrays) anywhere inside become
// {"$binary": "<base64>"}; undefined becomes null (or is dropped from objects).
function encodeValue(value) {
  if (value === undefined || typeof value === 'function' || typeof value === 'symbol') return null;
  if (value === null || typeof value !== 'object') {
    return typeof value === 'bigint' ? value.toString() : value;
  }
  if (Buffer.isBuffer(value)) return { $binary: value.toString('base64') };
  if (value instanceof ArrayBuffer) return { $binary: Buffer.from(value).toString('base64') };
  if (ArrayBuffer.isView(value)) {
    return { $binary: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') };
  }
  if (Array.isArray(value)) return value.map(encodeValue);
  if (value instanceof Date) return value.toISOString();
  const out = {};
  for (const [k, v] of Object.entries(value)) {
    if (v !== undefined && typeof v !== 'function') out[k] = encodeValue(v);
  }
  return out;
}

// Resolves true as soon as check() holds (re-evaluated on every 'change'
// event of emitter), false when timeoutMs elapses or signal aborts first.
// The timer is only the upper bound; nothing is polled.
// The inverse of encodeValue for values a test sends: {"$binary":"<base64>"}
// anywhere inside becomes a Buffer.
function decodeValue(value) {
  if (Array.isArray(value)) return value.map(decodeValue);
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === '$binary' && typeof value.$binary === 'string') {
      return Buffer.from(value.$binary, 'base64');
    }
    const out = {};
    for (const k of keys) out[k] = decodeValue(value[k]);
    return out;
  }
  return value;
}

function waitUntil(emitter, check, timeoutMs, signal) {
  if (check()) return Promise.resolve(true);
  if (signal && signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    let done = false;
    const finish = (value) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      emitter.off('change', onChange);
      if (signal) signal.removeEventListener('abort', onAbort);
      resolve(value);
    };
    const onChange = () => {
      if (check()) finish(true);
    };
    const onAbort = () => finish(false);
    const timer = setTimeout(() => finish(check()), timeoutMs);
    emitter.on('change', onChange);
    if (signal) signal.addEventListener('abort', onAbort);
  });
}

// Rejects with an Error(message) if promise does not settle within ms.
function withTimeout(promise, ms, message) {
  let timer;
  const bound = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, bound]).finally(() => clearTimeout(timer));
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Error with an HTTP status, thrown by the model and rendered by the control server.
class HttpError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

function describeError(err) {
  if (err instanceof Error) return { message: err.message, stack: err.stack || String(err) };
  return { message: String(err), stack: String(err) };
}

module.exports = { log, encodeValue, decodeValue, waitUntil, withTimeout, sleep, HttpError, describeError };
