"""Reference emitter for the benchmark: python-socketio's RedisManager in
write-only mode (the documented way to emit from an external process),
publishing the same events as every other scenario in a tight loop.

Reads one JSON object on stdin:
  {"redis_url": "...", "channel": "socketio", "seconds": 5, "event": "...",
   "payload_json": "{...}", "rooms": [["user:0"], ...]}
and prints one JSON line when done: {"sent": N, "elapsed_s": S, "cpu_s": C}
(C: the CPU time the loop used).

python-socketio speaks its own protocol on its own channel (default
"socketio"), not the Node adapter's; the bench's subscriber listens there
too. Each emit() is one synchronous PUBLISH round trip.
"""

import json
import sys
import time

import socketio


def main() -> None:
    cfg = json.load(sys.stdin)
    mgr = socketio.RedisManager(cfg["redis_url"], channel=cfg["channel"], write_only=True)
    payload = json.loads(cfg["payload_json"])
    rooms = cfg["rooms"]
    event = cfg["event"]
    n = len(rooms)
    sent = 0
    cpu0 = time.process_time()
    start = time.perf_counter()
    deadline = start + cfg["seconds"]
    while time.perf_counter() < deadline:
        for _ in range(100):
            mgr.emit(event, payload, namespace="/", to=rooms[sent % n])
            sent += 1
    elapsed = time.perf_counter() - start
    cpu_s = time.process_time() - cpu0
    print(json.dumps({"sent": sent, "elapsed_s": elapsed, "cpu_s": cpu_s}), flush=True)


if __name__ == "__main__":
    main()
