#!/usr/bin/env bash
# demo.sh — build opsctl and show it on the shipped runbooks: lint them (what CI
# does on every pull request), then dry-run the SEV1 outage runbook (what an on-call
# engineer sees before anything is touched). Contacts nothing, changes nothing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

# System packages the build needs (libclang-dev for the pg_query crate).
# shellcheck source=scripts/build-deps.sh
. scripts/build-deps.sh

echo "==> cargo build" >&2
cargo build --quiet --locked

echo "==> opsctl lint runbooks" >&2
./target/debug/opsctl lint runbooks

echo >&2
echo "==> opsctl run sev1-outage --dry-run --examples" >&2
./target/debug/opsctl run sev1-outage --dry-run --examples
