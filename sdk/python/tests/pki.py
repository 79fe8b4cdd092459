"""Test certificates made with the ``openssl`` command: a CA, a server and a client.

The server certificate is valid for ``127.0.0.1`` and ``localhost``; the client
certificate's subject is ``CN=billing`` (an API key of the mTLS stack is bound
to that subject). Every certificate is X.509 v3 with the extensions rustls
requires, and lives for a day.
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess
from dataclasses import dataclass

_CURVE = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass(frozen=True)
class Pki:
    """PEM files of a test PKI."""

    ca: pathlib.Path
    server_cert: pathlib.Path
    server_key: pathlib.Path
    client_cert: pathlib.Path
    client_key: pathlib.Path
    other_ca: pathlib.Path
    """A second CA that signed nothing the gateway trusts."""

    def read(self, name: str) -> bytes:
        """Return the bytes of one of the files, by attribute name."""
        path: pathlib.Path = getattr(self, name)
        return path.read_bytes()


def _openssl(*args: str | pathlib.Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("openssl is not installed: run `make setup`")
    done = subprocess.run([openssl, *map(str, args)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(map(str, args))} failed:\n{done.stderr}")


def _ca(directory: pathlib.Path, name: str, common_name: str) -> tuple[pathlib.Path, pathlib.Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    _openssl(
        "req", "-x509", *_CURVE, "-keyout", key, "-out", cert, "-days", "1",
        "-subj", f"/CN={common_name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return cert, key


def _leaf(
    directory: pathlib.Path,
    name: str,
    subject: str,
    extensions: str,
    ca: tuple[pathlib.Path, pathlib.Path],
) -> tuple[pathlib.Path, pathlib.Path]:
    cert, key, csr = (directory / f"{name}{ext}" for ext in (".pem", ".key", ".csr"))
    ext_file = directory / f"{name}.ext"
    ext_file.write_text(
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n" + extensions,
        encoding="utf-8",
    )
    _openssl("req", "-new", *_CURVE, "-keyout", key, "-out", csr, "-subj", subject)
    serial = "0x" + name.encode().hex()
    _openssl(
        "x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-set_serial", serial,
        "-days", "1", "-out", cert, "-extfile", ext_file,
    )  # fmt: skip
    return cert, key


def generate(directory: pathlib.Path) -> Pki:
    """Write a CA, a server certificate, a client certificate and an unrelated CA."""
    ca = _ca(directory, "ca", "emitgate test CA")
    other_ca, _ = _ca(directory, "other-ca", "some other CA")
    server = _leaf(
        directory,
        "server",
        "/CN=localhost",
        "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
        ca,
    )
    client = _leaf(directory, "client", "/CN=billing", "extendedKeyUsage=clientAuth\n", ca)
    return Pki(
        ca=ca[0],
        server_cert=server[0],
        server_key=server[1],
        client_cert=client[0],
        client_key=client[1],
        other_ca=other_ca,
    )
