#!/usr/bin/env bash
# scripts/test-services.sh - make sure a local PostgreSQL and Redis are running
# for the opsctl test suite, and export where they are.
#
#   . scripts/test-services.sh         # sourced: exports the variables below
#   scripts/test-services.sh           # executed: prints `export ...` lines, so
#   eval "$(scripts/test-services.sh)" #   this works too
#
# Exports:
#   OPSCTL_TEST_DATABASE_URL  postgres://opsctl_test:<pw>@127.0.0.1:<port>/opsctl_test
#   OPSCTL_TEST_PG_ADMIN_URL  postgres://opsctl_admin:<pw>@127.0.0.1:<port>/opsctl_test (superuser)
#   OPSCTL_TEST_REDIS_URL     redis://:<pw>@127.0.0.1:<port>/0
#   OPSCTL_TEST_SERVICES_OWNED  bookkeeping: the URLs this script manages, so that
#                               re-sourcing re-checks (and restarts) them
#
# If OPSCTL_TEST_DATABASE_URL / OPSCTL_TEST_REDIS_URL are already set by the caller,
# they are used as they are and that service is not touched (if only the database
# URL is given, OPSCTL_TEST_PG_ADMIN_URL defaults to it).
#
# As root (CI: fresh Debian 12) missing packages are installed with apt-get
# (postgresql, redis-server), the Debian PostgreSQL cluster is created/started with
# pg_createcluster/pg_ctlcluster (no systemd needed), and the roles/database are
# created.  As non-root, already-provisioned services are reused (e.g. after one
# `sudo scripts/test-services.sh`), a private redis-server is started if the binary
# exists, and otherwise the script explains what to provide and fails.
#
# Optional overrides (environment):
#   OPSCTL_TEST_PG_PASSWORD        password of role opsctl_test   (default opsctl-test-pw)
#   OPSCTL_TEST_PG_ADMIN_PASSWORD  password of role opsctl_admin  (default opsctl-admin-pw)
#   OPSCTL_TEST_REDIS_PASSWORD     redis requirepass              (default opsctl-test-pw)
#   OPSCTL_TEST_REDIS_PORT         fixed redis port (default: 6379, or the next free
#                                  port in 6380-6399 if 6379 is held by another server)
#   OPSCTL_TEST_PG_CLUSTER         Debian cluster to use, e.g. 15/main (default: newest)
#   OPSCTL_TEST_PG_PORT            non-root only: port of an existing server to probe
#   OPSCTL_TEST_STATE              state dir for redis pid/log files (default /tmp/opsctl-test)
#   OPSCTL_TEST_WAIT_SECS          how long to wait for each service (default 30)

if [ -z "${BASH_VERSION:-}" ]; then
    echo "test-services.sh: this script needs bash" >&2
    # shellcheck disable=SC2317
    return 1 2>/dev/null || exit 1
fi

# ---------------------------------------------------------------------------
# The real work is done by a child bash ("worker", `--emit-to FILE`) that writes
# NAME=VALUE lines to FILE.  Its stdout is the caller's stderr, so daemons it
# starts (postgres, redis, anything apt's postinst scripts start) never hold the
# pipe of a `$(...)` open, and the caller's shell options are left alone.
# ---------------------------------------------------------------------------
if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
    # Sourced: pass along all OPSCTL_TEST_* variables (exported or not) and export the result.
    _opsctl_ts_env=()
    for _opsctl_ts_name in $(compgen -v OPSCTL_TEST_ || true); do
        _opsctl_ts_env+=("${_opsctl_ts_name}=${!_opsctl_ts_name-}")
    done
    _opsctl_ts_rc=0
    _opsctl_ts_file="$(mktemp "${TMPDIR:-/tmp}/opsctl-test-env.XXXXXX")" || _opsctl_ts_rc=$?
    if [[ "$_opsctl_ts_rc" -eq 0 ]]; then
        env "${_opsctl_ts_env[@]}" "${BASH:-bash}" "${BASH_SOURCE[0]}" --emit-to "$_opsctl_ts_file" </dev/null >&2 ||
            _opsctl_ts_rc=$?
    fi
    if [[ "$_opsctl_ts_rc" -eq 0 ]]; then
        while IFS= read -r _opsctl_ts_line; do
            case "$_opsctl_ts_line" in
            OPSCTL_TEST_DATABASE_URL=* | OPSCTL_TEST_REDIS_URL=* | OPSCTL_TEST_PG_ADMIN_URL=* | OPSCTL_TEST_SERVICES_OWNED=*)
                export "${_opsctl_ts_line?}"
                ;;
            esac
        done <"$_opsctl_ts_file"
    fi
    [[ -z "${_opsctl_ts_file:-}" ]] || rm -f "$_opsctl_ts_file"
    unset -v _opsctl_ts_env _opsctl_ts_name _opsctl_ts_file _opsctl_ts_line
    eval "unset -v _opsctl_ts_rc; return $_opsctl_ts_rc"
