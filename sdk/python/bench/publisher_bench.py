"""Throughput of the sync Publisher, counted where it matters: at Redis.

Starts a redis-server and a gateway on free loopback ports, a subscriber
process PSUBSCRIBEd to every channel, then publishes the shared benchmark
workload from this process (one ``notification`` event with a ~100-byte
object argument, cycling through 300 room sets of 1 to 3 rooms) and prints
events/s (first publish to the last event counted at the subscriber) and the
client's CPU time per event (this process: the publishing thread plus grpc's
and the publisher's threads; the publishing thread's share is printed too).

    .venv/bin/python bench/publisher_bench.py [--events 100000] [--mode publisher|batch]
                                              [--gateway PATH] [--profile]
                                              [--linger S] [--max-in-flight N]

``--mode batch`` sends the same events with ``client.batch()`` (1000 items a
call) for comparison; ``--profile`` prints a cProfile of the publishing loop
instead of timing it. The gateway is $EMITGATE_BIN, else the repository's
target/release/emitgate (``cargo build --release --locked -p emitgate``).
The numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pathlib
import pstats
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

import emitgate

REPO = pathlib.Path(__file__).resolve().parents[3]
EVENT = "notification"
PAYLOAD: dict[str, Any] = json.loads(
    '{"id":1042,"kind":"comment","title":"New reply to your post",'
    '"from":"alice","unread":3,"url":"/p/88"}'
)
ROOM_SETS = 300
WARMUP = 5_000
PMESSAGE = b"*4\r\n$8\r\npmessage\r\n"


def rooms(i: int) -> list[str]:
    """Return the room set of event ``i`` (the same cycle as the repository's bench)."""
    r = [f"user:{i % 1000}"]
    if i % 3 >= 1:
        r.append(f"team:{i % 100}")
    if i % 3 == 2:
        r.append(f"org:{i % 10}")
    return r


def free_port() -> int:
    """Return a free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_port(port: int, process: subprocess.Popen[bytes]) -> None:
    """Wait until ``port`` accepts connections (polling: there is no event)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{process.args!r} did not start") from None
            time.sleep(0.02)


def subscriber(port: int, total: int) -> None:
    """Count published messages; print the monotonic time once ``total`` arrived."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"*2\r\n$10\r\nPSUBSCRIBE\r\n$1\r\n*\r\n")
        if not s.recv(4096).startswith(b"*3\r\n$10\r\npsubscribe"):
            raise RuntimeError("PSUBSCRIBE was not confirmed")
        print("ready", flush=True)
        count = 0
        tail = b""
        while count < total:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            data = tail + chunk
            count += data.count(PMESSAGE)
            tail = data[-(len(PMESSAGE) - 1) :]
        print(json.dumps({"count": count, "at": time.monotonic()}), flush=True)


# Publisher options from the command line (the defaults otherwise).
OPTIONS: dict[str, Any] = {}


def publish(client: emitgate.Client, mode: str, count: int, start: int = 0) -> None:
    """Publish ``count`` events of the workload and wait until all are answered."""
    cycle = [rooms(i) for i in range(ROOM_SETS)]
    if mode == "publisher":
        with client.publisher(**OPTIONS) as pub:
            handles = [
                pub.to(cycle[i % ROOM_SETS]).emit(EVENT, PAYLOAD)
                for i in range(start, start + count)
            ]
        failed = sum(1 for h in handles if h.exception() is not None)
    else:
        failed = 0
        for first in range(start, start + count, 1000):
            with client.batch() as b:
                for i in range(first, min(first + 1000, start + count)):
                    b.to(cycle[i % ROOM_SETS]).emit(EVENT, PAYLOAD)
            failed += b.result.failed
    if failed:
        raise RuntimeError(f"{failed} events failed")


def profile(client: emitgate.Client, mode: str, events: int) -> None:
    """Print cProfile statistics of the publishing thread, then of the sender threads."""
    senders: list[cProfile.Profile] = []
    run = emitgate.Publisher._run

    def profiled_run(self: emitgate.Publisher) -> None:
        sender = cProfile.Profile()
        senders.append(sender)
        sender.runcall(run, self)

    emitgate.Publisher._run = profiled_run  # type: ignore[method-assign]
    main_thread = cProfile.Profile()
    main_thread.runcall(publish, client, mode, events, WARMUP)
    emitgate.Publisher._run = run  # type: ignore[method-assign]
    print("== publishing thread")
    pstats.Stats(main_thread).sort_stats("tottime").print_stats(20)
    if senders:
        print("== sender threads")
        pstats.Stats(*senders).sort_stats("tottime").print_stats(20)


def main() -> None:
    """Run the benchmark and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--mode", choices=["publisher", "batch"], default="publisher")
    parser.add_argument("--gateway", default=os.environ.get("EMITGATE_BIN"))
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--linger", type=float, help="Publisher linger (default 0.005)")
    parser.add_argument("--max-in-flight", type=int, help="Publisher max_in_flight (default 4)")
    parser.add_argument("--subscriber", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.subscriber:
        subscriber(*args.subscriber)
        return
    if args.linger is not None:
        OPTIONS["linger"] = args.linger
    if args.max_in_flight is not None:
        OPTIONS["max_in_flight"] = args.max_in_flight

    gateway = pathlib.Path(args.gateway or REPO / "target" / "release" / "emitgate")
    redis_port, grpc_port = free_port(), free_port()
    children: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            redis = subprocess.Popen(
                [
                    *("redis-server", "--port", str(redis_port), "--bind", "127.0.0.1"),
                    *("--save", "", "--appendonly", "no", "--dir", tmp),
                ],
                stdout=subprocess.DEVNULL,
            )
            children.append(redis)
            wait_port(redis_port, redis)
            gw = subprocess.Popen(
                [
                    *(str(gateway), "--listen", f"127.0.0.1:{grpc_port}"),
                    *("--redis-url", f"redis://127.0.0.1:{redis_port}"),
                    *("--admin-listen", "127.0.0.1:0"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env={**os.environ, "NO_COLOR": "1"},
            )
            children.append(gw)
            wait_port(grpc_port, gw)
            total = WARMUP + args.events
            sub = subprocess.Popen(
                [sys.executable, __file__, "--subscriber", str(redis_port), str(total)],
                stdout=subprocess.PIPE,
            )
            children.append(sub)
            assert sub.stdout is not None
            if sub.stdout.readline().strip() != b"ready":
                raise RuntimeError("the subscriber did not start")

            with emitgate.Client(f"127.0.0.1:{grpc_port}", insecure=True) as client:
                publish(client, args.mode, WARMUP)
                if args.profile:
                    profile(client, args.mode, args.events)
                    return
                cpu0, thread0 = time.process_time(), time.thread_time()
                t0 = time.monotonic()
                publish(client, args.mode, args.events, WARMUP)
                answered = time.monotonic()
                cpu = time.process_time() - cpu0
                thread_cpu = time.thread_time() - thread0
            done = json.loads(sub.stdout.readline())
            if done["count"] < total:
                raise RuntimeError(f"the subscriber counted {done['count']} of {total}")
            elapsed = max(done["at"], answered) - t0
            print(
                json.dumps(
                    {
                        "mode": args.mode,
                        "options": OPTIONS,
                        "events": args.events,
                        "events_per_s": round(args.events / elapsed),
                        "client_cpu_us_per_event": round(cpu / args.events * 1e6, 2),
                        # of which the thread that publishes (the rest: grpc, senders)
                        "publishing_thread_us_per_event": round(thread_cpu / args.events * 1e6, 2),
                        "elapsed_s": round(elapsed, 3),
                        "python": sys.version.split()[0],
                    }
                )
            )
        finally:
            for child in reversed(children):
                child.terminate()
                child.wait(timeout=10)


if __name__ == "__main__":
    main()
