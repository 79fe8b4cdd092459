"""The shared conformance scenarios (tests/conformance/scenarios.json), run against real gateways.

Every SDK runs the same file; tests/conformance/README.md describes its
format. A scenario's operations are written with the JavaScript emitter's
words and mapped here onto this SDK's API (``except`` -> ``except_``, ...).
"""

from __future__ import annotations

import base64
import json
import secrets
import socket
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import pytest

import emitgate
from tests.stack import REPO, SioClient, Stack

CONFORMANCE = REPO / "tests" / "conformance"
SPEC: dict[str, Any] = json.loads((CONFORMANCE / "scenarios.json").read_text(encoding="utf-8"))
RUN = secrets.token_hex(4)  # makes idempotency keys unique per run


# -- values -------------------------------------------------------------------


def expand(value: Any, i: int | None = None) -> Any:
    """Turn a scenario value into the plain value it stands for (for sending)."""
    if isinstance(value, str):
        text = value.replace("{run}", RUN)
        return text if i is None else text.replace("{i}", str(i))
    if isinstance(value, list):
        out: list[Any] = []
        for item in value:
            if isinstance(item, dict) and "$spread" in item:
                out += [expand(item["$spread"], i)] * item["count"]
            else:
                out.append(expand(item, i))
        return out
    if isinstance(value, dict):
        if "$binary" in value:
            return base64.b64decode(value["$binary"])
        if "$int" in value:
            return int(value["$int"])
        if "$text" in value:
            return value["$text"] * value["count"]
        if "$repeat" in value:
            return [value["$repeat"].replace("{i}", str(n)) for n in range(value["count"])]
        if "$nest" in value:
            nested = expand(value["leaf"], i)
            for _ in range(value["$nest"]):
                nested = [nested]
            return nested
        return {k: expand(v, i) for k, v in value.items()}
    return value


def expected(value: Any, i: int | None = None) -> Any:
    """Turn an expected value into what the harness reports (binary stays tagged)."""
    if isinstance(value, str):
        return expand(value, i)
    if isinstance(value, list):
        return [expected(v, i) for v in value]
    if isinstance(value, dict):
        if "$binary" in value:
            return value
        if "$nest" in value:
            nested = expected(value["leaf"], i)
            for _ in range(value["$nest"]):
                nested = [nested]
            return nested
        return {k: expected(v, i) for k, v in value.items()}
    return value


def same(got: Any, want: Any) -> bool:
    """Compare received with expected JSON; numbers compare as the doubles clients hold."""
    if isinstance(want, bool) or isinstance(got, bool):
        return got is want
    if isinstance(want, (int, float)) and isinstance(got, (int, float)):
        return float(got) == float(want)
    if isinstance(want, list):
        return (
            isinstance(got, list)
            and len(got) == len(want)
            and all(same(g, w) for g, w in zip(got, want))
        )
    if isinstance(want, dict):
        return (
            isinstance(got, dict)
            and got.keys() == want.keys()
            and all(same(got[k], w) for k, w in want.items())
        )
    return bool(got == want)


def unroll(entries: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], int | None]]:
    """Yield each entry with its ``{i}`` (``{"repeat": entry, "count": n}`` gives n)."""
    for entry in entries:
        if "repeat" in entry:
            for i in range(entry["count"]):
                yield entry["repeat"], i
        else:
            yield entry, None


# -- operations ---------------------------------------------------------------

ACTIONS = (
    "emit",
    "broadcast",
    "serverSideEmit",
    "socketsJoin",
    "socketsLeave",
    "disconnectSockets",
)


def chain(start: Any, op: dict[str, Any], i: int | None) -> Any:
    """Apply the selection words of ``op`` to an entry point (client, batch, publisher)."""
    operator = start.of(op.get("of", "/"), target=op.get("target"))
    if "to" in op:
        operator = operator.to(expand(op["to"], i))
    if "in" in op:
        operator = operator.in_(expand(op["in"], i))
    if "except" in op:
        operator = operator.except_(expand(op["except"], i))
    if op.get("volatile"):
        operator = operator.volatile
    if "compress" in op:
        operator = operator.compress(op["compress"])
    return operator


def perform(start: Any, op: dict[str, Any], i: int | None) -> Any:
    """Run one operation on ``start``; return what the SDK returned."""
    (action,) = [a for a in ACTIONS if a in op]
    key = op.get("idempotencyKey")
    kw = {} if key is None else {"idempotency_key": expand(key, i)}
    operator = chain(start, op, i)
    value = expand(op[action], i)
    if action == "emit":
        return operator.emit(*value, **kw)
    if action == "broadcast":
        return operator.broadcast(*value, **kw)
    if action == "serverSideEmit":
        return operator.server_side_emit(*value, **kw)
    if action == "socketsJoin":
        return operator.sockets_join(value, **kw)
    if action == "socketsLeave":
        return operator.sockets_leave(value, **kw)
    return operator.disconnect_sockets(close=value, **kw)


