#!/usr/bin/env bash
# The local stack: up, status, idempotent up, migrations applied once, down leaves no
# process; twice in a row; a port in use is a one-line error with nothing left running.
. "$(dirname "$0")/lib.sh"
S=$T_TMP/stack
stack() { "$ROOT/deploy/stack" "$1" --dir "$S" --fast --random-ports "${@:2}"; }
t_cleanup "$ROOT/deploy/stack down --dir $S"

procs() { pgrep -f -- "$S" | grep -v "^$$\$" || true; }

for round in 1 2; do
    stack up --no-programs >"$T_TMP/up.$round" 2>&1 || { cat "$T_TMP/up.$round"; t_fail "round $round: stack up failed"; }
    grep -q "stack: up: redis" "$T_TMP/up.$round" || t_fail "round $round: no 'up' line"
    set -a; . "$S/stack.env"; set +a
    t_check "redis answers" sh -c "redis-cli -u '$REDIS_URL' ping | grep -q PONG"
    v=$(psql -X "$DATABASE_URL" -Atc "select max(version) from schema_migrations") || t_fail "no schema_migrations"
    [ "$v" -ge 1 ] || t_fail "schema version is '$v'"
    n=$(psql -X "$DATABASE_URL" -Atc "select count(*) from schema_migrations")
    stack status >"$T_TMP/status" || { cat "$T_TMP/status"; t_fail "status says not healthy"; }
    grep -q "^redis *up" "$T_TMP/status" || t_fail "status lacks redis up"
    grep -q "^postgres *up.*schema version $v" "$T_TMP/status" || t_fail "status lacks postgres up"
    # up again: reuses what runs, applies nothing twice
    stack up --no-programs >"$T_TMP/up2.$round" 2>&1 || t_fail "second up failed"
    grep -q "already running" "$T_TMP/up2.$round" || t_fail "second up did not notice the running stack"
    "$ROOT/deploy/migrate" "$DATABASE_URL" | grep -q applied && t_fail "migrations applied twice"
    [ "$(psql -X "$DATABASE_URL" -Atc "select count(*) from schema_migrations")" = "$n" ] || t_fail "migration rows changed"
    stack down >/dev/null || t_fail "down failed"
    [ -z "$(procs)" ] || { ps -o pid,args -p "$(procs | tr '\n' ',' | sed 's/,$//')"; t_fail "round $round: processes left after down"; }
    stack status >/dev/null 2>&1 && t_fail "status says healthy after down"
done

# A port in use: one line naming it, non-zero exit, nothing half-started.
busy=$(t_free_port)
$PY -c "import socket,time,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1',$busy)); s.listen(); sys.stdout.write('x\n'); sys.stdout.flush(); time.sleep(60)" >"$T_TMP/holder" &
holder=$!
t_cleanup "kill $holder"
t_wait_port "$busy" "$holder"
S2=$T_TMP/stack2
if PG_PORT=$busy "$ROOT/deploy/stack" up --dir "$S2" --fast --random-ports --no-programs >"$T_TMP/busy.out" 2>"$T_TMP/busy.err"; then
    t_fail "stack up succeeded with its postgres port in use"
fi
grep -q "error: PG port $busy (from PG_PORT) is already in use" "$T_TMP/busy.err" || { cat "$T_TMP/busy.err"; t_fail "no clear error for the busy port"; }
[ "$(wc -l <"$T_TMP/busy.err")" = 1 ] || t_fail "more than one error line"
[ -z "$(pgrep -f -- "$S2")" ] || t_fail "processes left after a failed start"

# PostgreSQL that will not start (a corrupt cluster): clear error, Redis not left running.
S3=$T_TMP/stack3
stack up --no-programs >/dev/null 2>&1 || t_fail "stack3 first up"
"$ROOT/deploy/stack" down --dir "$S" >/dev/null
cp -r "$S" "$S3"
echo "garbage = = =" >>"$S3/pg/data/postgresql.conf"
if "$ROOT/deploy/stack" up --dir "$S3" --fast --no-programs >"$T_TMP/bad.out" 2>"$T_TMP/bad.err"; then
    t_fail "stack up succeeded with a broken postgresql.conf"
fi
grep -q "error: postgres did not start on 127.0.0.1:[0-9]* (see $S3/pg/postgres.log)" "$T_TMP/bad.err" || { cat "$T_TMP/bad.err"; t_fail "no clear error for postgres"; }
[ -z "$(pgrep -f -- "$S3")" ] || t_fail "processes left after postgres failed"
echo "stack ok"
