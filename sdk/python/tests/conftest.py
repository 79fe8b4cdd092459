"""Fixtures: real gateways, Redis and Socket.IO servers started through tests/harness."""

from __future__ import annotations

import pathlib
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio

import emitgate
from tests.stack import SioClient, Stack

# The gateway of the `limited` stack refuses BatchEmit calls with more items.
BATCH_LIMIT = 5


@pytest.fixture(scope="session")
def blackhole() -> Iterator[int]:
    """A loopback port that accepts TCP connections and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener.getsockname()[1]


@pytest.fixture(scope="session")
def config_file(tmp_path_factory: pytest.TempPathFactory, blackhole: int) -> pathlib.Path:
    """A gateway config with two broken targets.

    ``down``'s Redis is a closed port (connections are refused); ``blackhole``'s
    accepts connections and never answers, so calls wait for the gateway's
    Redis timeout.
    """
    path = tmp_path_factory.mktemp("gateway") / "emitgate.toml"
    path.write_text(
        '[[targets]]\nname = "down"\nredis_url = "redis://127.0.0.1:1"\n'
        'dialect = "socketio"\nkey = "socket.io"\n\n'
        f'[[targets]]\nname = "blackhole"\nredis_url = "redis://127.0.0.1:{blackhole}"\n'
        'dialect = "socketio"\nkey = "socket.io"\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="session")
def stack(config_file: pathlib.Path) -> Iterator[Stack]:
    """The main stack: a gateway with default limits plus the `down` target."""
    s = Stack(
        gateway_args=[
            "--config",
            str(config_file),
            "--redis-timeout-ms",
            "500",
            "--max-message-bytes",
            "262144",
        ]
    )
    yield s
    s.close()


@pytest.fixture(scope="session")
def limited_stack() -> Iterator[Stack]:
    """A second stack whose gateway allows only BATCH_LIMIT items per BatchEmit."""
    s = Stack(gateway_args=["--max-batch-items", str(BATCH_LIMIT)])
    yield s
    s.close()


def _check_clean(s: Stack) -> None:
    errors = s.errors()
    s.reset()
    assert errors == [], "the Socket.IO servers could not handle a message"


@pytest.fixture
def harness(stack: Stack) -> Iterator[Stack]:
    """The main stack, reset after the test, which fails if a server saw a bad message."""
    yield stack
    _check_clean(stack)


@pytest.fixture
def limited(limited_stack: Stack) -> Iterator[Stack]:
    """The limited stack, reset after the test."""
    yield limited_stack
    _check_clean(limited_stack)


@pytest.fixture
def client(harness: Stack) -> Iterator[emitgate.Client]:
    """A sync client on the main stack's gateway."""
    with emitgate.Client(harness.grpc, insecure=True, timeout=10) as c:
        yield c


@pytest_asyncio.fixture
async def aclient(harness: Stack) -> AsyncIterator[emitgate.AsyncClient]:
    """An asyncio client on the main stack's gateway."""
    async with emitgate.AsyncClient(harness.grpc, insecure=True, timeout=10) as c:
        yield c


def barrier(s: Stack, namespace: str, *clients: SioClient) -> list[list[dict[str, Any]]]:
    """Return, per client, the events it received before a barrier broadcast.

    Redis delivers to each server in publish order, so once a client saw the
    barrier everything published before it has arrived; what is missing then
    was not delivered.
    """
    name = s.next_barrier()
    with emitgate.Client(s.grpc, insecure=True) as c:
        c.of(namespace).broadcast(name)
    received = []
    for sio in clients:
        events = sio.events(until=name)
        index = next(i for i, e in enumerate(events) if e["event"] == name)
        received.append(events[:index])
    return received


def names(events: list[dict[str, Any]]) -> list[str]:
    """Return the event names of ``events``."""
    return [e["event"] for e in events]
