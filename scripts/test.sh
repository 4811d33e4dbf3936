#!/usr/bin/env bash
# scripts/test.sh - THE test command: local services, then fmt, clippy and tests.
#
#   scripts/test.sh                 # everything
#   scripts/test.sh some_test_name  # extra args are passed to `cargo test`
#
# PostgreSQL/Redis come from scripts/test-services.sh (installed/started when run as
# root, e.g. on CI); export OPSCTL_TEST_DATABASE_URL and OPSCTL_TEST_REDIS_URL to use
# your own servers instead.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# System packages the build needs (libclang-dev for the pg_query crate).
# shellcheck source=scripts/build-deps.sh
. scripts/build-deps.sh

# shellcheck source=scripts/test-services.sh
. scripts/test-services.sh

_mask() { sed -E 's#(://[^:/@]*:)[^@]*@#\1***@#' <<<"$1"; }
echo "test.sh: services: postgres=$(_mask "$OPSCTL_TEST_DATABASE_URL") admin=$(_mask "${OPSCTL_TEST_PG_ADMIN_URL:-}") redis=$(_mask "$OPSCTL_TEST_REDIS_URL")" >&2

# Pass CI through to cargo/tests exactly as we got it (never set it here).
if [[ -n "${CI+set}" ]]; then
    export CI
fi

# Fresh rustup toolchains may lack the components; add them when we can.
if ! cargo fmt --version >/dev/null 2>&1 && command -v rustup >/dev/null 2>&1; then
    rustup component add rustfmt
fi
if ! cargo clippy --version >/dev/null 2>&1 && command -v rustup >/dev/null 2>&1; then
    rustup component add clippy
fi

# ---- promtool and node_exporter (the real consumers of the Prometheus text) ----------
# src/prometheus/tests.rs and src/health/ compare with `promtool check metrics` (Debian's
# `prometheus`), and tests/health.rs has node_exporter's textfile collector read what
# `opsctl health --format prometheus --output` writes (`prometheus-node-exporter`).
# Installed here when missing and we are root (as on CI); otherwise those tests fail and
# say how to install them. Kept before the build so the tests find them.
prom_pkgs=()
command -v promtool >/dev/null 2>&1 || prom_pkgs+=(prometheus)
command -v prometheus-node-exporter >/dev/null 2>&1 || prom_pkgs+=(prometheus-node-exporter)
if [[ ${#prom_pkgs[@]} -gt 0 ]] && [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing ${prom_pkgs[*]} (apt-get)" >&2
    # Output to a file: a service started by postinst must not inherit our stderr.
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q -o Dpkg::Use-Pty=0 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            -o Dpkg::Use-Pty=0 "${prom_pkgs[@]}"; } >/tmp/opsctl-promtool-apt.log 2>&1; then
        tail -n 20 /tmp/opsctl-promtool-apt.log >&2 || true
        echo "test.sh: installing ${prom_pkgs[*]} failed" >&2
        exit 1
    fi
    hash -r
fi
# ---- end promtool and node_exporter ------------------------------------------------

# ---- kubectl (the Kubernetes tests prove the test API server with the real client) -----
# This machine kind ships kubectl; elsewhere Debian's `kubernetes-client` provides one.
if ! command -v kubectl >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing kubectl (apt-get install kubernetes-client)" >&2
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q -o Dpkg::Use-Pty=0 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            -o Dpkg::Use-Pty=0 kubernetes-client; } >/tmp/opsctl-kubectl-apt.log 2>&1; then
        tail -n 20 /tmp/opsctl-kubectl-apt.log >&2 || true
        echo "test.sh: installing kubectl failed" >&2
        exit 1
    fi
    hash -r
fi

echo "test.sh: cargo fmt --all -- --check" >&2
cargo fmt --all -- --check

echo "test.sh: cargo clippy --all-targets --locked -- -D warnings" >&2
cargo clippy --all-targets --locked -- -D warnings

echo "test.sh: cargo test --locked $*" >&2
cargo test --locked "$@"
