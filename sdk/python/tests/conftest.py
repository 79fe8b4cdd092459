"""Fixtures: real gateways, Redis and Socket.IO servers started through tests/harness."""

from __future__ import annotations

import hashlib
import json
import pathlib
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio

import emitgate
from tests import pki
from tests.stack import SioClient, Stack

# The gateway of the `limited` stack refuses BatchEmit calls with more items.
BATCH_LIMIT = 5

# API key secrets of the stacks whose gateway checks keys (see keys_toml).
FULL_KEY = "egk_full-secret"
NARROW_KEY = "egk_narrow-secret"
METERED_KEY = "egk_metered-secret"
METERED_ASYNC_KEY = "egk_metered-async-secret"
# The metered keys' budget: RATE events per second, BURST at once.
RATE, BURST = 2, 4


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
    Redis timeout; ``python`` speaks the python-socketio dialect, which has no
    server-side emit (UNIMPLEMENTED).
    """
    path = tmp_path_factory.mktemp("gateway") / "emitgate.toml"
    path.write_text(
        '[[targets]]\nname = "down"\nredis_url = "redis://127.0.0.1:1"\n'
        'dialect = "socketio"\nkey = "socket.io"\n\n'
        f'[[targets]]\nname = "blackhole"\nredis_url = "redis://127.0.0.1:{blackhole}"\n'
        'dialect = "socketio"\nkey = "socket.io"\n\n'
        # encoding refuses server_side_emit for this dialect before any Redis I/O
        '[[targets]]\nname = "python"\nredis_url = "redis://127.0.0.1:1"\n'
        'dialect = "python-socketio"\n',
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


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def keys_toml() -> str:
    """API keys: ``full`` may do anything; ``narrow`` may only Emit and BatchEmit
    on the default target in ``/`` and ``/billing*``; the ``metered`` keys may
    do anything at RATE events per second (BURST at once), each its own budget.
    """
    return (
        f'[[auth.keys]]\nid = "full"\nsecret_sha256 = "{_sha256(FULL_KEY)}"\n\n'
        f'[[auth.keys]]\nid = "narrow"\nsecret_sha256 = "{_sha256(NARROW_KEY)}"\n'
        'targets = ["default"]\nnamespaces = ["/", "/billing*"]\nrpcs = ["Emit", "BatchEmit"]\n\n'
        f'[[auth.keys]]\nid = "metered"\nsecret_sha256 = "{_sha256(METERED_KEY)}"\n'
        f"rate_per_second = {RATE}\nburst = {BURST}\n\n"
        f'[[auth.keys]]\nid = "metered-async"\nsecret_sha256 = "{_sha256(METERED_ASYNC_KEY)}"\n'
        f"rate_per_second = {RATE}\nburst = {BURST}\n"
    )


def _path(path: pathlib.Path) -> str:
    """Return ``path`` as a TOML string (JSON string syntax is valid TOML)."""
    return json.dumps(str(path))


def _write(directory: pathlib.Path, text: str) -> pathlib.Path:
    path = directory / "emitgate.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def keyed_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack whose gateway requires API keys (keys_toml), over plaintext.

    Its ``eu`` target is a closed port: a key allowed there gets UNAVAILABLE,
    one that is not gets PERMISSION_DENIED before any Redis I/O.
    """
    config = _write(
        tmp_path_factory.mktemp("keyed"),
        keys_toml() + '\n[[targets]]\nname = "eu"\nredis_url = "redis://127.0.0.1:1"\n',
    )
    s = Stack(
        gateway_args=["--config", str(config)],
        client_options={"insecure": True, "api_key": FULL_KEY},
    )
    yield s
    s.close()


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> pki.Pki:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate CN=billing."""
    return pki.generate(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def tls_stack(tmp_path_factory: pytest.TempPathFactory, certs: pki.Pki) -> Iterator[Stack]:
    """A stack whose gateway serves TLS (no client certificates) and requires API keys."""
    config = _write(
        tmp_path_factory.mktemp("tls"),
        f"[tls]\ncert = {_path(certs.server_cert)}\nkey = {_path(certs.server_key)}\n\n"
        + keys_toml(),
    )
    s = Stack(
        gateway_args=["--config", str(config)],
        client_options={"root_certificates": certs.read("ca"), "api_key": FULL_KEY},
    )
    yield s
    s.close()


@pytest.fixture(scope="session")
def mtls_stack(tmp_path_factory: pytest.TempPathFactory, certs: pki.Pki) -> Iterator[Stack]:
    """A stack whose gateway requires a client certificate signed by the test CA.

    The certificate CN=billing authenticates as the key ``billing``, which may
    only Emit; a bearer key (``full``) still takes precedence when sent.
    """
    config = _write(
        tmp_path_factory.mktemp("mtls"),
        f"[tls]\ncert = {_path(certs.server_cert)}\nkey = {_path(certs.server_key)}\n"
        f"client_ca = {_path(certs.ca)}\nclient_auth_required = true\n\n"
        '[[auth.keys]]\nid = "billing"\nclient_subject = "CN=billing"\nrpcs = ["Emit"]\n\n'
        f'[[auth.keys]]\nid = "full"\nsecret_sha256 = "{_sha256(FULL_KEY)}"\n',
    )
    s = Stack(
        gateway_args=["--config", str(config)],
        client_options={
            "root_certificates": certs.read("ca"),
            "private_key": certs.read("client_key"),
            "certificate_chain": certs.read("client_cert"),
            "api_key": FULL_KEY,
        },
    )
    yield s
    s.close()


@pytest.fixture(scope="session")
def shedding_stack(tmp_path_factory: pytest.TempPathFactory, blackhole: int) -> Iterator[Stack]:
    """A stack whose gateway serves one call at a time; ``blackhole`` holds it for 1 s."""
    config = _write(
        tmp_path_factory.mktemp("shedding"),
        "[limits]\nmax_in_flight = 1\n[redis]\ntimeout_ms = 1000\n\n"
        f'[[targets]]\nname = "blackhole"\nredis_url = "redis://127.0.0.1:{blackhole}"\n',
    )
    s = Stack(gateway_args=["--config", str(config)], servers=1)
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
def keyed(keyed_stack: Stack) -> Iterator[Stack]:
    """The keyed stack, reset after the test."""
    yield keyed_stack
    _check_clean(keyed_stack)


@pytest.fixture
def tls(tls_stack: Stack) -> Iterator[Stack]:
    """The TLS stack, reset after the test."""
    yield tls_stack
    _check_clean(tls_stack)


@pytest.fixture
def mtls(mtls_stack: Stack) -> Iterator[Stack]:
    """The mTLS stack, reset after the test."""
    yield mtls_stack
    _check_clean(mtls_stack)


@pytest.fixture
def shedding(shedding_stack: Stack) -> Iterator[Stack]:
    """The shedding stack, reset after the test."""
    yield shedding_stack
    _check_clean(shedding_stack)


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
    with emitgate.Client(s.grpc, **s.client_options) as c:
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
