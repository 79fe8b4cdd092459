"""A protoc plugin that runs grpcio-tools' built-in grpc_python generator.

grpcio-tools links the gRPC Python generator into its bundled protoc instead of
shipping a protoc-gen-grpc_python executable, and buf only calls the generators
it knows as protoc builtins. This plugin reads buf's CodeGeneratorRequest, hands
the same descriptors to grpcio-tools' protoc (``--descriptor_set_in``) and
returns the files it writes as a CodeGeneratorResponse.
"""

from __future__ import annotations

import pathlib
import sys
import tempfile

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2
from grpc_tools import protoc


def main() -> int:
    """Run the generator for one CodeGeneratorRequest read from stdin."""
    request = plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())
    response = plugin_pb2.CodeGeneratorResponse(
        supported_features=plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        descriptors = root / "descriptors.pb"
        out = root / "out"
        out.mkdir()
        descriptors.write_bytes(
            descriptor_pb2.FileDescriptorSet(file=request.proto_file).SerializeToString()
        )
        option = f"{request.parameter}:" if request.parameter else ""
        code = protoc.main(
            [
                "grpc_tools.protoc",
                f"--descriptor_set_in={descriptors}",
                f"--grpc_python_out={option}{out}",
                *request.file_to_generate,
            ]
        )
        if code != 0:
            response.error = f"grpc_tools.protoc exited with status {code}"
        else:
            for path in sorted(p for p in out.rglob("*") if p.is_file()):
                generated = response.file.add()
                generated.name = path.relative_to(out).as_posix()
                generated.content = path.read_text(encoding="utf-8")
    sys.stdout.buffer.write(response.SerializeToString())
    return 0


if __name__ == "__main__":
    sys.exit(main())
