#!/usr/bin/env bash
# scripts/build-deps.sh - system packages the build needs, sourced by scripts/test.sh and
# demo.sh. The `pg_query` crate compiles PostgreSQL's parser and generates its bindings
# with bindgen, which needs libclang: installed when missing if we are root (CI, a fresh
# Debian 12), otherwise we say what to install and stop.

_need_libclang() {
    if dpkg -s libclang-dev >/dev/null 2>&1; then
        return 0
    fi
    if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "build-deps: installing libclang-dev (needed to build the pg_query crate)" >&2
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libclang-dev >&2
        return 0
    fi
    echo "build-deps: libclang-dev is missing; the pg_query crate needs it to build." >&2
    echo "build-deps: install it first, e.g.: sudo apt-get install -y libclang-dev" >&2
    return 1
}

# Only on Debian-like systems: elsewhere (macOS, other distributions) clang comes from the
# platform's own packages and bindgen finds it by itself.
if command -v dpkg >/dev/null 2>&1; then
    _need_libclang || exit 1
fi
