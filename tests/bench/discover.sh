#!/usr/bin/env bash
# Discover step latency (catalog path, the embedded default) as the history grows: one
# `worker-discover --propose` process reads every past task from PostgreSQL and checks the
# catalog's candidates against all of them (fingerprint + MinHash). History sizes 0, 1,000
# and 10,000 tasks (synthetic rows with random signatures: none is a near-duplicate, so the
# figure is the cost of the scan itself). Own throw-away stack on random ports.
set -euo pipefail
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${PREDICTORS_BIN:-$ROOT/bin}/worker-discover
S=$(mktemp -d /tmp/bench-discover.XXXXXX)
chmod 755 "$S"                  # PostgreSQL runs as another user when we are root
trap '"$ROOT/deploy/stack" down --dir "$S/stack" >/dev/null 2>&1; rm -rf "$S"' EXIT
"$ROOT/deploy/stack" up --dir "$S/stack" --fast --random-ports --no-programs >"$S/up.log" 2>&1
set -a; . "$S/stack/stack.env"; set +a
unset ANTHROPIC_API_KEY PREDICTORS_CONFIG
RUNS=10
printf "%-10s %-8s %s\n" history runs "ms per step (median, min-max)"
for n in 0 1000 10000; do
    psql -X -q "$DATABASE_URL" -c "truncate tasks" -c "
        insert into tasks (name, fingerprint, spec, minhash, origin)
        select 'synthetic_' || i, encode (sha256 (('s' || i)::bytea), 'hex'), '{}'::jsonb,
               (select string_agg (md5 (i::text || '/' || k), '') from generate_series (1, 32) k),
               'catalog'
        from generate_series (1, $n) i"
    times=()
    for r in $(seq $RUNS); do
        t0=$(date +%s%N)
        "$BIN" --propose >/dev/null 2>&1
        times+=($(( ($(date +%s%N) - t0) / 1000000 )))
    done
    sorted=($(printf "%s\n" "${times[@]}" | sort -n))
    printf "%-10s %-8s %s (%s-%s)\n" "$n" "$RUNS" "${sorted[$((RUNS / 2))]}" "${sorted[0]}" "${sorted[$((RUNS - 1))]}"
done
