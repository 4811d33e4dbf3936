#!/usr/bin/env bash
# scripts/bench.sh - opsctl's benchmark: builds in release, starts its own local servers,
# measures every shape of bench/README.md and writes the table to bench/RESULTS.md.
#
#   scripts/bench.sh               # full run: 7 runs per row, peers included
#   scripts/bench.sh --runs 3      # fewer runs (Ansible is capped at 3 anyway)
#   scripts/bench.sh --quick       # CI: each opsctl shape once, no peers, no RESULTS.md
#   scripts/bench.sh --no-peers    # full sizes and runs, opsctl and curl only
#   scripts/bench.sh --out FILE    # write the table to FILE instead of bench/RESULTS.md
#
# Exits non-zero only when something is broken (the build, a server that does not start,
# an opsctl run that does not end `ok`); never because of a timing. Peers (go-task,
# Ansible) that cannot be installed are reported as such in the table.
#
# Postgres/Redis come from scripts/test-services.sh, as for the tests.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"

RUNS=7
QUICK=0
PEERS=1
OUT="$ROOT/bench/RESULTS.md"
while (($#)); do
    case "$1" in
    --runs)
        RUNS="${2:?--runs needs a number}"
        shift 2
        ;;
    --quick)
        QUICK=1
        RUNS=1
        PEERS=0
        shift
        ;;
    --no-peers)
        PEERS=0
        shift
        ;;
    --out)
        OUT="${2:?--out needs a file}"
        shift 2
        ;;
    -h | --help)
        sed -n '2,16p' "$0"
        exit 0
        ;;
    *)
        echo "bench.sh: unknown argument $1 (see --help)" >&2
        exit 2
        ;;
    esac
done
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || {
    echo "bench.sh: --runs wants a positive number, got $RUNS" >&2
    exit 2
}

log() { printf 'bench.sh: %s\n' "$*" >&2; }
die() {
    printf 'bench.sh: ERROR: %s\n' "$*" >&2
    exit 1
}

# ---- scratch space and clean-up ---------------------------------------------------------
# Everything (generated runbooks, peer virtualenvs, run records) lives in one temp dir
# that is removed on exit, together with the servers we started.
WORK="$(mktemp -d "${TMPDIR:-/tmp}/opsctl-bench.XXXXXX")"
SERVER_PIDS=()
cleanup() {
    local pid
    for pid in "${SERVER_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

# 10,000 concurrent checks need ~1,000 sockets in opsctl and as many in the server.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# ---- build --------------------------------------------------------------------------------
# System packages the build needs (libclang-dev for the pg_query crate).
# shellcheck source=scripts/build-deps.sh
. scripts/build-deps.sh
log "cargo build --release (opsctl and the delay server)"
cargo build --release --locked --bin opsctl --example bench_server >&2 ||
    die "cargo build --release failed"
OPSCTL="$ROOT/target/release/opsctl"
SERVER_BIN="$ROOT/target/release/examples/bench_server"

# ---- services -----------------------------------------------------------------------------
# shellcheck source=scripts/test-services.sh
. scripts/test-services.sh ||
    die "Postgres/Redis are not available (scripts/test-services.sh failed)"

# Tools the harness needs: curl (a baseline and the floor), python3 (the harness itself).
for tool in curl python3; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is required"
done
# GNU time measures peak RSS (the table says so when it is missing). Installed when we
# can (root with apt-get, as on CI).
if [[ ! -x /usr/bin/time ]] && [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    log "installing GNU time (apt-get install time) for peak RSS"
    { DEBIAN_FRONTEND=noninteractive apt-get update -q -o Dpkg::Use-Pty=0 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            -o Dpkg::Use-Pty=0 time; } >"$WORK/apt-time.log" 2>&1 ||
        log "could not install GNU time; peak RSS will not be measured"
fi

# start_server DELAY_MS -> sets SERVER_PORT; waits for the server's `port=N` line.
start_server() {
    local fifo="$WORK/server.$1.out" line="" pid
    mkfifo "$fifo"
    "$SERVER_BIN" --delay-ms "$1" >"$fifo" 2>"$WORK/server.$1.err" &
    pid=$!
    SERVER_PIDS+=("$pid")
    # The fifo blocks until the server writes; give it 10 s.
    if ! read -r -t 10 line <"$fifo" || [[ "$line" != port=* ]]; then
        cat "$WORK/server.$1.err" >&2 || true
        die "the delay server did not start (got '${line}')"
    fi
    SERVER_PORT="${line#port=}"
}
start_server 100
export BENCH_PORT="$SERVER_PORT"
log "delay server (100 ms) on 127.0.0.1:$BENCH_PORT"

# Prove it answers before anything is measured.
curl -sf "http://127.0.0.1:$BENCH_PORT/ready" >/dev/null || die "the delay server does not answer"

# ---- peers (full mode only) -------------------------------------------------------------------
# Installed into throw-away virtualenvs under $WORK; a peer that does not install is
# skipped with the reason in the table, it never fails the run.
export BENCH_TASK="" BENCH_ANSIBLE="" BENCH_PEER_NOTES=""
if ((PEERS)); then
    log "installing go-task (PyPI go-task-bin) into a throw-away virtualenv"
    if python3 -m venv "$WORK/venv-task" >"$WORK/pip-task.log" 2>&1 &&
        "$WORK/venv-task/bin/pip" install -q go-task-bin >>"$WORK/pip-task.log" 2>&1 &&
        [[ -x "$WORK/venv-task/bin/task" ]]; then
        BENCH_TASK="$WORK/venv-task/bin/task"
    else
        tail -n 5 "$WORK/pip-task.log" >&2 || true
        BENCH_PEER_NOTES+="go-task: could not be installed from PyPI (go-task-bin). "
    fi
    log "installing Ansible (PyPI ansible-core) into a throw-away virtualenv"
    if python3 -m venv "$WORK/venv-ansible" >"$WORK/pip-ansible.log" 2>&1 &&
        "$WORK/venv-ansible/bin/pip" install -q ansible-core >>"$WORK/pip-ansible.log" 2>&1 &&
        [[ -x "$WORK/venv-ansible/bin/ansible-playbook" ]]; then
        BENCH_ANSIBLE="$WORK/venv-ansible/bin/ansible-playbook"
    else
        tail -n 5 "$WORK/pip-ansible.log" >&2 || true
        BENCH_PEER_NOTES+="Ansible: could not be installed from PyPI (ansible-core). "
    fi
fi

# ---- measure --------------------------------------------------------------------------------
# The harness generates the runbooks and peer scripts, runs everything, prints the table
# and writes it (full mode) to $OUT.
export BENCH_OPSCTL="$OPSCTL" BENCH_WORK="$WORK" BENCH_RUNS="$RUNS" BENCH_QUICK="$QUICK"
export BENCH_PEERS="$PEERS" BENCH_OUT="$OUT" BENCH_ROOT="$ROOT"
# Run records go to the scratch dir, not the user's state dir.
export XDG_STATE_HOME="$WORK/state"
python3 "$ROOT/bench/harness.py"
