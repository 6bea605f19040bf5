#!/usr/bin/env bash
# tests/bench/broker.sh - bin/broker side by side with beanstalkd and Redis on the same
# workload: 200-byte jobs, 1 producer, 2 consumers each holding one job (reserve -> ack).
# Every system runs every mode:
#   sync        the producer waits for each put to be acknowledged
#   inflight64  64 puts outstanding (ours: group commit)
#   paced       1,000 puts/s for BENCH_PACED_SECONDS
# Durability levels: ours, beanstalkd -f 0 and Redis appendfsync always fsync every
# acknowledged put; beanstalkd's default (fsync at most every 50 ms) and Redis everysec do not.
# Peers (Debian packages), started here on loopback and stopped by PID:
#   beanstalkd -b DIR -f 0 and -b DIR; redis-server with appendonly yes, appendfsync always /
#   everysec, the reliable-queue pattern LPUSH / BLMOVE / LREM. Our broker: titanic.request
#   (journal fsync'd before the 200) and MDP workers. All clients are Python on raw sockets
#   (ours speak ZMTP 3.0 through tests/bench/zmtp.py; BENCH_PYZMQ=1 uses pyzmq instead).
# Settings: BENCH_JOBS (100000), BENCH_MAX_SECONDS per row (60), BENCH_PACED_SECONDS (10).
# A row that hits the time cap reports what it did in that time. Under the table: the
# issue's targets computed from the rows.
set -uo pipefail
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${PREDICTORS_BIN:-$ROOT/bin}
JOBS=${BENCH_JOBS:-100000}
MAX=${BENCH_MAX_SECONDS:-60}
PACED=${BENCH_PACED_SECONDS:-10}
PY=/usr/bin/python3
TMP=$(mktemp -d /tmp/bench-broker.XXXXXX)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
for p in beanstalkd redis-server; do command -v $p >/dev/null || { echo "bench broker: $p not installed"; exit 1; }; done
[ -x "$BIN/broker" ] || { echo "bench broker: $BIN/broker not built"; exit 1; }

port() { $PY -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do ss -Hltn "sport = :$1" | grep -q . && return 0; sleep 0.05; done; echo "nothing on port $1"; return 1; }
stop() { kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; PID=; }

start() {   # start NAME -> sets PID and ADDR
    local p; p=$(port); ADDR=127.0.0.1:$p; rm -rf "$TMP/data"; mkdir -p "$TMP/data"
    case $1 in
        predictors)      "$BIN/broker" --bind tcp://$ADDR --events "" --journal "$TMP/data" 2>"$TMP/broker.log" & ;;
        beanstalkd-f0)   beanstalkd -l 127.0.0.1 -p $p -b "$TMP/data" -f 0 & ;;
        beanstalkd)      beanstalkd -l 127.0.0.1 -p $p -b "$TMP/data" & ;;
        redis-always)    redis-server --port $p --bind 127.0.0.1 --save "" --appendonly yes --appendfsync always --dir "$TMP/data" >/dev/null & ;;
        redis-everysec)  redis-server --port $p --bind 127.0.0.1 --save "" --appendonly yes --appendfsync everysec --dir "$TMP/data" >/dev/null & ;;
    esac
    PID=$!
    wait_port $p
}

cpu_s() {   # cpu_s PID -> user+system CPU seconds of that process so far
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0
}