def check_error(error: BaseException, want: dict[str, Any], where: str) -> None:
    """Check an error against ``{"code", "fields", "limits"}``."""
    assert isinstance(error, emitgate.EmitgateError), f"{where}: not an EmitgateError: {error!r}"
    assert error.code.name == want["code"], f"{where}: {error!r}"
    fields = [v.field for v in getattr(error, "violations", ())]
    for field in want.get("fields", []):
        assert any(f == field or f.startswith((field + ".", field + "[")) for f in fields), (
            f"{where}: no violation on {field} in {fields}"
        )
    for name, value in want.get("limits", {}).items():
        assert error.limits.get(name) == value, f"{where}: limits {error.limits}, want {name}"


def check_result(result: Any, want: dict[str, Any], where: str) -> None:
    """Check a result against ``{"receivers", "duplicate"}``."""
    for name, value in want.items():
        assert getattr(result, name) == value, f"{where}: {name} of {result}"


def check_outcome(call: Any, want: dict[str, Any] | None, where: str) -> None:
    """Run ``call``; check its result or its error against ``want``."""
    try:
        result = call()
    except Exception as error:
        failure: BaseException | None = error
    else:
        failure = None
    if failure is not None:
        if want is None or "error" not in want:
            raise AssertionError(f"{where}: unexpected {failure!r}") from failure
        check_error(failure, want["error"], where)
        return
    assert want is None or "error" not in want, f"{where}: no error; got {result}"
    if want is not None:
        check_result(result, want.get("result", {}), where)


def run_batch(client: emitgate.Client, step: dict[str, Any], where: str) -> None:
    items = list(unroll(step["batch"]))
    batch = client.batch()
    for entry, i in items:
        perform(batch, entry["op"], i)
    want = step.get("expect", {})
    try:
        result = batch.send()
    except emitgate.EmitgateError as error:
        if "error" not in want:
            raise AssertionError(f"{where}: unexpected {error!r}") from error
        check_error(error, want["error"], where)
        return
    assert "error" not in want, f"{where}: no error; got {result}"
    for name in ("published", "failed"):
        if name in want:
            assert getattr(result, name) == want[name], f"{where}: {name} of {result}"
    for index, (entry, _) in enumerate(items):
        expect = entry.get("expect")
        if expect is None:
            continue
        item = result.results[index]
        if "error" in expect:
            assert item.code.name == expect["error"]["code"], f"{where} item {index}: {item}"
            fields = [v.field for v in item.violations]
            for field in expect["error"].get("fields", []):
                assert field in fields, f"{where} item {index}: no {field} in {fields}"
        else:
            assert item.ok, f"{where} item {index}: {item}"
            check_result(item, expect.get("result", {}), f"{where} item {index}")


def run_publisher(client: emitgate.Client, step: dict[str, Any], where: str) -> None:
    items = list(unroll(step["publisher"]))
    handles: list[Future[emitgate.Result]] = []
    with client.publisher(**step.get("options", {})) as publisher:
        for entry, i in items:
            handles.append(perform(publisher, entry["op"], i))
    for index, ((entry, _), handle) in enumerate(zip(items, handles)):
        check_outcome(handle.result, entry.get("expect"), f"{where} event {index}")


# -- stacks and scenarios -----------------------------------------------------


class Stacks:
    """One stack per entry of the file's ``stacks``, started when first needed."""

    def __init__(self, tmp: pytest.TempPathFactory) -> None:
        self._tmp = tmp
        self._started: dict[str, Stack] = {}

    def get(self, name: str) -> Stack:
        if name not in self._started:
            spec = SPEC["stacks"][name]
            args = list(spec.get("gateway_args", []))
            if "config" in spec:
                path = self._tmp.mktemp(f"conformance-{name}") / "emitgate.toml"
                path.write_text(spec["config"], encoding="utf-8")
                args += ["--config", str(path)]
            self._started[name] = Stack(gateway_args=args)
        return self._started[name]

    def close(self) -> None:
        for s in self._started.values():
            s.close()


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stacks]:
    """The scenario file's stacks, stopped after the module."""
    started = Stacks(tmp_path_factory)
    yield started
    started.close()


