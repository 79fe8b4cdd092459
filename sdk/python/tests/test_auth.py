"""API keys against a real gateway that checks them: authentication, scopes, rate limits.

The keyed stack's gateway is configured with the keys of ``keys_toml``: every
refusal below is the gateway's own answer, and a barrier proves that a refused
call delivered nothing to a real Socket.IO client.
"""

from __future__ import annotations

import time

import grpc
import pytest

import emitgate
from tests.conftest import (
    BURST,
    FULL_KEY,
    METERED_ASYNC_KEY,
    METERED_KEY,
    NARROW_KEY,
    RATE,
    barrier,
    names,
)
from tests.stack import Stack


def connect(s: Stack, api_key: str | None) -> emitgate.Client:
    return emitgate.Client(s.grpc, insecure=True, api_key=api_key, timeout=10)


# -- UNAUTHENTICATED ---------------------------------------------------------


def test_a_call_without_a_key_is_unauthenticated(keyed: Stack) -> None:
    sio = keyed.client(rooms=["r"])
    with connect(keyed, None) as c:
        with pytest.raises(emitgate.Unauthenticated) as info:
            c.to("r").emit("nokey")
        with pytest.raises(emitgate.Unauthenticated):
            c.broadcast("nokey")
        with pytest.raises(emitgate.Unauthenticated), c.batch() as b:
            b.to("r").emit("nokey")
    error = info.value
    assert error.code == grpc.StatusCode.UNAUTHENTICATED
    assert "Bearer" in error.message  # the gateway says what to send
    assert isinstance(error, emitgate.EmitgateError)
    assert barrier(keyed, "/", sio) == [[]]


def test_an_unknown_key_is_unauthenticated(keyed: Stack) -> None:
    sio = keyed.client(rooms=["r"])
    with connect(keyed, "egk_not-a-configured-key") as c:
        with pytest.raises(emitgate.Unauthenticated) as info:
            c.to("r").emit("wrongkey")
        with pytest.raises(emitgate.Unauthenticated):
            c.server_side_emit("wrongkey")
    assert info.value.message == "unknown API key"
    assert barrier(keyed, "/", sio) == [[]]


# -- accepted keys -----------------------------------------------------------


def test_the_api_key_sent_by_the_client_is_accepted(keyed: Stack) -> None:
    sio = keyed.client(rooms=["r"])
    admin = keyed.client(namespace="/admin", rooms=["staff"])
    with connect(keyed, FULL_KEY) as c:
        assert c.to("r").emit("keyed", 1).receivers == 2
        assert c.of("/admin").broadcast("keyed-admin").receivers == 2
        c.of("/admin").to("staff").sockets_join("vip")
    with connect(keyed, NARROW_KEY) as c:
        # `/billing*` is in the narrow key's scope, `Emit` among its RPCs
        billing = keyed.client(namespace="/billing/eu", rooms=["invoices"])
        c.of("/billing/eu").to("invoices").emit("paid", 42)
        c.to("r").emit("narrow")
    assert [names(e) for e in barrier(keyed, "/", sio)] == [["keyed", "narrow"]]
    assert [e["args"] for e in billing.events(until="paid")] == [[42]]
    assert [names(e) for e in barrier(keyed, "/admin", admin)] == [["keyed-admin"]]
    assert admin.rooms() == {admin.sid, "staff", "vip"}


# -- PERMISSION_DENIED -------------------------------------------------------


def test_a_key_out_of_its_target_scope_is_permission_denied(keyed: Stack) -> None:
    with connect(keyed, NARROW_KEY) as c, pytest.raises(emitgate.PermissionDenied) as info:
        c.of("/", target="eu").to("r").emit("e")
    assert info.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert 'target "eu"' in info.value.message
    # The scope refused it, not the target: a key allowed there reaches its
    # (unreachable) Redis.
    with connect(keyed, FULL_KEY) as c, pytest.raises(emitgate.Unavailable):
        c.of("/", target="eu").to("r").emit("e")


def test_a_key_out_of_its_namespace_scope_is_permission_denied(keyed: Stack) -> None:
    admin = keyed.client(namespace="/admin", rooms=["r"])
    with connect(keyed, NARROW_KEY) as c, pytest.raises(emitgate.PermissionDenied) as info:
        c.of("/admin").to("r").emit("denied")
    assert 'namespace "/admin"' in info.value.message
    assert barrier(keyed, "/admin", admin) == [[]]


def test_a_key_out_of_its_rpc_scope_is_permission_denied(keyed: Stack) -> None:
    sio = keyed.client(rooms=["r"])
    keyed.listen("/", "denied")
    with connect(keyed, NARROW_KEY) as c:
        with pytest.raises(emitgate.PermissionDenied) as info:
            c.in_("r").disconnect_sockets()
        assert "DisconnectSockets" in info.value.message
        with pytest.raises(emitgate.PermissionDenied, match="Broadcast"):
            c.broadcast("denied")
        with pytest.raises(emitgate.PermissionDenied, match="SocketsJoin"):
            c.in_("r").sockets_join("x")
        with pytest.raises(emitgate.PermissionDenied, match="SocketsLeave"):
            c.in_("r").sockets_leave("r")
        with pytest.raises(emitgate.PermissionDenied, match="ServerSideEmit"):
            c.server_side_emit("denied")
    # Nothing happened: still connected, still in its room, nothing received...
    assert barrier(keyed, "/", sio) == [[]]
    assert sio.rooms() == {sio.sid, "r"}
    # ... and no server got a server-side event before this allowed one.
    with connect(keyed, FULL_KEY) as c:
        c.server_side_emit("denied", "allowed")
    assert [e["args"] for e in keyed.server_events("/", "denied", count=2)] == [["allowed"]] * 2


