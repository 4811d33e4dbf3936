#!/usr/bin/env bash
# demo.sh — opsctl against a small live system shaped like the seed runbooks' API:
#
#   examples/demo_api      the API: /internal/health, /internal/ready, /internal/metrics
#                          (tg_tinker_* metrics), admin DLQ endpoints, job workers;
#                          HTTPS on 127.0.0.1:18443 for the `tls` check
#   PostgreSQL             its own database and role (jobs table) in the test cluster
#   redis-server           its own instance, own port and password (DLQ `dlq:jobs`)
#   Prometheus             a real server scraping the API every second
#   fake_apiserver         the test Kubernetes API server: deployment api-gateway, 3 pods
#
# Then, printing each command first: `opsctl health` (healthy); an outage is staged (Redis
# stops, jobs back up, the API pods crash-loop); `opsctl health` (unhealthy, naming the
# causes); the operator starts Redis again and runs `opsctl run sev1-outage` (diagnoses,
# restarts the deployment, verifies); `opsctl report` of that run as markdown; and a last
# `opsctl health` (healthy). Everything it started is stopped on exit, also on failure.
# Exits non-zero when a verdict is not the one the story expects (an end-to-end test).
#
# As root on a fresh Debian 12 it installs what it needs through apt (libclang-dev,
# postgresql, redis-server, prometheus, kubernetes-client). As another user those must be
# there already. Port 18443 must be free (the `tls` check reads the certificate there:
# `api_tls_port` in examples/demo/opsctl.yaml).
#
#   ./demo.sh                # the story
#   DEMO_KEEP=1 ./demo.sh    # ... then keep everything running until Enter, to explore
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
ROOT="$PWD"

# System packages the build needs (libclang-dev for the pg_query crate).
# shellcheck source=scripts/build-deps.sh
. scripts/build-deps.sh

# PostgreSQL (the cluster and its admin role) and the redis-server package, as the test
# command gets them. Those test services are shared with `scripts/test.sh` and stay up.
# shellcheck source=scripts/test-services.sh
. scripts/test-services.sh

# ---------------------------------------------------------------------------- helpers
say() { printf '\n\033[1;36m%s\033[0m\n' "$*"; }
cmd() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
die() {
    printf '\ndemo.sh: ERROR: %s\n' "$*" >&2
    exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }

apt_install() { # PACKAGE COMMAND: installs PACKAGE when COMMAND is missing and we are root
    have "$2" && return 0
    if [[ "$(id -u)" == 0 ]] && have apt-get; then
        echo "demo.sh: installing $1 (apt-get)" >&2
        # Output to a file: a service started by postinst must not inherit our stderr.
        if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q -o Dpkg::Use-Pty=0 &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
                -o Dpkg::Use-Pty=0 "$1"; } >/tmp/opsctl-demo-apt.log 2>&1; then
            tail -n 20 /tmp/opsctl-demo-apt.log >&2 || true
            die "installing $1 failed"
        fi
        hash -r
    fi
    have "$2" || die "$2 is missing: install $1 (e.g. sudo apt-get install $1)"
}
apt_install prometheus prometheus
apt_install kubernetes-client kubectl

tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() { # FROM: the first port from FROM on that nothing listens on
    local p
    for ((p = $1; p < $1 + 200; p++)); do
        tcp_open "$p" || {
            echo "$p"
            return
        }
    done
    die "no free port in $1-$(($1 + 199))"
}

http_get() { # PORT PATH: the body of a plain HTTP/1.0 GET (no curl needed)
    local line body=0
    exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
    while IFS= read -r -t 5 -u 3 line || [[ -n "$line" ]]; do
        ((body)) && printf '%s\n' "$line"
        [[ "$line" == $'\r' ]] && body=1
        line=""
    done
    exec 3<&-
}

wait_for() { # SECONDS WHAT COMMAND...: retries COMMAND until it succeeds
    local deadline=$((SECONDS + $1)) what="$2" secs="$1"
    shift 2
    until "$@"; do
        ((SECONDS < deadline)) || die "$what: not ready after ${secs}s"
        sleep 0.2
    done
}

random_hex() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }

