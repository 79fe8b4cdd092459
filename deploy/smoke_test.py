#!/usr/bin/env python3
"""`make test-deploy`: the deployment files run against real processes.

No container engine is available, so the image itself is not run; its
parts are, on loopback ports:

* the compose example: redis-server, deploy/example/server.js (socket.io
  with @socket.io/redis-adapter), listener.js (a socket.io client) and the
  gateway with deploy/example/emitgate.toml; an Emit through grpcurl must
  reach the client, a ServerSideEmit the server, SIGHUP must reload the keys
  and SIGTERM stop the gateway with status 0;
* the config files the Helm chart renders (default values and
  ci/full-values.yaml, TLS paths pointed at a certificate made here): the
  gateway must accept each, become ready on /readyz, answer /healthz, and
  with the full values serve TLS and require API keys.

Usage: smoke_test.py GATEWAY_BIN GRPCURL RENDER_DEFAULT.yaml RENDER_FULL.yaml
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "deploy" / "example"
# Generous bounds for a loaded 2-core machine; every wait ends as soon as
# what it waits for happens.
START_TIMEOUT_S = 30
EVENT_TIMEOUT_S = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A child process whose combined output is collected line by line."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None):
        self.name = name
        self.lines: list[str] = []
        self.eof = False
        self.cond = threading.Condition()
        self.p = subprocess.Popen(
            argv,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def wait_for(self, text: str, timeout: float = EVENT_TIMEOUT_S) -> str:
        """The first output line containing `text`; fails after `timeout`."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines:
                    if text in line:
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or self.eof:
                    raise AssertionError(f"{self.name}: no line with {text!r}; output:\n" + "\n".join(self.lines))
                self.cond.wait(left)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            return self.p.wait(timeout=START_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return self.p.wait()


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def wait_ready(admin_port: int, gateway: Proc) -> None:
    """Waits until /readyz answers 200 (the gateway's Redis answers)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while http_status(f"http://127.0.0.1:{admin_port}/readyz") != 200:
        if gateway.p.poll() is not None or time.monotonic() > deadline:
            raise AssertionError("gateway not ready; output:\n" + "\n".join(gateway.lines))
        time.sleep(0.05)  # polling an HTTP endpoint: there is no event to await


def start_redis(procs: list[Proc]) -> int:
    port = free_port()
    redis = Proc(
        "redis", ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    )
    procs.append(redis)
    redis.wait_for("Ready to accept connections", START_TIMEOUT_S)
    return port


def start_gateway(procs: list[Proc], bin_path: str, config: Path, redis_port: int) -> tuple[Proc, int, int]:
    grpc_port, admin_port = free_port(), free_port()
    gateway = Proc(
        "gateway",
        [bin_path],
        env={
            "EMITGATE_CONFIG": str(config),
            "EMITGATE_REDIS_URL": f"redis://127.0.0.1:{redis_port}",
            # The image and the chart listen on 0.0.0.0; loopback here.
            "EMITGATE_LISTEN": f"127.0.0.1:{grpc_port}",
            "EMITGATE_ADMIN_LISTEN": f"127.0.0.1:{admin_port}",
        },
    )
    procs.append(gateway)
    wait_ready(admin_port, gateway)
    return gateway, grpc_port, admin_port


def grpcurl(tool: str, args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=EVENT_TIMEOUT_S)


def test_compose_example(bin_path: str, tool: str, procs: list[Proc]) -> None:
    redis_port = start_redis(procs)
    io_port = free_port()
    server = Proc(
        "socket.io server",
        ["node", "server.js"],
        env={"REDIS_URL": f"redis://127.0.0.1:{redis_port}", "PORT": str(io_port)},
        cwd=EXAMPLE,
    )
    procs.append(server)
    server.wait_for("socket.io listening", START_TIMEOUT_S)
    listener = Proc(
        "listener",
        ["node", "listener.js"],
        env={"SERVER_URL": f"http://127.0.0.1:{io_port}", "ROOM": "user:42"},
        cwd=EXAMPLE,
    )
    procs.append(listener)
    listener.wait_for('"connected"', START_TIMEOUT_S)
    gateway, grpc_port, _ = start_gateway(procs, bin_path, EXAMPLE / "emitgate.toml", redis_port)

    emit = {"rooms": ["user:42"], "event": "notification", "args": [{"value": {"text": "hi"}}]}
    r = grpcurl(
        tool, ["-plaintext", "-d", json.dumps(emit), f"127.0.0.1:{grpc_port}", "emitgate.v1.EmitterService/Emit"]
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout).get("receivers") == "1", r.stdout
    got = json.loads(listener.wait_for('"event":"notification"'))
    assert got == {"event": "notification", "args": [{"text": "hi"}]}, got

    sse = {"event": "hello", "args": [{"value": "world"}]}
    r = grpcurl(
        tool,
        ["-plaintext", "-d", json.dumps(sse), f"127.0.0.1:{grpc_port}", "emitgate.v1.EmitterService/ServerSideEmit"],
    )
    assert r.returncode == 0, r.stderr
    assert server.wait_for("server-side event hello").endswith('["world"]')

    gateway.p.send_signal(signal.SIGHUP)
    gateway.wait_for("API keys reloaded")
    assert gateway.stop() == 0, "gateway exit status after SIGTERM"


def rendered_config(render: str, tls_dir: Path) -> str:
    """The emitgate.toml of a chart render, its TLS paths moved to tls_dir."""
    for doc in yaml.safe_load_all(Path(render).read_text()):
        data = (doc or {}).get("data") or (doc or {}).get("stringData") or {}
        if "emitgate.toml" in data:
            return data["emitgate.toml"].replace("/etc/emitgate/tls/", f"{tls_dir}/")
    raise AssertionError(f"{render}: no emitgate.toml")


def test_chart_config(bin_path: str, tool: str, procs: list[Proc], render: str, work: Path, *, full: bool) -> None:
    config = work / f"{Path(render).stem}.toml"
    config.write_text(rendered_config(render, work))
    redis_port = start_redis(procs)
    gateway, grpc_port, admin_port = start_gateway(procs, bin_path, config, redis_port)
    assert http_status(f"http://127.0.0.1:{admin_port}/healthz") == 200
    if full:
        health = grpcurl(
            tool,
            [
                "-cacert",
                str(work / "ca.crt"),
                "-servername",
                "localhost",
                "-d",
                '{"service":""}',
                f"127.0.0.1:{grpc_port}",
                "grpc.health.v1.Health/Check",
            ],
        )
        assert health.returncode == 0 and '"SERVING"' in health.stdout, health.stdout + health.stderr
        emit = grpcurl(
            tool,
            [
                "-cacert",
                str(work / "ca.crt"),
                "-servername",
                "localhost",
                "-d",
                '{"rooms":["r"],"event":"e"}',
                f"127.0.0.1:{grpc_port}",
                "emitgate.v1.EmitterService/Emit",
            ],
        )
        assert "Unauthenticated" in emit.stderr, "the chart's API keys are not in force: " + emit.stdout + emit.stderr
    else:
        plain = grpcurl(
            tool, ["-plaintext", "-d", '{"service":""}', f"127.0.0.1:{grpc_port}", "grpc.health.v1.Health/Check"]
        )
        assert '"SERVING"' in plain.stdout, plain.stdout + plain.stderr
    assert gateway.stop() == 0, "gateway exit status after SIGTERM"


def make_certificate(work: Path) -> None:
    """A self-signed certificate for localhost, also used as the client CA."""
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(work / "tls.key"),
            "-out",
            str(work / "tls.crt"),
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    (work / "ca.crt").write_bytes((work / "tls.crt").read_bytes())


def main(argv: list[str]) -> int:
    if len(argv) != 5:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    bin_path, tool, render_default, render_full = argv[1:]
    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        make_certificate(work)
        tests = [
            ("compose example: Emit reaches a Socket.IO client", lambda p: test_compose_example(bin_path, tool, p)),
            (
                "chart config, default values",
                lambda p: test_chart_config(bin_path, tool, p, render_default, work, full=False),
            ),
            (
                "chart config, every option on (TLS, keys)",
                lambda p: test_chart_config(bin_path, tool, p, render_full, work, full=True),
            ),
        ]
        for name, test in tests:
            procs: list[Proc] = []
            try:
                test(procs)
                passed += 1
                print(f"ok   {name}")
            except Exception as e:  # report every test, then fail the run
                failed += 1
                print(f"FAIL {name}: {e}")
            finally:
                for proc in reversed(procs):
                    proc.stop()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