fi

set -euo pipefail

if [[ "${1:-}" != "--emit-to" ]]; then
    # Executed by a user: run the worker, then print shell `export` lines on stdout.
    out_file="$(mktemp "${TMPDIR:-/tmp}/opsctl-test-env.XXXXXX")"
    trap 'rm -f "$out_file"' EXIT
    "${BASH:-bash}" "$0" --emit-to "$out_file" </dev/null >&2
    while IFS= read -r line; do
        printf 'export %s=%q\n' "${line%%=*}" "${line#*=}"
    done <"$out_file"
    exit 0
fi

# ---------------------------------------------------------------------------
# Worker.
# ---------------------------------------------------------------------------
OUT_FILE="${2:?--emit-to needs a file}"
exec 1>&2 </dev/null
: >"$OUT_FILE"

PG_DB=opsctl_test
PG_USER=opsctl_test
PG_ADMIN=opsctl_admin
PG_PASSWORD="${OPSCTL_TEST_PG_PASSWORD:-opsctl-test-pw}"
PG_ADMIN_PASSWORD="${OPSCTL_TEST_PG_ADMIN_PASSWORD:-opsctl-admin-pw}"
REDIS_PASSWORD="${OPSCTL_TEST_REDIS_PASSWORD:-opsctl-test-pw}"
REDIS_PORT_FIXED="${OPSCTL_TEST_REDIS_PORT:-}"
WAIT_SECS="${OPSCTL_TEST_WAIT_SECS:-30}"
HOST=127.0.0.1

unset REDISCLI_AUTH PGPASSWORD PGSERVICE PGPASSFILE || true
export PGCONNECT_TIMEOUT=5

log() { printf 'test-services: %s\n' "$*" >&2; }
die() {
    printf 'test-services: ERROR: %s\n' "$*" >&2
    exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }
is_root() { [[ "$(id -u)" -eq 0 ]]; }

emit() { # NAME VALUE
    printf '%s=%s\n' "$1" "$2" >>"$OUT_FILE"
}

