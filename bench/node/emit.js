#!/usr/bin/env node
// Reference emitter for the benchmark: @socket.io/redis-emitter in a tight
// loop, publishing the same events as every other scenario.
//
// Reads one JSON object on stdin:
//   {"redis_url": "...", "key": "socket.io", "seconds": 5, "event": "...",
//    "payload_json": "{...}", "rooms": [["user:0"], ...], "chunk": 1000}
// and prints one JSON line when done: {"sent": N, "elapsed_s": S, "cpu_s": C}
// (C: the CPU time the loop used).
//
// emit() only queues the PUBLISH on the Redis client; the loop yields after
// every `chunk` emits by awaiting a PING on the same connection, which lets
// node-redis write the queued commands and bounds how many are pending (a
// loop that never yields would never send anything).
"use strict";

const { createClient } = require("redis");
const { Emitter } = require("@socket.io/redis-emitter");

async function readStdin() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

async function main() {
  const cfg = await readStdin();
  const client = createClient({ url: cfg.redis_url });
  client.on("error", (e) => {
    console.error("redis:", e.message);
    process.exit(1);
  });
  await client.connect();
  const emitter = new Emitter(client, { key: cfg.key });
  const payload = JSON.parse(cfg.payload_json);
  const rooms = cfg.rooms;
  const chunk = cfg.chunk || 1000;
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const deadline = start + cfg.seconds * 1000;
  let sent = 0;
  while (performance.now() < deadline) {
    for (let j = 0; j < chunk; j++) {
      emitter.to(rooms[sent % rooms.length]).emit(cfg.event, payload);
      sent++;
    }
    await client.ping();
  }
  const elapsed = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await client.quit();
  const cpu_s = (cpu.user + cpu.system) / 1e6;
  process.stdout.write(JSON.stringify({ sent, elapsed_s: elapsed, cpu_s }) + "\n");
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
