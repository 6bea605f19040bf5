#!/usr/bin/env bash
# tests/bench/broker.sh - bin/broker side by side with beanstalkd and Redis on the same
# workload: 200-byte jobs, 1 producer, 2 consumers each holding one job (reserve -> ack).
#   sync        the producer waits for each put to be acknowledged (every system fsyncs
#               what it acknowledges only where the row says so)
#   inflight64  64 puts outstanding (ours: group commit)
#   paced       1,000 puts/s for BENCH_PACED_SECONDS
# Peers (Debian packages), started here on loopback and stopped by PID:
#   beanstalkd -b DIR -f 0 (fsync every write) and -b DIR (its default: fsync at most every 50 ms);
#   redis-server with appendonly yes, appendfsync always / everysec; the reliable-queue pattern
#   LPUSH / BLMOVE / LREM. Our broker: titanic.request (journal fsync'd before the 200) and
#   MDP workers. Settings: BENCH_JOBS (100000), BENCH_MAX_SECONDS per row (60),
#   BENCH_PACED_SECONDS (10). A row that hits the time cap reports what it did in that time.
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

row() {     # row NAME SYSTEM MODE JOBS MAXSECONDS
    start "$1" || return 1
    local out
    out=$($PY "$ROOT/tests/bench/broker_bench.py" "$2" "$ADDR" "$3" "$4" "$5") || { echo "| $1 | $3 | failed |"; stop; return 1; }
    stop
    $PY -c 'import json,sys; r=json.loads(sys.argv[2]); print("| %-15s | %-10s | %7d | %6.1f | %8.0f | %8.2f | %8.2f |" % (sys.argv[1], r["mode"], r["acked"], r["seconds"], r["jobs_per_s"], r["p50_ms"], r["p99_ms"]))' "$1" "$out"
}

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, $(uname -r); fdatasync of a 300-byte append on the journal's disk: $($PY -c '
import os,time; fd=os.open("'$TMP'/fs",os.O_WRONLY|os.O_CREAT|os.O_APPEND); t=time.time()
for i in range(100): os.write(fd,b"x"*300); os.fdatasync(fd)
print("%.2f ms" % ((time.time()-t)*10))')"
echo "# jobs per row: $JOBS (or what fits in ${MAX}s), paced: 1,000/s for ${PACED}s"
echo
echo "| system          | mode       |    jobs |      s |   jobs/s | p50 (ms) | p99 (ms) |"
echo "|-----------------|------------|--------:|-------:|---------:|---------:|---------:|"
rc=0
row predictors      predictors sync       "$JOBS" "$MAX" || rc=1
row predictors      predictors inflight64 "$JOBS" "$MAX" || rc=1
row beanstalkd-f0   beanstalkd sync       "$JOBS" "$MAX" || rc=1
row beanstalkd      beanstalkd sync       "$JOBS" "$MAX" || rc=1
row redis-always    redis      sync       "$JOBS" "$MAX" || rc=1
row redis-everysec  redis      sync       "$JOBS" "$MAX" || rc=1
row redis-everysec  redis      inflight64 "$JOBS" "$MAX" || rc=1
for s in predictors:predictors beanstalkd-f0:beanstalkd beanstalkd:beanstalkd redis-always:redis redis-everysec:redis; do
    row "${s%%:*}" "${s##*:}" paced $((PACED * 1000)) $((PACED + 30)) || rc=1
done
exit $rc