urlenc() { # percent-encode everything but RFC 3986 unreserved characters
    local LC_ALL=C s="$1" out="" c i
    for ((i = 0; i < ${#s}; i++)); do
        c="${s:i:1}"
        case "$c" in
        [A-Za-z0-9._~-]) out+="$c" ;;
        *) out+="$(printf '%%%02X' "'$c")" ;;
        esac
    done
    printf '%s' "$out"
}

mask() { # hide the password in a URL for log output
    sed -E 's#(://[^:/@]*:)[^@]*@#\1***@#' <<<"$1"
}

tcp_open() { # PORT -> success if something accepts TCP connections on $HOST:PORT
    # shellcheck disable=SC2016
    timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$HOST" "$1" 2>/dev/null
}

# --------------------------------------------------------------------------- caller-provided URLs
OWNED_DB="-"
OWNED_REDIS="-"
if [[ -n "${OPSCTL_TEST_SERVICES_OWNED:-}" ]]; then
    read -r OWNED_DB OWNED_REDIS _ <<<"$OPSCTL_TEST_SERVICES_OWNED" || true
fi
GIVEN_DB=""
GIVEN_REDIS=""
if [[ -n "${OPSCTL_TEST_DATABASE_URL:-}" && "${OPSCTL_TEST_DATABASE_URL}" != "${OWNED_DB:-}" ]]; then
    GIVEN_DB="$OPSCTL_TEST_DATABASE_URL"
fi
if [[ -n "${OPSCTL_TEST_REDIS_URL:-}" && "${OPSCTL_TEST_REDIS_URL}" != "${OWNED_REDIS:-}" ]]; then
    GIVEN_REDIS="$OPSCTL_TEST_REDIS_URL"
fi

# --------------------------------------------------------------------------- help text
explain_and_fail() { # what is missing
    cat >&2 <<EOF
test-services: ERROR: $1
  This script can only install/start services when run as root (it does so on CI).
  Either:
    * run it once as root to install and start local services:
        sudo scripts/test-services.sh
      (Debian/Ubuntu packages: postgresql redis-server), then re-run the tests; or
    * provide your own servers and export their URLs before running the tests:
        export OPSCTL_TEST_DATABASE_URL='postgres://USER:PASSWORD@HOST:PORT/DBNAME'
        export OPSCTL_TEST_REDIS_URL='redis://:PASSWORD@HOST:PORT/0'
        export OPSCTL_TEST_PG_ADMIN_URL='postgres://SUPERUSER:PASSWORD@HOST:PORT/DBNAME'  # optional
      e.g. with Docker:
        docker run -d --name opsctl-pg -p 5432:5432 -e POSTGRES_USER=opsctl_test \\
          -e POSTGRES_PASSWORD=opsctl-test-pw -e POSTGRES_DB=opsctl_test postgres:15
        docker run -d --name opsctl-redis -p 6379:6379 redis:7 --requirepass opsctl-test-pw
EOF
    exit 1
}

# --------------------------------------------------------------------------- packages
NEED_PG=1
NEED_REDIS=1
[[ -n "$GIVEN_DB" ]] && NEED_PG=0
[[ -n "$GIVEN_REDIS" ]] && NEED_REDIS=0

setup_state_dir() {
    local uid
    uid="$(id -u)"
    if [[ -n "${OPSCTL_TEST_STATE:-}" ]]; then
        STATE_DIR="$OPSCTL_TEST_STATE"
    elif ((uid == 0)); then
        STATE_DIR=/tmp/opsctl-test
    else
        STATE_DIR="/tmp/opsctl-test-$uid"
    fi
    mkdir -p "$STATE_DIR" 2>/dev/null || die "cannot create state dir $STATE_DIR"
    [[ -O "$STATE_DIR" && -w "$STATE_DIR" ]] ||
        die "state dir $STATE_DIR is not owned by/writable for $(id -un); set OPSCTL_TEST_STATE"
    chmod 0700 "$STATE_DIR"
}

install_missing_packages() {
    local pkgs=()
    if ((NEED_PG)); then
        local t
        for t in psql pg_isready pg_lsclusters pg_ctlcluster pg_createcluster; do
            if ! have "$t"; then
                pkgs+=(postgresql)
                break
            fi
        done
        # postgresql-common is installed, but no server version is
        if have pg_lsclusters && ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; then
            [[ " ${pkgs[*]-} " == *" postgresql "* ]] || pkgs+=(postgresql)
        fi
    fi
    if ((NEED_REDIS)) && { ! have redis-server || ! have redis-cli; }; then
        pkgs+=(redis-server)
    fi
    ((${#pkgs[@]})) || return 0
    have apt-get || die "missing ${pkgs[*]} and apt-get is not available; install them yourself"
    local apt_log="$STATE_DIR/apt.log"
    log "installing ${pkgs[*]} with apt-get (log: $apt_log) ..."
    export DEBIAN_FRONTEND=noninteractive
    # output goes to a file: services started by postinst scripts must not inherit our stderr
    if ! { apt-get update -q -o Dpkg::Use-Pty=0 &&
        apt-get install -y -q --no-install-recommends -o Dpkg::Use-Pty=0 "${pkgs[@]}"; } >"$apt_log" 2>&1; then
        tail -n 30 "$apt_log" >&2 || true
        die "apt-get install ${pkgs[*]} failed (full log: $apt_log)"
    fi
    hash -r
}

setup_state_dir
if is_root; then
    install_missing_packages
fi

# --------------------------------------------------------------------------- PostgreSQL
pg_try_login() { # PORT USER PASSWORD -> success if password login over TCP works
    PGPASSWORD="$3" psql -X -q -A -t -w \
        -d "host=$HOST port=$1 user=$2 dbname=$PG_DB connect_timeout=5" \
        -c 'select 1' >/dev/null 2>&1
}

pg_wait_tcp() { # PORT
    local deadline=$((SECONDS + WAIT_SECS))
    until pg_isready -q -h "$HOST" -p "$1" -t 2; do
        if ((SECONDS >= deadline)); then
            return 1
        fi
        sleep 0.5
    done
}

as_postgres() {
    (cd / && runuser -u postgres -- "$@")
}

pg_select_cluster() { # sets PG_VER PG_NAME PG_PORT PG_STATUS PG_LOG
    local line="" want="${OPSCTL_TEST_PG_CLUSTER:-}"
    if [[ -n "$want" ]]; then
        [[ "$want" == */* ]] || die "OPSCTL_TEST_PG_CLUSTER must look like 15/main, got '$want'"
        line="$(pg_lsclusters -h | awk -v v="${want%%/*}" -v n="${want#*/}" '$1 == v && $2 == n' | head -n1)"
        if [[ -z "$line" ]]; then
            pg_create_cluster "${want%%/*}" "${want#*/}"
            line="$(pg_lsclusters -h | awk -v v="${want%%/*}" -v n="${want#*/}" '$1 == v && $2 == n' | head -n1)"
        fi
    else
        # newest version first; prefer a cluster that is already running
        line="$(pg_lsclusters -h | sort -s -k1,1nr | awk '$4 ~ /^online/' | head -n1)"
        [[ -n "$line" ]] || line="$(pg_lsclusters -h | sort -s -k1,1nr | head -n1)"
        if [[ -z "$line" ]]; then
            local ver
            ver="$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/postgres' 2>/dev/null |
                awk -F/ '{print $5}' | sort -n | tail -n1)"
            [[ -n "$ver" ]] || die "no PostgreSQL server version found under /usr/lib/postgresql"
            pg_create_cluster "$ver" main
            line="$(pg_lsclusters -h | awk -v v="$ver" '$1 == v && $2 == "main"' | head -n1)"
        fi
    fi
    [[ -n "$line" ]] || die "could not find or create a PostgreSQL cluster (pg_lsclusters shows none)"
    read -r PG_VER PG_NAME PG_PORT PG_STATUS _ _ PG_LOG _ <<<"$line"
}

pg_create_cluster() { # VERSION NAME
    local args=()
    # an invalid LANG in the environment makes pg_createcluster refuse to run
    if locale -a 2>/dev/null | grep -qix 'c\.utf-\?8'; then
        args+=(--locale C.UTF-8)
    fi
    log "creating PostgreSQL cluster $1/$2 (pg_createcluster) ..."
    pg_createcluster "${args[@]}" "$1" "$2" >&2 || die "pg_createcluster $1 $2 failed"
}

pg_show_log() {
    if [[ -n "${PG_LOG:-}" && -r "$PG_LOG" ]]; then
        log "last lines of $PG_LOG:"
        tail -n 20 "$PG_LOG" >&2 || true
    fi
}

pg_setup_roles() {
    as_postgres psql --cluster "$PG_VER/$PG_NAME" -X -q -v ON_ERROR_STOP=1 -d postgres \
        -v db="$PG_DB" -v user="$PG_USER" -v admin="$PG_ADMIN" \
        -v pw="$PG_PASSWORD" -v admin_pw="$PG_ADMIN_PASSWORD" >/dev/null <<'SQL'
SET client_min_messages = warning;
SET password_encryption = 'scram-sha-256';
SELECT format('CREATE ROLE %I', :'user') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'user') \gexec
SELECT format('CREATE ROLE %I', :'admin') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'admin') \gexec
ALTER ROLE :"user" WITH LOGIN NOSUPERUSER PASSWORD :'pw';
ALTER ROLE :"admin" WITH LOGIN SUPERUSER PASSWORD :'admin_pw';
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'user') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
ALTER DATABASE :"db" OWNER TO :"user";
SQL
}

HBA_BEGIN='# opsctl-test BEGIN'
pg_patch_hba() {
    local hba tmp
    hba="$(as_postgres psql --cluster "$PG_VER/$PG_NAME" -X -A -t -q -d postgres -c 'SHOW hba_file')"
    [[ -n "$hba" && -f "$hba" ]] || die "cannot locate pg_hba.conf of cluster $PG_VER/$PG_NAME"
    if grep -qF "$HBA_BEGIN" "$hba"; then
        return 1 # already patched, and still not working
    fi
    log "pg_hba.conf does not give password auth on $HOST for the test roles; prepending rules to $hba"
    tmp="$(mktemp)"
    {
        printf '%s (added by opsctl scripts/test-services.sh: password auth for the test roles)\n' "$HBA_BEGIN"
        printf 'host    all    %s    127.0.0.1/32    scram-sha-256\n' "$PG_USER" "$PG_ADMIN"
        printf 'host    all    %s    ::1/128         scram-sha-256\n' "$PG_USER" "$PG_ADMIN"
        printf '# opsctl-test END\n'
        cat "$hba"
    } >"$tmp"
    cat "$tmp" >"$hba" # keeps owner and mode of the original file
    rm -f "$tmp"
    pg_ctlcluster "$PG_VER" "$PG_NAME" reload >&2 || die "pg_ctlcluster $PG_VER $PG_NAME reload failed"
    sleep 1
}

pg_auth_ok() { # correct passwords work, a wrong one does not
    pg_try_login "$PG_PORT" "$PG_USER" "$PG_PASSWORD" &&
        pg_try_login "$PG_PORT" "$PG_ADMIN" "$PG_ADMIN_PASSWORD" &&
        ! pg_try_login "$PG_PORT" "$PG_USER" "opsctl-wrong-password-$RANDOM"
}

ensure_postgres_root() {
    pg_select_cluster
    if [[ "$PG_STATUS" == online* ]]; then
        log "PostgreSQL cluster $PG_VER/$PG_NAME already running on port $PG_PORT"
    else
        log "starting PostgreSQL cluster $PG_VER/$PG_NAME on port $PG_PORT (pg_ctlcluster) ..."
        if ! pg_ctlcluster "$PG_VER" "$PG_NAME" start >&2; then
            pg_show_log
            die "pg_ctlcluster $PG_VER $PG_NAME start failed (is port $PG_PORT taken by another server?)"
        fi
    fi
    if ! pg_wait_tcp "$PG_PORT"; then
        pg_show_log
        die "PostgreSQL $PG_VER/$PG_NAME does not accept TCP connections on $HOST:$PG_PORT after ${WAIT_SECS}s (check listen_addresses)"
    fi
    pg_setup_roles || die "creating roles/database in cluster $PG_VER/$PG_NAME failed"
    if ! pg_auth_ok; then
        pg_patch_hba || true
        local deadline=$((SECONDS + 10))
        until pg_auth_ok; do
            ((SECONDS < deadline)) ||
                die "password authentication over TCP to $HOST:$PG_PORT does not work as expected (check pg_hba.conf of $PG_VER/$PG_NAME)"
            sleep 0.5
        done
    fi
}

ensure_postgres_nonroot() {
    if ! have psql || ! have pg_isready; then
        explain_and_fail "PostgreSQL client tools (psql, pg_isready) are not installed"
    fi
    local ports=() p
    if [[ -n "${OPSCTL_TEST_PG_PORT:-}" ]]; then
        ports=("$OPSCTL_TEST_PG_PORT")
    else
        if have pg_lsclusters; then
            while read -r p; do ports+=("$p"); done < <(pg_lsclusters -h 2>/dev/null | awk '$4 ~ /^online/ {print $3}')
        fi
        [[ " ${ports[*]-} " == *" 5432 "* ]] || ports+=(5432)
    fi
    for p in "${ports[@]}"; do
        if pg_isready -q -h "$HOST" -p "$p" -t 2 && pg_try_login "$p" "$PG_USER" "$PG_PASSWORD"; then
            PG_PORT="$p"
            log "using provisioned PostgreSQL on $HOST:$PG_PORT"
            if ! pg_try_login "$p" "$PG_ADMIN" "$PG_ADMIN_PASSWORD"; then
                explain_and_fail "role $PG_ADMIN cannot log in on $HOST:$p (run the script once as root)"
            fi
            return 0
        fi
    done
    explain_and_fail "no PostgreSQL accepting $PG_USER/<password> on $HOST (ports tried: ${ports[*]})"
}

# --------------------------------------------------------------------------- Redis

redis_probe() { # PORT -> prints ours | free | foreign
    local p="$1" authed anon
    if ! tcp_open "$p"; then
        echo free
        return
    fi
    authed="$(REDISCLI_AUTH="$REDIS_PASSWORD" timeout 5 redis-cli -h "$HOST" -p "$p" ping 2>&1 || true)"
    if [[ "$authed" == PONG ]]; then
        # make sure the server really requires the password (redis-cli may carry on
        # after a failed AUTH against a server without requirepass)
        anon="$(timeout 5 redis-cli -h "$HOST" -p "$p" ping 2>&1 || true)"
        if [[ "$anon" == *NOAUTH* ]]; then
            echo ours
            return
        fi
    fi
    echo foreign
}

redis_start() { # PORT
    local p="$1" pidfile="$STATE_DIR/redis-$1.pid" logfile="$STATE_DIR/redis-$1.log" pid=""
    log "starting redis-server on $HOST:$p (state in $STATE_DIR) ..."
    rm -f "$pidfile"
    redis-server --bind "$HOST" --port "$p" --protected-mode yes \
        --requirepass "$REDIS_PASSWORD" --save '' --appendonly no \
        --daemonize yes --pidfile "$pidfile" --logfile "$logfile" --dir "$STATE_DIR" >&2 ||
        die "redis-server failed to start on port $p (see $logfile)"
    local deadline=$((SECONDS + WAIT_SECS)) state
    while :; do
        state="$(redis_probe "$p")"
        [[ "$state" == ours ]] && break
        [[ -z "$pid" && -s "$pidfile" ]] && pid="$(cat "$pidfile" 2>/dev/null || true)"
        if ((SECONDS >= deadline)) || { [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; }; then
            log "last lines of $logfile:"
            tail -n 20 "$logfile" >&2 2>/dev/null || true
            die "redis-server on $HOST:$p did not answer PING with the test password within ${WAIT_SECS}s"
        fi
        sleep 0.3
    done
    echo "$p" >"$STATE_DIR/redis.port"
}

ensure_redis() {
    have redis-cli || {
        is_root && die "redis-cli is still missing after installing redis-server"
        explain_and_fail "redis-server/redis-cli are not installed"
    }
    local candidates=() p state can_start=1 saved=""
    have redis-server || can_start=0
    if ((can_start)); then
        saved="$(cat "$STATE_DIR/redis.port" 2>/dev/null || true)"
    fi
    if [[ -n "$REDIS_PORT_FIXED" ]]; then
        candidates=("$REDIS_PORT_FIXED")
    else
        [[ "$saved" =~ ^[0-9]+$ ]] && candidates+=("$saved")
        for p in 6379 $(seq 6380 6399); do
            [[ "$p" == "$saved" ]] || candidates+=("$p")
        done
    fi
    # first pass: reuse a redis of ours that already runs on one of the candidate ports
    local free_port=""
    for p in "${candidates[@]}"; do
        state="$(redis_probe "$p")"
        case "$state" in
        ours)
            REDIS_PORT="$p"
            log "redis already running on $HOST:$REDIS_PORT (reusing)"
            return 0
            ;;
        free)
            # the preferred ports come first; stop looking once we found a free one
            free_port="$p"
            break
            ;;
        foreign)
            log "port $p is used by a server that does not accept the test password; skipping it"
            ;;
        esac
    done
    if [[ -z "$free_port" ]]; then
        if [[ -n "$REDIS_PORT_FIXED" ]]; then
            die "OPSCTL_TEST_REDIS_PORT=$REDIS_PORT_FIXED is taken by a server that does not accept the test password"
        fi
        die "no usable redis port in ${candidates[0]}, 6379-6399"
    fi
    ((can_start)) || explain_and_fail "redis-server is not installed and no redis with the test password answers on $HOST"
    redis_start "$free_port"
    REDIS_PORT="$free_port"
}

