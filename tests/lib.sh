# tests/lib.sh - helpers for scenario scripts; source it first thing.
#   t_fail MSG          print "t_fail: MSG" and exit 1
#   t_check DESC CMD... run CMD, fail with DESC if it fails
#   t_newdb NAME        create a fresh database, migrated, and point DATABASE_URL at it
#   t_wait_port PORT [PID]  wait until something listens on 127.0.0.1:PORT (up to 60 s, a
#                       sanitizer build on a loaded machine; fails at once if process PID died)
#   t_free_port         print a free TCP port: below the kernel's ephemeral range (so no
#                       outgoing connection takes it meanwhile), unused by any TCP socket, and
#                       never the same one twice in one test
#   t_cleanup CMD       run CMD at exit (stacked)
set -uo pipefail
ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
PREDICTORS_BIN=${PREDICTORS_BIN:-$ROOT/bin}
T_TMP=${T_TMP:-$(mktemp -d)}
PY=/usr/bin/python3
_t_cleanups=()
_t_run_cleanups() { local i; for ((i=${#_t_cleanups[@]}-1; i>=0; i--)); do eval "${_t_cleanups[$i]}" >/dev/null 2>&1; done; }
trap _t_run_cleanups EXIT
t_cleanup() { _t_cleanups+=("$*"); }
t_fail() { echo "t_fail: $*" >&2; exit 1; }
t_check() { local d=$1; shift; "$@" || t_fail "$d"; }
t_newdb() {
    local name="t_$1_$$" base=${DATABASE_URL%/*}
    psql -X -q "$base/postgres" -c "drop database if exists $name" -c "create database $name" >/dev/null || t_fail "cannot create database $name"
    export DATABASE_URL="$base/$name"
    "$ROOT/deploy/migrate" "$DATABASE_URL" >/dev/null || t_fail "migrations failed on $name"
}
t_wait_port() {
    local i
    for i in $(seq 600); do
        ss -Hltn "sport = :$1" | grep -q . && return 0
        [ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null && t_fail "nothing listens on port $1: process $2 exited"
        sleep 0.1
    done
    t_fail "nothing listens on port $1 after 60 s"
}
t_free_port() {
    local p lo hi=32767 used=$T_TMP/.t_ports
    read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || lo=32768
    [ "$lo" -gt 21000 ] && hi=$((lo - 1))
    while :; do
        p=$(( 20000 + (RANDOM * 32768 + RANDOM) % (hi - 20000 + 1) ))
        grep -qx "$p" "$used" 2>/dev/null && continue
        ss -Htan "sport = :$p" | grep -q . && continue
        echo "$p" >>"$used"; echo "$p"; return
    done
}