# ---------------------------------------------------------------------------- build
# A debug build: it shares everything with `scripts/test.sh` (a release build of the
# same crates would take several more minutes), and nothing here is speed-bound.
say "Building opsctl, the demo API and the test Kubernetes API server"
cmd "cargo build --locked --bin opsctl --example demo_api --example fake_apiserver"
cargo build --quiet --locked --bin opsctl --example demo_api --example fake_apiserver
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}/debug"
OPSCTL_BIN="$TARGET/opsctl"

# ---------------------------------------------------------------------------- clean-up
STATE="$(mktemp -d "${TMPDIR:-/tmp}/opsctl-demo.XXXXXX")"
PIDS=()
DEMO_DB=opsctl_demo
DEMO_ROLE=opsctl_demo
REDIS_PID=""

# The test cluster's superuser, connected to the `postgres` database.
admin_sql() { psql "${OPSCTL_TEST_PG_ADMIN_URL%/*}/postgres" -X -q -v ON_ERROR_STOP=1 "$@"; }

cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}" $REDIS_PID; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}" $REDIS_PID; do
        wait "$pid" 2>/dev/null || true
    done
    admin_sql -c "DROP DATABASE IF EXISTS $DEMO_DB WITH (FORCE)" \
        -c "DROP ROLE IF EXISTS $DEMO_ROLE" >/dev/null 2>&1 || true
    if ((rc != 0)); then
        echo "demo.sh: failed (exit $rc); logs of the demo's services:" >&2
        tail -n 5 "$STATE"/*.log >&2 2>/dev/null || true
    fi
    rm -rf "$STATE"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start() { # NAME COMMAND...: starts COMMAND in the background, logs in $STATE/NAME.log
    local name="$1"
    shift
    "$@" >"$STATE/$name.out" 2>"$STATE/$name.log" &
    PIDS+=($!)
}

announced() { # NAME TEXT: the process wrote TEXT on stdout (and still runs)
    grep -q "$2" "$STATE/$1.out" 2>/dev/null
}

# ---------------------------------------------------------------------------- services
say "Starting the demo system"

# Redis: the demo's own instance, so stopping it never touches the test services.
REDIS_PORT="$(free_port 16379)"
REDIS_PASSWORD="$(random_hex)"
start_redis() {
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --requirepass "$REDIS_PASSWORD" \
        --save '' --appendonly no --dir "$STATE" --maxmemory 64mb \
        --maxmemory-policy noeviction >>"$STATE/redis.log" 2>&1 &
    REDIS_PID=$!
    wait_for 15 "redis-server (log: $STATE/redis.log)" redis_answers
}
redis_answers() {
    [[ "$(REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]
}
start_redis
export DEMO_REDIS_URL="redis://:$REDIS_PASSWORD@127.0.0.1:$REDIS_PORT/0"
echo "redis-server on 127.0.0.1:$REDIS_PORT (password made for this run)"

# PostgreSQL: the demo's own role and database in the test cluster.
PG_PASSWORD="$(random_hex)"
admin_sql -v role="$DEMO_ROLE" -v db="$DEMO_DB" -v pw="$PG_PASSWORD" >/dev/null <<'SQL'
SET client_min_messages = warning;
DROP DATABASE IF EXISTS :"db" WITH (FORCE);
DROP ROLE IF EXISTS :"role";
CREATE ROLE :"role" LOGIN PASSWORD :'pw';
CREATE DATABASE :"db" OWNER :"role";
SQL
PG_HOSTPORT="$(sed -E 's#^postgres://[^@]*@([^/]*)/.*#\1#' <<<"$OPSCTL_TEST_PG_ADMIN_URL")"
export DEMO_DATABASE_URL="postgres://$DEMO_ROLE:$PG_PASSWORD@$PG_HOSTPORT/$DEMO_DB"
echo "PostgreSQL database $DEMO_DB (role $DEMO_ROLE) on $PG_HOSTPORT"

# The API: plain HTTP for clients and Prometheus, HTTPS on 18443 for the certificate check
# (vars.api_tls_port of examples/demo/opsctl.yaml).
TLS_PORT=18443
tcp_open "$TLS_PORT" && die "port $TLS_PORT of 127.0.0.1 is taken; the tls check of the runbooks reads it (api_tls_port in examples/demo/opsctl.yaml)"
export DEMO_ADMIN_TOKEN
DEMO_ADMIN_TOKEN="$(random_hex)"
start api "$TARGET/examples/demo_api" --listen 127.0.0.1:0 --tls-listen "127.0.0.1:$TLS_PORT" --init-schema
wait_for 30 "demo_api (log: $STATE/api.log)" announced api "^listening on http://"
API_ADDR="$(sed -n 's#^listening on http://##p' "$STATE/api.out")"
API_PORT="${API_ADDR##*:}"
export DEMO_API_URL="http://$API_ADDR"
echo "demo API on $DEMO_API_URL and https://127.0.0.1:$TLS_PORT"

# Jobs: two hours of finished work and a few fresh jobs the workers pick up at once.
psql "$DEMO_DATABASE_URL" -X -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
INSERT INTO jobs (tenant_id, job_type, status, attempt_count, created_at, updated_at)
SELECT 'tenant-' || (g % 7), (ARRAY['train', 'evaluate', 'export'])[g % 3 + 1], 'completed', 1,
       now() - g * interval '30 seconds', now() - g * interval '30 seconds' + interval '4 seconds'
FROM generate_series(1, 240) g;
INSERT INTO jobs (tenant_id, job_type) SELECT 'tenant-' || (g % 7), 'train' FROM generate_series(1, 12) g;
SQL
echo "jobs table seeded: 240 completed, 12 pending; DLQ dlq:jobs empty"

# A load balancer probing liveness ten times a second: the traffic the error-rate and
# latency checks measure (without it a single failed probe would be a large percentage).
lb_probe() {
    while :; do
        http_get "$API_PORT" /internal/health >/dev/null 2>&1 || true
        sleep 0.1
    done
}
lb_probe &
PIDS+=($!)

# Prometheus, scraping the API every second, with its own storage.
PROM_PORT="$(free_port 19090)"
cat >"$STATE/prometheus.yml" <<EOF
global: { scrape_interval: 1s, evaluation_interval: 1s }
scrape_configs:
  - job_name: tensafe-api
    metrics_path: /internal/metrics
    static_configs: [{ targets: ["$API_ADDR"] }]
EOF
start prometheus prometheus --config.file="$STATE/prometheus.yml" \
    --storage.tsdb.path="$STATE/prometheus-data" --web.listen-address="127.0.0.1:$PROM_PORT"
export DEMO_PROMETHEUS_URL="http://127.0.0.1:$PROM_PORT"
prometheus_has_rates() {
    http_get "$PROM_PORT" '/api/v1/query?query=sum(rate(tg_tinker_requests_total%5B5m%5D))' 2>/dev/null |
        grep -q '"result":\[{'
}
wait_for 60 "Prometheus (log: $STATE/prometheus.log)" prometheus_has_rates
echo "Prometheus on $DEMO_PROMETHEUS_URL, scraping $API_ADDR/internal/metrics every second"

# Kubernetes: the test API server with deployment api-gateway and its three pods.
start kube "$TARGET/examples/fake_apiserver" --listen 127.0.0.1:0 \
    --fixture tests/fixtures/kube/demo.yaml --kubeconfig "$STATE/kubeconfig"
wait_for 30 "fake_apiserver (log: $STATE/kube.log)" announced kube "^listening on https://"
export KUBECONFIG="$STATE/kubeconfig"
kubectl() { command kubectl --cache-dir "$STATE/kube-cache" "$@"; }
echo "Kubernetes API (test server) on $(sed -n 's#^listening on ##p' "$STATE/kube.out"), KUBECONFIG=$KUBECONFIG"

# opsctl reads examples/demo/opsctl.yaml; its run records go to the demo's state dir.
export OPSCTL_CONFIG="$ROOT/examples/demo/opsctl.yaml"
export XDG_STATE_HOME="$STATE/xdg-state"

opsctl() { # prints the command, runs it, leaves its exit code in $RC
    cmd "opsctl $*"
    RC=0
    "$OPSCTL_BIN" "$@" || RC=$?
}

verdict() { # EXPECTED_EXIT WORD: the last `opsctl health` must have ended so
    ((RC == $1)) || die "expected opsctl health to say $2 (exit $1), it exited $RC"
}

if [[ -n "${DEMO_KEEP:-}" ]]; then
    say "DEMO_KEEP is set: the system runs until you press Enter. In another shell:"
    printf 'export %s\n' "OPSCTL_CONFIG=$OPSCTL_CONFIG" "KUBECONFIG=$KUBECONFIG" \
        "DEMO_API_URL=$DEMO_API_URL" "DEMO_PROMETHEUS_URL=$DEMO_PROMETHEUS_URL" \
        "DEMO_DATABASE_URL=$DEMO_DATABASE_URL" "DEMO_REDIS_URL=$DEMO_REDIS_URL" \
        "DEMO_ADMIN_TOKEN=$DEMO_ADMIN_TOKEN"
    echo "opsctl: $OPSCTL_BIN"
    read -r _
    exit 0
fi

# ---------------------------------------------------------------------------- the story
say "1. All is well"
opsctl health
verdict 0 healthy

say "2. An outage: Redis stops, jobs back up, the API pods crash-loop"
cmd "redis-cli -p $REDIS_PORT shutdown nosave        # the cache goes away"
REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
wait "$REDIS_PID" 2>/dev/null || true
REDIS_PID=""

cmd "psql … INSERT INTO jobs … 1500 pending     # clients keep submitting; workers need Redis"
psql "$DEMO_DATABASE_URL" -X -q -v ON_ERROR_STOP=1 -c \
    "INSERT INTO jobs (tenant_id, job_type) SELECT 'tenant-' || (g % 7), 'train' FROM generate_series(1, 1500) g" >/dev/null

# The pods exit at start without Redis. The test API server has no kubelet: this
# annotation makes it report what the kubelet would (CrashLoopBackOff, BackOff events).
crash_log="$(date -u +%Y-%m-%dT%H:%M:%SZ) ERROR startup failed: could not connect to Redis at redis.tensafe.svc:6379: Connection refused"
cmd "kubectl annotate pods -n tensafe -l app=api-gateway opsctl-test/crash-loop=…   # the pods crash at start"
kubectl annotate pods -n tensafe -l app=api-gateway --overwrite \
    "opsctl-test/crash-loop=could not connect to Redis: Connection refused" \
    "opsctl-test/previous-log=$crash_log"
kubectl get pods -n tensafe -l app=api-gateway

say "3. The pager goes off"
opsctl health
verdict 2 unhealthy

say "4. Recovery"
# Starting Redis again is the operator's move: opsctl's runbooks diagnose a dead
# cache but do not start one (that is the platform's job, e.g. systemctl start redis).
cmd "redis-server --port $REDIS_PORT …            # the operator starts Redis again"
start_redis

RECORD="$STATE/sev1-outage.jsonl"
opsctl run sev1-outage --yes --yes-manual --record "$RECORD"
# The run exits 1 when a diagnosis step failed (the pods did): judge by the fix instead.
"$OPSCTL_BIN" report "$RECORD" --format json >"$STATE/sev1.json" ||
    die "opsctl report could not read $RECORD"
step_status() { # ID: the status of a step in the run's JSON
    tr -d '\n ' <"$STATE/sev1.json" | grep -o "\"id\":\"$1\",[^{}]*\"status\":\"[a-z]*\"" |
        sed -E 's/.*"status":"([a-z]*)"/\1/' | head -n 1
}
[[ "$(step_status restart)" == ok ]] || die "sev1-outage did not restart the deployment (restart: $(step_status restart))"
[[ "$(step_status verify)" =~ ^(ok|warn)$ ]] || die "sev1-outage did not verify the recovery (verify: $(step_status verify))"

echo "(The run reads \"failed\" because its diagnosis found every pod down: the pods check"
echo " failed. The fix it made, the restart, and the verification after it passed.)"

opsctl report "$RECORD" --format markdown
((RC == 0)) || die "opsctl report exited $RC"

# With Redis back the workers take leases again and work off the backlog.
pending_jobs() {
    http_get "$API_PORT" /internal/metrics | sed -n 's/^tg_tinker_queue_depth{status="pending"} //p'
}
cmd "watching tg_tinker_queue_depth{status=\"pending\"} until the workers have caught up"
deadline=$((SECONDS + 120))
while :; do
    pending="$(pending_jobs)"
    echo "pending jobs: ${pending:-?}"
    [[ "$pending" == 0 ]] && break
    ((SECONDS < deadline)) || die "the job backlog did not drain within 120 s"
    sleep 1
done

say "5. Back to normal"
kubectl get pods -n tensafe -l app=api-gateway
opsctl health
verdict 0 healthy

say "Demo complete: healthy → unhealthy (Redis down, job backlog, pods crash-looping) → restarted and verified → healthy."
