# syntax=docker/dockerfile:1
#
# The emitgate container image: the gateway built exactly as `make release`
# builds it, on a distroless runtime (glibc, no shell, no package manager),
# running as the non-root user 65532.
#
#   docker build -t emitgate:0.1.0 .
#   docker run --rm -p 50051:50051 -p 9090:9090 \
#     -e EMITGATE_REDIS_URL=redis://redis:6379 -v $PWD/emitgate.toml:/etc/emitgate/emitgate.toml:ro \
#     -e EMITGATE_CONFIG=/etc/emitgate/emitgate.toml emitgate:0.1.0
#
# `make lint-deploy` checks that the build command below is the release
# recipe of the Makefile, so the image and `make release` cannot drift apart.

# The Rust toolchain of the build stage: at least the workspace's
# rust-version (Cargo.toml); Debian bookworm, like the runtime image.
ARG RUST_IMAGE=rust:1.95-bookworm
# gcr.io/distroless/cc: glibc and libgcc, which the binary links against
# (TLS is rustls, so no OpenSSL); `nonroot` runs as uid/gid 65532.
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot
# A statically linked busybox for the HEALTHCHECK (wget) and for sending
# SIGHUP from `kubectl exec` (kill): distroless has neither.
ARG BUSYBOX_IMAGE=busybox:1.37-musl

FROM ${BUSYBOX_IMAGE} AS busybox

FROM ${RUST_IMAGE} AS build
WORKDIR /src
# Only what the build reads (.dockerignore keeps everything else out):
# the workspace manifests, the lock file, the proto and the crates' sources.
COPY . .
# protoc is vendored (server/build.rs): nothing to install beyond Rust.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    cargo build --locked --release -p emitgate

FROM ${RUNTIME_IMAGE}
COPY --from=build /src/target/release/emitgate /usr/local/bin/emitgate
COPY --from=busybox /bin/busybox /usr/local/bin/busybox
# A container listening on loopback would be unreachable: listen on every
# interface. The gateway still refuses a non-loopback listener without API
# keys unless EMITGATE_INSECURE_NO_AUTH=true (or [auth] insecure_no_auth).
ENV EMITGATE_LISTEN=0.0.0.0:50051 \
    EMITGATE_ADMIN_LISTEN=0.0.0.0:9090
# 50051: gRPC; 9090: admin HTTP (/metrics, /healthz, /readyz).
EXPOSE 50051 9090
USER 65532:65532
# Liveness: /healthz answers while the process serves. Readiness (/readyz:
# the default target's Redis answers) is for load balancers and
# orchestrators that take a pod out of rotation instead of restarting it;
# the compose example and the Helm chart use it as such.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:9090/healthz"]
# The gateway handles SIGTERM itself (drain, then exit 0), so it can be PID 1.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/emitgate"]
