"""Packaging: one top-level name, typed, and importable beside python-socketio."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import zipfile

import emitgate

SDK = pathlib.Path(__file__).resolve().parents[1]


def run_python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_import_beside_python_socketio() -> None:
    out = run_python(
        "import emitgate, socketio; "
        "print(emitgate.Client.__name__, socketio.AsyncRedisManager.__name__)"
    )
    assert out.split() == ["Client", "AsyncRedisManager"]


def test_error_details_do_not_collide_with_googleapis_common_protos() -> None:
    # emitgate's private copy of google.rpc lives under another proto package, so
    # both register in the same protobuf descriptor pool, in either import order.
    for order in (
        "import emitgate; from google.rpc import error_details_pb2, status_pb2",
        "from google.rpc import error_details_pb2, status_pb2; import emitgate",
    ):
        out = run_python(f"{order}; print(status_pb2.Status.DESCRIPTOR.full_name)")
        assert out.strip() == "google.rpc.Status"


def test_importing_claims_no_other_top_level_name() -> None:
    # What the runtime dependencies import by themselves is the baseline.
    out = run_python(
        "import sys, json, grpc, grpc.aio, google.protobuf, msgpack; "
        "before = {m.split('.')[0] for m in sys.modules}; "
        "import emitgate; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} - before)))"
    )
    new = set(json.loads(out))
    assert "emitgate" in new
    assert new - {"emitgate"} <= set(sys.stdlib_module_names)
    out = run_python(
        "import sys, emitgate; print(sorted(m for m in sys.modules if m.startswith('google.')))"
    )
    assert "google.rpc" not in out


def test_wheel_contains_only_the_emitgate_package(tmp_path: pathlib.Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "-w",
            str(tmp_path),
            str(SDK),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    [wheel] = tmp_path.glob("emitgate-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA")))
    tops = {n.split("/")[0] for n in names}
    assert tops == {"emitgate", f"emitgate-{emitgate.__version__}.dist-info"}
    assert "emitgate/py.typed" in names
    assert "emitgate/_gen/emitgate/v1/emitter_pb2.pyi" in names
    assert "emitgate/_gen/emitgate/v1/emitter_pb2_grpc.pyi" in names
    requires = sorted(
        line.split(":", 1)[1].strip().split(">")[0].split("=")[0].split("<")[0]
        for line in metadata.decode().splitlines()
        if line.startswith("Requires-Dist:")
    )
    assert requires == ["grpcio", "msgpack", "protobuf"]


def test_every_public_name_is_documented() -> None:
    for name in emitgate.__all__:
        if name == "__version__":
            continue
        obj = getattr(emitgate, name)
        if isinstance(obj, int):
            continue
        assert obj.__doc__, name
        for attr, member in vars(obj).items():
            if not attr.startswith("_") and callable(member):
                assert member.__doc__, f"{name}.{attr}"
