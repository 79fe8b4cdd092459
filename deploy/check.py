#!/usr/bin/env python3
"""Checks of the deployment files that `make lint-deploy` runs.

There is no container engine where the lint runs, so the image cannot be
built there; these checks keep what can be checked honest:

* the Dockerfile's RUN steps are exactly the commands of the Makefile's
  `release` recipe (the image is built the way `make release` builds), and
  its Rust image is not older than the workspace's rust-version;
* the compose example parses, and its Socket.IO app pins the same versions
  as the test harness (package.json and package-lock.json);
* the Helm chart's renders (`helm template` output, one file per values
  set) parse as YAML, hold the objects each values set asks for, probe
  /readyz and /healthz on the admin port, run non-root on a read-only root
  file system, and carry a gateway config whose TOML parses and uses only
  keys the gateway's config structs declare (the gateway rejects unknown
  keys at start).

Usage: check.py RENDER_DEFAULT.yaml RENDER_FULL.yaml
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
failures: list[str] = []


def check(ok: bool, what: str) -> None:
    """Record a failed check (all checks run, then every failure is listed)."""
    if not ok:
        failures.append(what)


# ---- Dockerfile against the Makefile ---------------------------------------


def makefile_release_commands() -> list[str]:
    """The `release:` recipe of the Makefile, with $(CARGO) expanded."""
    text = (REPO / "Makefile").read_text()
    cargo = re.search(r"^CARGO\s*:?=\s*(\S+)\s*$", text, re.M)
    recipe = re.search(r"^release:[^\n]*\n((?:\t[^\n]*\n)+)", text, re.M)
    if not (cargo and recipe):
        failures.append("Makefile: no CARGO variable or no release recipe")
        return []
    lines = [line.strip() for line in recipe.group(1).splitlines()]
    return [line.replace("$(CARGO)", cargo.group(1)).lstrip("@") for line in lines if line]


def dockerfile_runs(text: str) -> list[str]:
    """Every RUN command of the Dockerfile, continuations joined, BuildKit
    flags (--mount=…, --network=…) removed."""
    joined = re.sub(r"\\\n", " ", text)
    runs = []
    for line in joined.splitlines():
        m = re.match(r"\s*RUN\s+(.*)", line, re.I)
        if m:
            words = m.group(1).split()
            while words and words[0].startswith("--"):
                words.pop(0)
            runs.append(" ".join(words))
    return runs


def check_dockerfile() -> None:
    text = (REPO / "Dockerfile").read_text()
    release = makefile_release_commands()
    runs = dockerfile_runs(text)
    check(
        runs == release,
        f"Dockerfile: RUN steps {runs} are not the Makefile's release recipe {release}",
    )
    rust_version = re.search(r'^rust-version\s*=\s*"([\d.]+)"', (REPO / "Cargo.toml").read_text(), re.M)
    image = re.search(r"^ARG RUST_IMAGE=rust:([\d.]+)", text, re.M)
    check(bool(rust_version and image), "Dockerfile: no ARG RUST_IMAGE=rust:X.Y or no rust-version in Cargo.toml")
    if rust_version and image:
        have = tuple(int(p) for p in image.group(1).split("."))
        need = tuple(int(p) for p in rust_version.group(1).split("."))
        check(have >= need, f"Dockerfile: rust:{image.group(1)} is older than rust-version {rust_version.group(1)}")
    check(re.search(r"^USER\s+65532", text, re.M) is not None, "Dockerfile: the runtime stage must run as uid 65532")
    for port in ("50051", "9090"):
        check(re.search(rf"^EXPOSE\b.*\b{port}\b", text, re.M) is not None, f"Dockerfile: port {port} not exposed")
    check("/healthz" in text and "HEALTHCHECK" in text, "Dockerfile: no HEALTHCHECK on /healthz")
    ignore = (REPO / ".dockerignore").read_text().split()
    for needed in ("!Cargo.toml", "!Cargo.lock", "!server/", "!proto/", "!tests/src/", "!bench/src/"):
        check(needed in ignore, f".dockerignore: the build needs {needed[1:]} (workspace members)")


# ---- compose example ---------------------------------------------------------


def check_compose() -> None:
    compose = yaml.safe_load((REPO / "deploy/docker-compose.yml").read_text())
    services = compose.get("services", {})
    check(
        set(services) >= {"redis", "socketio", "listener", "emitgate"},
        f"compose: services {sorted(services)}",
    )
    gateway = services.get("emitgate", {})
    build = gateway.get("build", {})
    dockerfile = REPO / "deploy" / build.get("context", "") / build.get("dockerfile", "Dockerfile")
    check(dockerfile.resolve() == (REPO / "Dockerfile").resolve(), f"compose: emitgate builds {dockerfile}")
    check("/readyz" in json.dumps(gateway.get("healthcheck")), "compose: emitgate's healthcheck is not /readyz")
    for volume in gateway.get("volumes", []):
        source = volume.split(":")[0]
        check((REPO / "deploy" / source).exists(), f"compose: mounted {source} does not exist")
    for port in [p for s in services.values() for p in s.get("ports", [])]:
        check(str(port).startswith("127.0.0.1:"), f"compose: port {port} is published beyond loopback")

    example = json.loads((REPO / "deploy/example/package.json").read_text())["dependencies"]
    harness = json.loads((REPO / "tests/harness/package.json").read_text())["dependencies"]
    lock = json.loads((REPO / "deploy/example/package-lock.json").read_text())["packages"]
    for name, version in example.items():
        check(
            harness.get(name) == version,
            f"deploy/example: {name} {version}, the harness pins {harness.get(name)}",
        )
        locked = lock.get(f"node_modules/{name}", {}).get("version")
        check(locked == version, f"deploy/example: package-lock.json has {name} {locked}, package.json {version}")


# ---- Helm renders ------------------------------------------------------------


RUST_TYPES = {
    **{t: int for t in ("u8", "u16", "u32", "u64", "usize", "i32", "i64")},
    "bool": bool,
    "String": str,
    "PathBuf": str,
    "Vec<String>": list,
}


def rust_struct_fields(path: str, struct: str) -> dict[str, type | None]:
    """The fields of `struct NAME { … }` in a Rust source file, each with
    the TOML type its Rust type takes (None: not checked, e.g. enums and
    nested tables)."""
    text = (REPO / path).read_text()
    m = re.search(rf"struct {struct} \{{(.*?)\n\}}", text, re.S)
    if not m:
        failures.append(f"{path}: struct {struct} not found")
        return {}
    fields = {}
    for name, rust in re.findall(r"^\s*(?:pub\s+)?(\w+)\s*:\s*([^,]+),", m.group(1), re.M):
        rust = re.sub(r"^Option<(.*)>$", r"\1", rust.strip()).rsplit("::", 1)[-1]
        fields[name] = RUST_TYPES.get(rust)
    return fields


def config_keys() -> dict[str, dict[str, type | None]]:
    """Keys the gateway accepts in its TOML file, by table (its serde
    structs deny unknown fields)."""
    cfg = "server/src/config.rs"
    return {
        "": rust_struct_fields(cfg, "FileConfig"),
        "limits": rust_struct_fields(cfg, "FileLimits"),
        "redis": rust_struct_fields(cfg, "FileRedis"),
        "targets": rust_struct_fields(cfg, "FileTarget"),
        "auth": rust_struct_fields(cfg, "FileAuth"),
        "auth.keys": rust_struct_fields("server/src/auth.rs", "KeyConfig"),
        "tls": rust_struct_fields(cfg, "FileTls"),
    }


def check_toml(where: str, text: str, *, chart: bool = True) -> dict:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        failures.append(f"{where}: the gateway config is not TOML: {e}")
        return {}
    known = config_keys()

    def keys_of(table: str, value: dict) -> None:
        unknown = set(value) - set(known[table])
        check(not unknown, f"{where}: unknown config keys {sorted(unknown)} in [{table or 'top level'}]")
        for key, want in known[table].items():
            # bool is an int in Python: compare the exact type.
            if key in value and want is not None:
                check(
                    type(value[key]) is want,
                    f"{where}: [{table or 'top level'}] {key} = {value[key]!r} is not a TOML {want.__name__}",
                )

    keys_of("", doc)
    for table in ("limits", "redis", "auth", "tls"):
        if table in doc:
            keys_of(table, doc[table])
    for target in doc.get("targets", []):
        keys_of("targets", target)
    for key in doc.get("auth", {}).get("keys", []):
        keys_of("auth.keys", key)
    # The chart owns these (environment variables), a file value would be dead.
    for owned in ("listen", "admin_listen") if chart else ():
        check(owned not in doc, f"{where}: `{owned}` is set by the chart, not in `config`")
    return doc


def load_render(path: str) -> list[dict]:
    try:
        docs = [d for d in yaml.safe_load_all(Path(path).read_text()) if d]
    except yaml.YAMLError as e:
        failures.append(f"{path}: not YAML: {e}")
        return []
    for d in docs:
        check(
            isinstance(d, dict) and {"apiVersion", "kind", "metadata"} <= set(d),
            f"{path}: an object without apiVersion/kind/metadata",
        )
    return docs


def by_kind(docs: list[dict]) -> dict[str, list[dict]]:
    kinds: dict[str, list[dict]] = {}
    for d in docs:
        kinds.setdefault(d["kind"], []).append(d)
    return kinds


def check_deployment(where: str, dep: dict) -> dict:
    pod = dep["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    check(set(ports) == {"grpc", "admin"}, f"{where}: container ports {ports}")
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = container.get(probe, {}).get("httpGet", {})
        check(
            get.get("path") == path and get.get("port") in ("admin", ports.get("admin")),
            f"{where}: {probe} is {get}, want {path} on the admin port",
        )
    env = {e["name"]: e for e in container["env"]}
    check(
        env.get("EMITGATE_ADMIN_LISTEN", {}).get("value") == f"0.0.0.0:{ports.get('admin')}",
        f"{where}: EMITGATE_ADMIN_LISTEN must be the admin port on every interface (kubelet probes the pod IP)",
    )
    check(
        env.get("EMITGATE_LISTEN", {}).get("value") == f"0.0.0.0:{ports.get('grpc')}",
        f"{where}: EMITGATE_LISTEN must be the grpc port",
    )
    check(
        "secretKeyRef" in env.get("EMITGATE_REDIS_URL", {}).get("valueFrom", {}),
        f"{where}: Redis URL not from a Secret",
    )
    sc = container.get("securityContext", {})
    psc = pod.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True, f"{where}: pod runAsNonRoot")
    check(sc.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem")
    check(sc.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation")
    check(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{where}: capabilities not all dropped")
    config_path = env.get("EMITGATE_CONFIG", {}).get("value", "")
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    check(
        mounts.get(str(Path(config_path).parent)) == "config",
        f"{where}: EMITGATE_CONFIG {config_path} is not in the config volume ({mounts})",
    )
    check(
        all("subPath" not in m for m in container["volumeMounts"]),
        f"{where}: a subPath mount is never updated in place (SIGHUP reload)",
    )
    drain_ms = 10_000
    check(
        pod.get("terminationGracePeriodSeconds", 30) * 1000 > drain_ms,
        f"{where}: terminationGracePeriodSeconds must exceed the drain timeout",
    )
    return {"pod": pod, "container": container, "mounts": mounts}


def config_text(kinds: dict[str, list[dict]]) -> tuple[str, str]:
    """The rendered emitgate.toml and where it was found."""
    for cm in kinds.get("ConfigMap", []):
        if "emitgate.toml" in cm.get("data", {}):
            return cm["data"]["emitgate.toml"], f"ConfigMap {cm['metadata']['name']}"
    for secret in kinds.get("Secret", []):
        if "emitgate.toml" in secret.get("stringData", {}):
            return secret["stringData"]["emitgate.toml"], f"Secret {secret['metadata']['name']}"
    return "", "nowhere"


def check_default(path: str) -> None:
    kinds = by_kind(load_render(path))
    if not kinds:
        return
    expected = {"Deployment", "Service", "ConfigMap", "Secret", "PodDisruptionBudget", "ServiceAccount"}
    check(set(kinds) == expected, f"{path}: kinds {sorted(kinds)}, want {sorted(expected)}")
    check(len(kinds.get("Service", [])) == 1, f"{path}: the headless Service is optional")
    dep = check_deployment(path, kinds["Deployment"][0])
    check(dep["pod"].get("volumes", [{}])[0].get("configMap") is not None, f"{path}: config not from the ConfigMap")
    text, where = config_text(kinds)
    doc = check_toml(f"{path} {where}", text)
    check(doc.get("auth", {}).get("keys") is None, f"{path}: default values hold no API key")
    check("tls" not in doc, f"{path}: TLS is off by default")


def check_full(path: str) -> None:
    kinds = by_kind(load_render(path))
    if not kinds:
        return
    expected = {
        "Deployment",
        "Service",
        "Secret",
        "PodDisruptionBudget",
        "ServiceAccount",
        "HorizontalPodAutoscaler",
        "ServiceMonitor",
    }
    check(set(kinds) == expected, f"{path}: kinds {sorted(kinds)}, want {sorted(expected)} (config in a Secret)")
    services = kinds.get("Service", [])
    check(
        sorted(s["spec"].get("clusterIP", "") == "None" for s in services) == [False, True],
        f"{path}: want one ClusterIP and one headless Service",
    )
    dep_doc = kinds["Deployment"][0]
    check("replicas" not in dep_doc["spec"], f"{path}: with the HPA the Deployment leaves replicas to it")
    dep = check_deployment(path, dep_doc)
    text, where = config_text(kinds)
    check(where.startswith("Secret"), f"{path}: configInSecret puts the config in a Secret, found it in {where}")
    doc = check_toml(f"{path} {where}", text)
    keys = doc.get("auth", {}).get("keys", [])
    check([k.get("id") for k in keys] == ["billing", "ops"], f"{path}: API keys {keys}")
    if keys:
        check(keys[0].get("rate_per_second") == 2000 and keys[0].get("burst") == 5000, f"{path}: key rate as integers")
    tls = doc.get("tls", {})
    tls_dir = next((p for p, n in dep["mounts"].items() if n == "tls"), None)
    check(tls_dir is not None, f"{path}: TLS Secret not mounted")
    for field in ("cert", "key", "client_ca"):
        value = tls.get(field, "")
        check(tls_dir is not None and value.startswith(f"{tls_dir}/"), f"{path}: tls.{field} = {value!r}")
    tls_secrets = [s for s in kinds.get("Secret", []) if s.get("type") == "kubernetes.io/tls"]
    check(
        len(tls_secrets) == 1 and set(tls_secrets[0].get("stringData", {})) == {"tls.crt", "tls.key", "ca.crt"},
        f"{path}: want one kubernetes.io/tls Secret with tls.crt, tls.key, ca.crt",
    )
    monitor = kinds.get("ServiceMonitor", [{}])[0]
    endpoint = monitor.get("spec", {}).get("endpoints", [{}])[0]
    check(endpoint.get("port") == "admin" and endpoint.get("path") == "/metrics", f"{path}: ServiceMonitor {endpoint}")


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    check_dockerfile()
    check_compose()
    check_toml("config/emitgate.example.toml", (REPO / "config/emitgate.example.toml").read_text(), chart=False)
    check_toml("deploy/example/emitgate.toml", (REPO / "deploy/example/emitgate.toml").read_text())
    check_default(argv[1])
    check_full(argv[2])
    if failures:
        print(f"deploy checks: {len(failures)} failed", file=sys.stderr)
        for f in failures:
            print(f"  - {f}", file=sys.stderr)
        return 1
    print("deploy checks: Dockerfile = make release, compose example, chart renders: all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
