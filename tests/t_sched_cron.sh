#!/usr/bin/env bash
# Cron in the daemon: two daemons on one database start a due slot exactly once; a slot
# missed past the catch-up deadline is not run; a paused pipeline's slot is passed over;
# overlap = skip does not start a slot while a run is active. (The next-fire table - month
# ends, leap days, DST - is the sc_cron selftest; `sched pipelines` prints next fires.)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sched_lib.sh"
sl_setup cron
cat >"$PIPES/minutely.conf" <<'CONF'
[pipeline]
schedule = * * * * *
catchup = 10m
overlap = skip
[step.only]
service = echo
CONF
cat >"$PIPES/yearly.conf" <<'CONF'
[pipeline]
schedule = 0 0 1 1 *
timezone = Europe/Berlin
catchup = 1h
[step.only]
service = echo
CONF
cat >"$PIPES/slow.conf" <<'CONF'
[pipeline]
schedule = * * * * *
catchup = 10m
overlap = skip
[step.nap]
service = sleep
param.ms = 60000
CONF
for o in queue replace; do
    sed "s/overlap = skip/overlap = $o/" "$PIPES/slow.conf" >"$PIPES/slow$o.conf"
done
"$SCHED" pipelines >"$T_TMP/pipes" || t_fail "sched pipelines"
grep -A1 "^yearly .*schedule 0 0 1 1 \* (Europe/Berlin)" "$T_TMP/pipes" | grep -q "next 20[0-9][0-9]-12-31T23:00:00" || { cat "$T_TMP/pipes"; t_fail "yearly next fire is not Berlin midnight"; }
for p in slow slowqueue slowreplace; do "$SCHED" pause $p || t_fail "pause $p"; done
"$SCHED" pause nosuch 2>"$T_TMP/err" && t_fail "pause of an unknown pipeline succeeded"
grep -q "unknown pipeline 'nosuch'" "$T_TMP/err" || t_fail "pause error"
sl_broker
sl_worker echo
# First sight: the daemons record "now" and fire nothing old. Pretend they last looked
# 150 s ago: the latest due minute is inside the catch-up deadline and must start once.
"$SCHED" daemon --once >/dev/null 2>&1 || t_fail "daemon --once"
psql -X -q "$DATABASE_URL" -c "update sched_pipelines set last_slot = now() - interval '150 seconds' where name in ('minutely', 'slow')
                                 ; update sched_pipelines set last_slot = now() - interval '800 days' where name = 'yearly'" || t_fail "psql"
sl_daemon d1
sl_daemon d2
for i in $(seq 300); do     # up to 60 s (a sanitizer build on a loaded machine)
    n=$(psql -X "$DATABASE_URL" -Atc "select count(*) from sched_runs where pipeline = 'minutely' and state = 'succeeded'")
    [ "$n" -ge 1 ] && break
    sleep 0.2
