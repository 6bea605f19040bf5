#!/usr/bin/env bash
# tests/bench/sched.sh - scheduling overhead of sched daemon with instant steps (testkit echo):
# a chain of 20 steps (latency per DAG level) and a fan-out of 40 steps behind one root
# (throughput), at the default tick (500ms) and at 50ms. Own throw-away stack; release build.
set -uo pipefail
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${PREDICTORS_BIN:-$ROOT/bin}
T=$(mktemp -d /tmp/bench-sched.XXXXXX); chmod 755 "$T"
S=$T/stack
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; "$ROOT/deploy/stack" down --dir "$S" >/dev/null 2>&1; rm -rf "$T"; }
trap cleanup EXIT
"$ROOT/deploy/stack" up --dir "$S" --fast --random-ports --no-programs >"$T/stack.log" 2>&1 || { cat "$T/stack.log"; exit 1; }
set -a; . "$S/stack.env"; set +a
export PREDICTORS_SCHEDULER_PIPELINES=$T/pipes TESTKIT_STATE=$T/state
mkdir -p "$T/pipes" "$T/state"
{ echo "[step.s0]"; echo "service = echo"
  for i in $(seq 1 19); do echo "[step.s$i]"; echo "service = echo"; echo "needs = s$((i-1))"; done; } >"$T/pipes/chain.conf"
{ echo "[step.root]"; echo "service = echo"
  for i in $(seq 1 40); do echo "[step.f$i]"; echo "service = echo"; echo "needs = root"; done; } >"$T/pipes/fan.conf"
"$BIN/broker" >"$T/broker.log" 2>&1 & pids+=($!)
sleep 0.5
for i in 1 2 3 4; do "$BIN/worker-testkit" --service echo >"$T/w$i.log" 2>&1 & pids+=($!); done
printf '%-8s %-10s %8s %8s\n' tick pipeline steps seconds
for tick in 500ms 50ms; do
    PREDICTORS_SCHEDULER_TICK=$tick "$BIN/sched" daemon >"$T/daemon.$tick.log" 2>&1 & d=$!; pids+=($d)
    sleep 0.5
    for p in chain fan; do
        start=$(date +%s.%N)
        "$BIN/sched" enqueue $p --wait >/dev/null 2>&1 || { echo "run of $p failed"; exit 1; }
        end=$(date +%s.%N)
        steps=$(grep -c '^\[step' "$T/pipes/$p.conf")
        printf '%-8s %-10s %8d %8.2f\n' $tick $p $steps "$(echo "$end - $start" | bc)"
    done
    kill $d; wait $d 2>/dev/null
done
