"""TLS and mutual TLS through the clients' constructor options, against real gateways.

The certificates are made for the session by ``tests.pki`` (openssl): the TLS
stack's gateway serves the server certificate and checks bearer keys; the mTLS
stack's gateway also requires a client certificate from the test CA, and its
subject ``CN=billing`` authenticates as an API key.
"""

from __future__ import annotations

import grpc
import pytest

import emitgate
from tests import pki
from tests.conftest import FULL_KEY, barrier, names
from tests.pki import Pki
from tests.stack import Stack

# -- TLS (server authentication) ---------------------------------------------


def test_tls_with_a_ca_file_and_an_api_key(tls: Stack, certs: Pki) -> None:
    sio = tls.client(rooms=["r"])
    ca = certs.read("ca")
    with emitgate.Client(tls.grpc, root_certificates=ca, api_key=FULL_KEY, timeout=10) as c:
        assert c.to("r").emit("over-tls", {"b": b"\x01"}).receivers == 2
    # The certificate is also valid for the name localhost.
    port = tls.grpc.rsplit(":", 1)[1]
    with emitgate.Client(
        f"localhost:{port}", root_certificates=ca, api_key=FULL_KEY, timeout=10
    ) as c:
        c.to("r").emit("by-name")
    got = barrier(tls, "/", sio)[0]
    assert names(got) == ["over-tls", "by-name"]
    assert got[0]["args"] == [{"b": {"$binary": "AQ=="}}]


def test_tls_still_requires_the_api_key(tls: Stack, certs: Pki) -> None:
    sio = tls.client(rooms=["r"])
    c = emitgate.Client(tls.grpc, root_certificates=certs.read("ca"), timeout=10)
    with c, pytest.raises(emitgate.Unauthenticated):
        c.to("r").emit("nokey")
    assert barrier(tls, "/", sio) == [[]]


def test_a_gateway_certificate_from_another_ca_is_refused(tls: Stack, certs: Pki) -> None:
    other = certs.read("other_ca")
    c = emitgate.Client(tls.grpc, root_certificates=other, api_key=FULL_KEY, timeout=10)
    with c, pytest.raises(emitgate.Unavailable) as info:
        c.broadcast("untrusted")
    assert "CERTIFICATE_VERIFY_FAILED" in info.value.message
    # Without root_certificates the system roots are used: they do not know the test CA.
    c = emitgate.Client(tls.grpc, api_key=FULL_KEY, timeout=10)
    with c, pytest.raises(emitgate.Unavailable):
        c.broadcast("untrusted")


def test_plaintext_does_not_reach_a_tls_gateway(tls: Stack) -> None:
    c = emitgate.Client(tls.grpc, insecure=True, api_key=FULL_KEY, timeout=10)
    with c, pytest.raises(emitgate.Unavailable):
        c.broadcast("plaintext")


@pytest.mark.asyncio
async def test_async_client_over_tls(tls: Stack, certs: Pki) -> None:
    sio = tls.client(rooms=["r"])
    ca = certs.read("ca")
    async with emitgate.AsyncClient(
        tls.grpc, root_certificates=ca, api_key=FULL_KEY, timeout=10
    ) as c:
        await c.to("r").emit("async-tls")
    async with emitgate.AsyncClient(tls.grpc, root_certificates=ca, timeout=10) as c:
        with pytest.raises(emitgate.Unauthenticated):
            await c.to("r").emit("nokey")
    async with emitgate.AsyncClient(tls.grpc, root_certificates=certs.read("other_ca")) as c:
        with pytest.raises(emitgate.Unavailable):
            await c.broadcast("untrusted")
    assert names(barrier(tls, "/", sio)[0]) == ["async-tls"]


# -- mutual TLS --------------------------------------------------------------


def mtls_client(s: Stack, certs: Pki, **kwargs: object) -> emitgate.Client:
    return emitgate.Client(
        s.grpc,
        root_certificates=certs.read("ca"),
        private_key=certs.read("client_key"),
        certificate_chain=certs.read("client_cert"),
        timeout=10,
        **kwargs,  # type: ignore[arg-type]
    )


def test_mtls_client_certificate_authenticates_as_its_key(mtls: Stack, certs: Pki) -> None:
    sio = mtls.client(rooms=["r"])
    with mtls_client(mtls, certs) as c:
        # No api_key: the certificate's subject CN=billing is the key.
        assert c.to("r").emit("by-certificate", 7).receivers == 2
        # ... whose scope applies: it may only Emit.
        with pytest.raises(emitgate.PermissionDenied) as info:
            c.broadcast("denied")
        assert 'API key "billing"' in info.value.message
        with pytest.raises(emitgate.PermissionDenied):
            c.in_("r").disconnect_sockets()
    # A bearer key sent over the same certificate takes its place.
    with mtls_client(mtls, certs, api_key=FULL_KEY) as c:
        c.broadcast("by-bearer-key")
    got = barrier(mtls, "/", sio)[0]
    assert [(e["event"], e["args"]) for e in got] == [
        ("by-certificate", [7]),
        ("by-bearer-key", []),
    ]


def test_mtls_without_a_client_certificate_is_refused(mtls: Stack, certs: Pki) -> None:
    sio = mtls.client(rooms=["r"])
    ca = certs.read("ca")
    c = emitgate.Client(mtls.grpc, root_certificates=ca, api_key=FULL_KEY, timeout=10)
    with c, pytest.raises(emitgate.Unavailable) as info:
        c.to("r").emit("no-certificate")
    assert info.value.code == grpc.StatusCode.UNAVAILABLE
    assert barrier(mtls, "/", sio) == [[]]


def test_a_client_certificate_the_gateway_does_not_trust_is_refused(
    mtls: Stack, certs: Pki, tmp_path_factory: pytest.TempPathFactory
) -> None:
    sio = mtls.client(rooms=["r"])
    stranger = pki.generate(tmp_path_factory.mktemp("stranger"))
    c = emitgate.Client(
        mtls.grpc,
        root_certificates=certs.read("ca"),
        private_key=stranger.read("client_key"),
        certificate_chain=stranger.read("client_cert"),
        timeout=10,
    )
    with c, pytest.raises(emitgate.Unavailable):
        c.to("r").emit("stranger")
    assert barrier(mtls, "/", sio) == [[]]


@pytest.mark.asyncio
async def test_async_client_over_mtls(mtls: Stack, certs: Pki) -> None:
    sio = mtls.client(rooms=["r"])
    async with emitgate.AsyncClient(
        mtls.grpc,
        root_certificates=certs.read("ca"),
        private_key=certs.read("client_key"),
        certificate_chain=certs.read("client_cert"),
        timeout=10,
    ) as c:
        await c.to("r").emit("async-mtls")
        with pytest.raises(emitgate.PermissionDenied):
            await c.broadcast("denied")
    assert names(barrier(mtls, "/", sio)[0]) == ["async-mtls"]