done
sleep 1
psql -X "$DATABASE_URL" -Atc "select id, trigger, slot, state from sched_runs order by created_at"
n=$(psql -X "$DATABASE_URL" -Atc "select count(*) from sched_runs where pipeline = 'minutely' and trigger = 'cron'")
slots=$(psql -X "$DATABASE_URL" -Atc "select count(distinct slot) from sched_runs where pipeline = 'minutely'")
[ "$n" -ge 1 ] || t_fail "the due slot did not start"
[ "$n" = "$slots" ] || t_fail "$n runs for $slots slots: a slot started twice"
grep -hq "slots passed while no daemon ran" "$T_TMP"/log/d1.log "$T_TMP"/log/d2.log || t_fail "the missed slots were not reported"
[ "$(psql -X "$DATABASE_URL" -Atc "select count(*) from sched_runs where pipeline = 'yearly'")" = 0 ] || t_fail "a slot past its catch-up deadline ran"
grep -hq "pipeline=yearly slot=.* missed: .* past the catch-up deadline" "$T_TMP"/log/d1.log "$T_TMP"/log/d2.log || t_fail "the late slot was not reported"
[ "$(psql -X "$DATABASE_URL" -Atc "select count(*) from sched_runs where pipeline = 'slow'")" = 0 ] || t_fail "a paused pipeline's slot ran"
grep -hq "pipeline=slow slot=.* passed over: the pipeline is paused" "$T_TMP"/log/d1.log "$T_TMP"/log/d2.log || t_fail "the paused slot was not reported"
# Overlap = skip: with a slow run active, the next slot is skipped. To make a slot due, set
# last_slot half a minute before the current minute's boundary: exactly that minute is due
# whatever the second within the minute (a daemon whose tick began before the boundary
# sees nothing due and fires on its next tick).
BACKDATE="date_trunc('minute', now()) - interval '30 seconds'"
"$SCHED" resume slow || t_fail "resume"
psql -X -q "$DATABASE_URL" -c "update sched_pipelines set last_slot = $BACKDATE where name = 'slow'"
for i in $(seq 300); do     # up to 60 s
    [ "$(psql -X "$DATABASE_URL" -Atc "select count(*) from sched_runs where pipeline = 'slow'")" = 1 ] && break
    sleep 0.2
done
[ "$(psql -X "$DATABASE_URL" -Atc "select count(*) from sched_runs where pipeline = 'slow'")" = 1 ] || t_fail "slow did not start after resume"
psql -X -q "$DATABASE_URL" -c "update sched_pipelines set last_slot = $BACKDATE where name = 'slow'"
for i in $(seq 300); do     # up to 60 s
    grep -hq "pipeline=slow slot=.* skipped: run .* is still active (overlap = skip)" "$T_TMP"/log/d1.log "$T_TMP"/log/d2.log && break
    sleep 0.2
done
grep -hq "pipeline=slow slot=.* skipped: run .* is still active (overlap = skip)" "$T_TMP"/log/d1.log "$T_TMP"/log/d2.log || t_fail "overlap skip not applied"
[ "$(psql -X "$DATABASE_URL" -Atc "select count(*) from sched_runs where pipeline = 'slow'")" = 1 ] || t_fail "overlap skip started a second run"
# Overlap = queue: the next slot's run waits queued behind the active one.
# Overlap = replace: the next slot cancels the active run and starts its own.
sql() { psql -X -Atc "$1" "$DATABASE_URL"; }
wait_sql() { local i; for i in $(seq 300); do [ "$(sql "$1")" = "$2" ] && return 0; sleep 0.2; done; t_fail "$3 ($(sql "$1"))"; }
for o in queue replace; do
    "$SCHED" resume slow$o >/dev/null || t_fail "resume slow$o"
    sql "update sched_pipelines set last_slot = $BACKDATE where name = 'slow$o'" >/dev/null
    wait_sql "select count(*) from sched_runs where pipeline = 'slow$o' and state = 'running'" 1 "slow$o: first slot not running"
    # The same minute cannot come twice: file the first run under an earlier slot.
    sql "update sched_runs set slot = slot - interval '1 hour' where pipeline = 'slow$o'" >/dev/null
    sql "update sched_pipelines set last_slot = $BACKDATE where name = 'slow$o'" >/dev/null
done
wait_sql "select count(*) > 0 from sched_runs where pipeline = 'slowqueue' and state = 'queued'" t "overlap queue: no run waiting"
[ "$(sql "select count(*) from sched_runs where pipeline = 'slowqueue' and state = 'running'")" = 1 ] || t_fail "overlap queue: more than one run running"
wait_sql "select count(*) > 0 from sched_runs where pipeline = 'slowreplace' and state = 'cancelled' and error = 'replaced by a newer cron slot'" t "overlap replace: nothing replaced"
[ "$(sql "select count(*) from sched_runs where pipeline = 'slowreplace' and state in ('queued', 'running')")" = 1 ] || t_fail "overlap replace: not exactly one active run"
echo "cron ok"