def closed_port() -> int:
    """Return a loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.mark.parametrize("scenario", SPEC["scenarios"], ids=[s["name"] for s in SPEC["scenarios"]])
def test_scenario(scenario: dict[str, Any], stacks: Stacks) -> None:
    if scenario.get("gateway") == "closed":
        with emitgate.Client(f"127.0.0.1:{closed_port()}", insecure=True, timeout=5) as client:
            for n, step in enumerate(scenario["steps"]):
                check_outcome(
                    lambda step=step: perform(client, step["op"], None), step["expect"], f"step {n}"
                )
        return
    s = stacks.get(scenario.get("stack", "default"))
    try:
        run_scenario(s, scenario)
        assert s.errors() == [], "the Socket.IO servers could not handle a message"
    finally:
        s.reset()


def run_scenario(s: Stack, scenario: dict[str, Any]) -> None:
    clients: dict[str, SioClient] = {}
    namespaces: dict[str, str] = {}
    for name, spec in scenario.get("clients", {}).items():
        namespace = spec.get("namespace", "/")
        clients[name] = s.client(namespace, spec.get("server", 0), spec.get("rooms", []))
        namespaces[name] = namespace
    for listener in scenario.get("listen", []):
        s.listen(listener["namespace"], listener["event"])
    with emitgate.Client(s.grpc, insecure=True, timeout=10) as client:
        for n, step in enumerate(scenario["steps"]):
            where = f"step {n}"
            if "batch" in step:
                run_batch(client, step, where)
            elif "publisher" in step:
                run_publisher(client, step, where)
            else:
                check_outcome(
                    lambda step=step: perform(client, step["op"], None), step.get("expect"), where
                )
    want = scenario.get("expect", {})
    for name, reason in want.get("disconnected", {}).items():
        assert clients[name].wait_disconnect() == reason, f"client {name}"
    for name, rooms in want.get("rooms", {}).items():
        joined = clients[name].rooms() - {clients[name].sid}
        assert joined == set(rooms), f"rooms of client {name}"
    for server_event in want.get("server_events", []):
        events = s.server_events(
            server_event["namespace"], server_event["event"], count=server_event["count"]
        )
        assert len(events) == server_event["count"]
        for e in events:
            assert same(e["args"], expected(server_event["args"])), f"server event {e}"
    # One barrier per namespace: what a client had not received before it was
    # not delivered (Redis delivers to each server in publish order).
    deliveries = want.get("deliveries", {})
    barriers: dict[str, str] = {}
    with emitgate.Client(s.grpc, insecure=True) as c:
        for namespace in sorted({namespaces[name] for name in deliveries}):
            barriers[namespace] = s.next_barrier()
            c.of(namespace).broadcast(barriers[namespace])
    for name, wanted_events in deliveries.items():
        barrier = barriers[namespaces[name]]
        events = clients[name].events(until=barrier)
        got = events[: next(i for i, e in enumerate(events) if e["event"] == barrier)]
        wanted = [
            {"event": expand(d["event"], i), "args": expected(d["args"], i)}
            for d, i in unroll(wanted_events)
        ]
        assert len(got) == len(wanted), f"client {name} got {got[:5]}..., want {wanted[:5]}..."
        for g, w in zip(got, wanted):
            assert same(g, w), f"client {name} got {g}, want {w}"


def test_constants_match_the_shared_file() -> None:
    """The SDK's limits, depth and Publisher defaults are the shared constants."""
    from emitgate import _args, _core, _errors, _publish

    c = json.loads((CONFORMANCE / "constants.json").read_text(encoding="utf-8"))
    assert c["gateway_defaults"]["max_batch_items"] == _core.DEFAULT_MAX_BATCH_ITEMS
    assert c["max_depth"] == _args._MAX_DEPTH
    assert c["max_safe_integer"] == _args.MAX_SAFE_INTEGER
    assert c["limit_error"]["reason"] == _errors.LIMIT_EXCEEDED
    assert c["limit_error"]["domain"] == _errors.ERROR_DOMAIN
    p = c["publisher"]
    assert p["max_items"] == _publish.DEFAULT_MAX_ITEMS
    assert p["max_bytes"] == _publish.DEFAULT_MAX_BYTES
    assert p["linger_ms"] / 1000 == _publish.DEFAULT_LINGER
    assert p["max_in_flight"] == _publish.DEFAULT_MAX_IN_FLIGHT
    assert p["buffer"] == _publish.DEFAULT_BUFFER
    assert _publish.PublisherOptions().on_full == p["on_full"]
    assert p["retry_initial_ms"] / 1000 == _publish.RETRY_INITIAL
    assert p["retry_multiplier"] == _publish.RETRY_MULTIPLIER
    assert p["retry_max_ms"] / 1000 == _publish.RETRY_MAX
    assert p["retry_attempts"] == _publish.RETRY_ATTEMPTS