def test_items_out_of_scope_fail_on_their_own_in_a_batch(keyed: Stack) -> None:
    sio = keyed.client(rooms=["ok"])
    admin = keyed.client(namespace="/admin", rooms=["a"])
    with connect(keyed, NARROW_KEY) as c:
        with c.batch() as b:
            b.to("ok").emit("first")
            b.of("/admin").to("a").emit("denied")
            b.of("/", target="eu").to("ok").emit("denied")
            b.to("ok").emit("last")
        result = b.result
        assert (result.published, result.failed) == (2, 2)
        assert [f.index for f in result.failures] == [1, 2]
        assert {f.code for f in result.failures} == {grpc.StatusCode.PERMISSION_DENIED}
        assert 'namespace "/admin"' in result.failures[0].message
        assert 'target "eu"' in result.failures[1].message
        assert result.results[0].receivers == 2

        # Atomic: the whole batch is refused, naming the item.
        atomic = c.batch(atomic=True)
        atomic.to("ok").emit("atomic")
        atomic.of("/admin").to("a").emit("atomic")
        with pytest.raises(emitgate.PermissionDenied) as info:
            atomic.send()
        assert "items[1]" in info.value.message
        assert atomic.result.published == 0
    assert [names(e) for e in barrier(keyed, "/", sio)] == [["first", "last"]]
    assert barrier(keyed, "/admin", admin) == [[]]


# -- RESOURCE_EXHAUSTED ------------------------------------------------------


def test_over_the_key_rate_is_resource_exhausted_with_a_retry_delay(keyed: Stack) -> None:
    sio = keyed.client(rooms=["m"])
    with connect(keyed, METERED_KEY) as c:
        # A batch counts its items: BURST items use the whole budget at once.
        with c.batch() as b:
            for i in range(BURST):
                b.to("m").emit("tick", i)
        assert b.result.published == BURST
        with pytest.raises(emitgate.ResourceExhausted) as info:
            c.to("m").emit("tick", "over")
        error = info.value
        assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "rate" in error.message
        # From the google.rpc.RetryInfo the gateway sent: at most one token's time.
        assert error.retry_delay is not None
        assert 0 < error.retry_delay <= 1 / RATE
        # The refused call published nothing.
        got = barrier(keyed, "/", sio)[0]
        assert [e["args"] for e in got] == [[i] for i in range(BURST)]

        # Waiting the advertised delay is enough.
        time.sleep(error.retry_delay)
        c.to("m").emit("tick", "after")
    assert sio.events(until="tick")[-1]["args"] == ["after"]


# -- asyncio -----------------------------------------------------------------


def aconnect(s: Stack, api_key: str | None) -> emitgate.AsyncClient:
    return emitgate.AsyncClient(s.grpc, insecure=True, api_key=api_key, timeout=10)


@pytest.mark.asyncio
async def test_async_keys_are_checked(keyed: Stack) -> None:
    sio = keyed.client(rooms=["r"])
    async with aconnect(keyed, None) as c:
        with pytest.raises(emitgate.Unauthenticated):
            await c.to("r").emit("nokey")
    async with aconnect(keyed, "egk_wrong") as c:
        with pytest.raises(emitgate.Unauthenticated):
            await c.broadcast("wrongkey")
    async with aconnect(keyed, NARROW_KEY) as c:
        await c.to("r").emit("accepted")
        with pytest.raises(emitgate.PermissionDenied, match="Broadcast"):
            await c.broadcast("denied")
        with pytest.raises(emitgate.PermissionDenied, match='namespace "/admin"'):
            await c.of("/admin").to("r").emit("denied")
        async with c.batch() as b:
            b.to("r").emit("batched")
            b.of("/admin").to("r").emit("denied")
        assert [f.code for f in b.result.failures] == [grpc.StatusCode.PERMISSION_DENIED]
    assert [names(e) for e in barrier(keyed, "/", sio)] == [["accepted", "batched"]]


@pytest.mark.asyncio
async def test_async_rate_limit_exposes_the_retry_delay(keyed: Stack) -> None:
    sio = keyed.client(rooms=["m"])
    async with aconnect(keyed, METERED_ASYNC_KEY) as c:
        async with c.batch() as b:
            for i in range(BURST):
                b.to("m").emit("tick", i)
        with pytest.raises(emitgate.ResourceExhausted) as info:
            await c.to("m").emit("tick", "over")
        assert info.value.retry_delay is not None
        assert 0 < info.value.retry_delay <= 1 / RATE
    got = barrier(keyed, "/", sio)[0]
    assert [e["args"] for e in got] == [[i] for i in range(BURST)]


# -- idempotency per key -----------------------------------------------------


def test_idempotency_keys_are_scoped_per_api_key(keyed: Stack) -> None:
    sio = keyed.client(rooms=["r"])
    with connect(keyed, FULL_KEY) as full, connect(keyed, NARROW_KEY) as narrow:
        assert not full.to("r").emit("once", "full", idempotency_key="shared").duplicate
        # the same idempotency key under another API key is another operation
        assert not narrow.to("r").emit("once", "narrow", idempotency_key="shared").duplicate
        again = full.to("r").emit("once", "full again", idempotency_key="shared")
        assert again.duplicate
    got = barrier(keyed, "/", sio)[0]
    assert [e["args"] for e in got] == [["full"], ["narrow"]]
