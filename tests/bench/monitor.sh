#!/usr/bin/env bash
# Monitor throughput and Redis footprint: a publisher of our own sends N well-formed job
# life cycles (queued, leased, progress, done: 4 events each) as fast as PUB allows to a
# release-built bin/monitor with its own redis-server; we time until the last job is
# recorded, then report Redis memory once the caps (10,000 jobs / events) are full.
# Usage: tests/bench/monitor.sh [JOBS]   (default 20000 jobs = 80,000 events)
set -euo pipefail
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${PREDICTORS_BIN:-$ROOT/bin}
N=${1:-20000}
TMP=$(mktemp -d /tmp/bench-monitor.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$TMP"' EXIT
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
RP=$(free_port); EP=$(free_port); MP=$(free_port)
redis-server --port "$RP" --bind 127.0.0.1 --save "" --appendonly no --dir "$TMP" >"$TMP/redis.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do redis-cli -p "$RP" PING >/dev/null 2>&1 && break; sleep 0.05; done
REDIS_URL=redis://127.0.0.1:$RP/0 PREDICTORS_BROKER_EVENTS=tcp://127.0.0.1:$EP PREDICTORS_BROKER=tcp://127.0.0.1:9 \
PREDICTORS_MONITOR_PORT=$MP PREDICTORS_MONITOR_CATCHUP=1s PREDICTORS_MONITOR_MMI_TIMEOUT=0.05s \
DATABASE_URL=postgresql://nobody@127.0.0.1:1/none "$BIN/monitor" >"$TMP/monitor.log" 2>&1 & pids+=($!)
sleep 0.5
/usr/bin/python3 - "$EP" "$RP" "$N" <<'PY'
import subprocess, sys, time
import msgpack, zmq
ep, rp, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
pub = zmq.Context.instance().socket(zmq.PUB)
pub.sndhwm = 0
pub.bind("tcp://127.0.0.1:" + ep)
def cli(*a):
    return subprocess.run(["redis-cli", "-p", rp, "--raw"] + list(a), capture_output=True, text=True).stdout.strip()
probe = msgpack.packb({"v": 1, "ev": "worker.up", "t": 1, "service": "bench", "worker": "AA", "proto": "MDPW02"})
while cli("EXISTS", "pred:worker:AA") != "1":
    pub.send_multipart([b"worker.up", probe]); time.sleep(0.05)
prog = msgpack.packb({"v": 1, "id": "x" * 0, "percent": 50.0, "stage": "s", "message": "m", "metrics": {}})
t0 = time.time()
for i in range(n):
    jid = "%032x" % (i + 1)
    now = int(time.time() * 1e6)
    base = {"v": 1, "t": now, "id": jid, "service": "bench"}
    pub.send_multipart([b"queued", msgpack.packb(dict(base, ev="queued", attempt=0, priority=0, durable=True))])
    pub.send_multipart([b"leased", msgpack.packb(dict(base, ev="leased", worker="AA", attempt=1, lease_ms=1000))])
    body = msgpack.packb({"v": 1, "id": jid, "percent": 50.0, "stage": "s", "message": "m", "metrics": {}})
    pub.send_multipart([b"progress", msgpack.packb(dict(base, ev="progress", worker="AA", body=body), use_bin_type=True)])
    pub.send_multipart([b"done", msgpack.packb(dict(base, ev="done", worker="AA", attempt=1, ms=5))])
sent = time.time() - t0
last = "pred:job:%032x" % n
while cli("HGET", last, "state") != "done":
    time.sleep(0.02)
    if time.time() - t0 > 600: sys.exit("timed out")
took = time.time() - t0
time.sleep(2)                                   # one catch-up: pred:jobs trimmed to its cap
proc = cli("HGET", "pred:stat:" + time.strftime("%Y-%m-%d", time.gmtime()), "bench:processed")
mem = [l for l in cli("INFO", "memory").split("\n") if l.startswith("used_memory:")][0].split(":")[1]
print("| jobs | events | publish s | recorded s | events/s | jobs recorded | pred:jobs | job hashes | pred:events | redis used_memory |")
print("|---|---|---|---|---|---|---|---|---|---|")
print("| %d | %d | %.2f | %.2f | %.0f | %s | %s | %s | %s | %.1f MiB |" % (n, 4 * n, sent, took, 4 * n / took, proc,
      cli("ZCARD", "pred:jobs"), cli("EVAL", "return #redis.call('KEYS', 'pred:job:*')", "0"), cli("XLEN", "pred:events"),
      int(mem) / 1048576))
print("(PUB drops nothing here: sndhwm 0 and the SUB's rcvhwm 100000; 'jobs recorded' < jobs means events were lost)")
PY
