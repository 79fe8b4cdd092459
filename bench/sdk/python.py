"""Benchmark driver of the Python SDK: the sync Publisher in one process.

Reads one JSON object on stdin:
  {"grpc": "127.0.0.1:P", "seconds": 4, "event": "...", "payload_json": "{...}",
   "rooms": [["user:0"], ...]}
publishes the workload (the event with the payload object, cycling through
the room sets) for that long, closes the Publisher (which delivers
everything queued) and prints one JSON line: {"sent": N, "errors": E,
"first_error": "...", "cpu_s": C} (C: this process's CPU time, the
Publisher's sender threads and grpc's included).
"""

import json
import sys
import time

import emitgate

# Events published between two looks at the clock.
CHECK_EVERY = 1000


def main() -> None:
    cfg = json.load(sys.stdin)
    payload = json.loads(cfg["payload_json"])
    rooms = cfg["rooms"]
    event = cfg["event"]
    n = len(rooms)
    handles = []
    cpu0 = time.process_time()
    with emitgate.Client(cfg["grpc"], insecure=True, timeout=30) as client:
        deadline = time.monotonic() + cfg["seconds"]
        with client.publisher() as pub:
            to = pub.to
            while time.monotonic() < deadline:
                base = len(handles)
                handles += [
                    to(rooms[(base + i) % n]).emit(event, payload) for i in range(CHECK_EVERY)
                ]
    cpu_s = time.process_time() - cpu0
    failures = [h.exception() for h in handles if h.exception() is not None]
    print(
        json.dumps(
            {
                "sent": len(handles) - len(failures),
                "errors": len(failures),
                "first_error": str(failures[0]) if failures else None,
                "cpu_s": cpu_s,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
