# syntax=docker/dockerfile:1
#
# opsctl as a small, static, non-root image (examples/kubernetes/ runs it as a CronJob).
#
#   docker build -t opsctl .
#   docker run --rm -v "$PWD:/work" -w /work opsctl lint
#
# Builder: Rust on Debian, with libclang (the pg_query crate generates its bindings to
# PostgreSQL's parser with bindgen) and musl-gcc, to link one static binary against musl.
# Static works because every native part is C compiled from source by the build (pg_query's
# libpg_query, ring): nothing links to a system library, and TLS is rustls with the
# system's CA certificates read from files. Checked on Debian 12 with these packages: the
# musl build is a static-pie binary whose pg_query judges SQL as the glibc build does.
# bindgen needs to be shown two header directories for the musl target (clang does not
# look into gcc's, where the glibc build finds stdbool.h): clang's own and musl's.
# The binary runs on `distroless/static`: no libc, no shell, CA certificates and a
# `nonroot` user (65532) only.
#
# Not in the image: a shell and local commands, so runbook steps of the `exec` action
# (and `shell:`) cannot run in it; the health runbook has none.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS builder
# Unpinned on purpose: bookworm's security updates replace these versions, and a pinned
# one disappears from the mirrors; the Rust image tag pins the distribution.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libclang-dev musl-tools \
 && rm -rf /var/lib/apt/lists/*
# The musl target of the machine building (x86_64 or aarch64), so a multi-platform
# build (`docker buildx build --platform linux/amd64,linux/arm64`) builds each natively.
RUN rustup target add "$(uname -m)-unknown-linux-musl"
WORKDIR /src
COPY . .
# The cargo registry and target directory are cache mounts: a rebuild after a source
# change compiles opsctl, not its dependencies. `--locked`: exactly Cargo.lock.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    target="$(uname -m)-unknown-linux-musl" \
 && clang_include="$(echo /usr/lib/llvm-*/lib/clang/*/include)" \
 && env "CC_$target=musl-gcc" \
      "BINDGEN_EXTRA_CLANG_ARGS_$target=-isystem $clang_include -isystem /usr/include/$(uname -m)-linux-musl" \
      cargo build --release --locked --target "$target" --bin opsctl \
 && cp "target/$target/release/opsctl" /opsctl

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=builder /opsctl /usr/local/bin/opsctl
# The shipped runbooks, for a config that lists this directory
# (`runbooks: [runbooks, /usr/share/opsctl/runbooks]`). examples/kubernetes/ mounts its
# own from a ConfigMap.
COPY runbooks/ /usr/share/opsctl/runbooks/
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/opsctl"]
CMD ["--help"]