# --------------------------------------------------------------------------- main
PG_PORT=""
REDIS_PORT=""
if ((NEED_PG)); then
    if is_root; then
        ensure_postgres_root
    else
        ensure_postgres_nonroot
    fi
fi
if ((NEED_REDIS)); then
    ensure_redis
fi

if ((NEED_PG)); then
    DB_URL="postgres://$PG_USER:$(urlenc "$PG_PASSWORD")@$HOST:$PG_PORT/$PG_DB"
    ADMIN_URL="postgres://$PG_ADMIN:$(urlenc "$PG_ADMIN_PASSWORD")@$HOST:$PG_PORT/$PG_DB"
    log "PostgreSQL ready: $(mask "$DB_URL") (admin: $PG_ADMIN)"
else
    DB_URL="$GIVEN_DB"
    if [[ -n "${OPSCTL_TEST_PG_ADMIN_URL:-}" ]]; then
        ADMIN_URL="$OPSCTL_TEST_PG_ADMIN_URL"
    else
        ADMIN_URL="$GIVEN_DB"
        log "OPSCTL_TEST_PG_ADMIN_URL not set; using OPSCTL_TEST_DATABASE_URL for it (tests needing a superuser may fail)"
    fi
    log "using caller-provided OPSCTL_TEST_DATABASE_URL: $(mask "$DB_URL")"
fi
if ((NEED_REDIS)); then
    REDIS_URL="redis://:$(urlenc "$REDIS_PASSWORD")@$HOST:$REDIS_PORT/0"
    log "Redis ready: $(mask "$REDIS_URL")"
else
    REDIS_URL="$GIVEN_REDIS"
    log "using caller-provided OPSCTL_TEST_REDIS_URL: $(mask "$REDIS_URL")"
fi

owned_db="-"
owned_redis="-"
((NEED_PG)) && owned_db="$DB_URL"
((NEED_REDIS)) && owned_redis="$REDIS_URL"

emit OPSCTL_TEST_DATABASE_URL "$DB_URL"
emit OPSCTL_TEST_PG_ADMIN_URL "$ADMIN_URL"
emit OPSCTL_TEST_REDIS_URL "$REDIS_URL"
emit OPSCTL_TEST_SERVICES_OWNED "$owned_db $owned_redis"