row() {     # row NAME SYSTEM MODE JOBS MAXSECONDS
    start "$1" || return 1
    local out cpu
    out=$($PY "$ROOT/tests/bench/broker_bench.py" "$2" "$ADDR" "$3" "$4" "$5") || { echo "| $1 | $3 | failed |"; stop; return 1; }
    cpu=$(cpu_s "$PID")
    stop
    $PY -c '
import json, sys
r = json.loads(sys.argv[2]); r["name"] = sys.argv[1]; r["server_cpu_s"] = float(sys.argv[3])
per = lambda c: c / r["acked"] * 1e6 if r["acked"] else float("nan")
print("| %-15s | %-10s | %7d | %6.1f | %8.0f | %8.2f | %8.2f | %6.0f | %6.0f | %6.0f |" % (r["name"], r["mode"], r["acked"], r["seconds"],
      r["jobs_per_s"], r["p50_ms"], r["p99_ms"], per(r["server_cpu_s"]), per(r["producer_cpu_s"]), per(r["consumer_cpu_s"])))
open(sys.argv[4], "a").write(json.dumps(r) + "\n")' "$1" "$out" "$cpu" "$TMP/rows.jsonl"
}

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, $(uname -r); fdatasync of a 300-byte append on the journal's disk: $($PY -c '
import os,time; fd=os.open("'$TMP'/fs",os.O_WRONLY|os.O_CREAT|os.O_APPEND); t=time.time()
for i in range(100): os.write(fd,b"x"*300); os.fdatasync(fd)
print("%.2f ms" % ((time.time()-t)*10))')"
echo "# jobs per row: $JOBS (or what fits in ${MAX}s), paced: 1,000/s for ${PACED}s"
echo
echo "| system          | mode       |    jobs |      s |   jobs/s | p50 (ms) | p99 (ms) | srv us | prd us | con us |"
echo "|-----------------|------------|--------:|-------:|---------:|---------:|---------:|-------:|-------:|-------:|"
rc=0
for mode in sync inflight64; do
    row predictors      predictors $mode "$JOBS" "$MAX" || rc=1
    row beanstalkd-f0   beanstalkd $mode "$JOBS" "$MAX" || rc=1
    row beanstalkd      beanstalkd $mode "$JOBS" "$MAX" || rc=1
    row redis-always    redis      $mode "$JOBS" "$MAX" || rc=1
    row redis-everysec  redis      $mode "$JOBS" "$MAX" || rc=1
done
for s in predictors:predictors beanstalkd-f0:beanstalkd beanstalkd:beanstalkd redis-always:redis redis-everysec:redis; do
    row "${s%%:*}" "${s##*:}" paced $((PACED * 1000)) $((PACED + 30)) || rc=1
done
echo
echo "srv/prd/con us: CPU microseconds per acknowledged job of the server process, the producer"
echo "process and the two consumer processes together (user + system)."
echo
# The issue's targets, computed from the rows above.
[ -s "$TMP/rows.jsonl" ] && $PY - "$TMP/rows.jsonl" <<'PYEOF'
import json, sys
rows = {(r["name"], r["mode"]): r for r in map(json.loads, open(sys.argv[1]))}
def get(name, mode, key="jobs_per_s"):
    r = rows.get((name, mode))
    return r[key] if r else None
def verdict(ok):
    return "met" if ok else "NOT met"
print("Targets (issue 3):")
# Every acknowledged put fsync'd: ours in its best mode vs each fsync'd peer in the same mode.
best = max((m for m in ("sync", "inflight64") if get("predictors", m)), key=lambda m: get("predictors", m), default=None)
if best:
    for peer in ("redis-always", "beanstalkd-f0"):
        theirs = get(peer, best)
        if theirs:
            ratio = get("predictors", best) / theirs
            print("- fsync'd, %-10s: predictors %6.0f vs %-14s %6.0f jobs/s = %4.2fx (target >= 2x: %s)"
                  % (best, get("predictors", best), peer, theirs, ratio, verdict(ratio >= 2)))
    for peer in ("redis-always", "beanstalkd-f0"):
        for m in ("sync", "inflight64"):
            if m != best and get("predictors", m) and get(peer, m):
                print("  (%s: predictors %.0f vs %s %.0f = %.2fx)" % (m, get("predictors", m), peer, get(peer, m),
                                                                     get("predictors", m) / get(peer, m)))
ours, theirs = get("predictors", "inflight64"), get("redis-everysec", "inflight64")
if ours and theirs:
    print("- 64 in flight        : predictors %6.0f vs redis-everysec %6.0f jobs/s = %4.2fx (target >= 1x: %s)"
          % (ours, theirs, ours / theirs, verdict(ours >= theirs)))
ours, theirs = get("predictors", "paced", "p99_ms"), get("redis-everysec", "paced", "p99_ms")
if ours is not None and theirs is not None:
    print("- paced 1,000/s p99   : predictors %.2f ms vs redis-everysec %.2f ms (target <=: %s)"
          % (ours, theirs, verdict(ours <= theirs)))
PYEOF
exit $rc
