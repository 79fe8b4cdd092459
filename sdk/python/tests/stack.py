"""Drive the shared end-to-end fixture (tests/harness/stack.js) from Python.

A :class:`Stack` is one running ``stack.js``: a real redis-server, the real
gateway binary and real Socket.IO 4 servers with ``@socket.io/redis-adapter``,
plus ``socket.io-client`` connections created on demand through the harness'
HTTP control API.
"""

from __future__ import annotations

import json
import os
import pathlib
import select
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

REPO = pathlib.Path(__file__).resolve().parents[3]
STACK_JS = REPO / "tests" / "harness" / "stack.js"
WAIT_MS = 5000


def gateway_binary() -> pathlib.Path:
    """Return the gateway binary from $EMITGATE_BIN (default target/debug/emitgate)."""
    path = pathlib.Path(os.environ.get("EMITGATE_BIN") or REPO / "target" / "debug" / "emitgate")
    if not path.is_file() or not os.access(path, os.X_OK):
        raise RuntimeError(
            f"gateway binary {path} not found: build it with `cargo build -p emitgate` "
            "or set EMITGATE_BIN"
        )
    return path


class HarnessError(AssertionError):
    """The control API answered with an unexpected status."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"harness answered {status}: {body}")
        self.status = status
        self.body = body


@dataclass(frozen=True)
class SioClient:
    """A real socket.io-client connection held by the harness."""

    stack: Stack
    id: str
    sid: str

    def events(
        self, until: str | None = None, count: int | None = None, timeout_ms: int = WAIT_MS
    ) -> list[dict[str, Any]]:
        """Wait until ``until`` (or ``count`` events) arrived; return every event received."""
        params: dict[str, Any] = {"timeout_ms": timeout_ms}
        if until is not None:
            params["until"] = until
        if count is not None:
            params["count"] = count
        body = self.stack.get(f"/clients/{self.id}/events", **params)
        events: list[dict[str, Any]] = body["events"]
        return events

    def received(self) -> list[dict[str, Any]]:
        """Return the events received so far, without waiting."""
        return self.events(timeout_ms=1)

    def wait_disconnect(self, timeout_ms: int = WAIT_MS) -> str | None:
        """Wait until the client is disconnected; return the reason."""
        reason: str | None = self.stack.get(
            f"/clients/{self.id}/disconnect", timeout_ms=timeout_ms
        )["reason"]
        return reason

    def info(self) -> dict[str, Any]:
        """Return the harness record of this client (connected, disconnect_reason, ...)."""
        body: dict[str, Any] = self.stack.get(f"/clients/{self.id}")
        return body

    def rooms(self) -> set[str]:
        """Return the rooms of the socket as its server sees them."""
        return set(self.stack.get(f"/clients/{self.id}/rooms")["rooms"])


class Stack:
    """One running ``node tests/harness/stack.js`` with the gateway."""

    def __init__(
        self,
        gateway_args: Sequence[str] = (),
        servers: int = 2,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        """Start the stack; ``client_options`` are how tests reach its gateway.

        They are the keyword arguments of ``emitgate.Client`` (credentials, TLS
        files) that the stack's own helpers, such as barriers, connect with.
        """
        self.client_options: dict[str, Any] = dict(client_options or {"insecure": True})
        # Kept open for the life of the stack: it collects the stack's stderr.
        self._log: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        command = ["node", str(STACK_JS), "--gateway", str(gateway_binary())]
        command += [f"--gateway-arg={arg}" for arg in gateway_args]
        command += ["--servers", str(servers)]
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        try:
            ready = self._read_ready_line(timeout=30.0)
        except BaseException:
            self.close()
            raise
        self.control: str = ready["control"]
        self.grpc: str = ready["grpc"]
        self.redis_url: str = ready["redis_url"]
        self.servers: list[int] = ready["servers"]
        self._barriers = 0

    def _read_ready_line(self, timeout: float) -> dict[str, Any]:
        assert self._process.stdout is not None
        deadline = time.monotonic() + timeout
        line = b""
        fd = self._process.stdout.fileno()
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(f"stack.js printed no ready line in {timeout}s:\n{self.log()}")
            readable, _, _ = select.select([fd], [], [], remaining)
            if readable:
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise RuntimeError(f"stack.js exited before it was ready:\n{self.log()}")
                line += chunk
        ready: dict[str, Any] = json.loads(line)
        if not ready.get("grpc"):
            raise RuntimeError(f"stack.js started no gateway: {ready}")
        return ready

    def log(self) -> str:
        """Return what the stack (and the gateway) wrote on stderr."""
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")

    def close(self) -> None:
        """Stop the stack: closing its stdin makes it stop everything it started."""
        if self._process.stdin is not None and not self._process.stdin.closed:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.terminate()
            self._process.wait(timeout=5)
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._log.close()

    # -- control API -------------------------------------------------------

    def request(self, method: str, path: str, body: Any | None = None) -> Any:
        """Call the control API; return the decoded JSON answer (raise unless 2xx)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.control + path,
            data=data,
            method=method,
            headers={"content-type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as answer:
                return json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                decoded = json.loads(raw)
            except ValueError:
                decoded = raw.decode("utf-8", "replace")
            raise HarnessError(error.code, decoded) from None

    def get(self, path: str, **params: Any) -> Any:
        """GET ``path`` with query ``params``."""
        query = urllib.parse.urlencode(params)
        return self.request("GET", f"{path}?{query}" if query else path)

    def client(
        self, namespace: str = "/", server: int = 0, rooms: Sequence[str] = (), **extra: Any
    ) -> SioClient:
        """Connect a real socket.io client to ``server``, joined to ``rooms``.

        ``extra`` are the control API's other fields: ``ack`` (``{"reply": v}``
        or ``"never"``), ``data`` (the server's ``socket.data``), ``auth``, ``headers``.
        """
        body = self.request(
            "POST",
            "/clients",
            {"namespace": namespace, "server": server, "rooms": list(rooms), **extra},
        )
        return SioClient(self, body["id"], body["sid"])

    def listen(self, namespace: str, event: str, **extra: Any) -> None:
        """Register an ``io.of(namespace).on(event)`` handler on every server.

        ``extra``: ``reply`` (what the handlers pass to a callback) and
        ``servers`` (the server indexes whose handlers call back).
        """
        self.request("POST", "/listen", {"namespace": namespace, "event": event, **extra})

    def server_events(
        self, namespace: str, event: str, count: int = 1, timeout_ms: int = WAIT_MS
    ) -> list[dict[str, Any]]:
        """Wait until the servers' handlers got ``count`` events; return them."""
        body = self.get(
            "/server-events", namespace=namespace, event=event, count=count, timeout_ms=timeout_ms
        )
        events: list[dict[str, Any]] = body["events"]
        return events

    def reset(self) -> None:
        """Disconnect and forget every client and listener."""
        self.request("POST", "/reset", {})

    def errors(self) -> list[dict[str, Any]]:
        """Return what the Socket.IO servers could not handle (malformed messages...)."""
        errors: list[dict[str, Any]] = self.get("/errors")["errors"]
        return errors

    def next_barrier(self) -> str:
        """Return a new barrier event name."""
        self._barriers += 1
        return f"barrier-{self._barriers}"
