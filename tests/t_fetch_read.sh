#!/usr/bin/env bash
# market_bars through binary COPY on 1, 2 and 3 connections (each a TID range of the table)
# gives the same bars, bit for bit, whatever the table's physical order: as loaded (each
# symbol's rows together, a symbol split between two connections' ranges), after updates
# (updated rows move to the table's end: a symbol's rows apart and out of time order), and
# fully shuffled. A bad value is named the same way on every connection count.
. "$(dirname "$0")/lib.sh"
t_newdb fetchread
B=$PREDICTORS_BIN
psql() { command psql -X -q -At "$DATABASE_URL" "$@"; }

t_check "marketgen loads" $B/marketgen --db "$DATABASE_URL" --symbols 20 --sectors 4 --days 60 --no-events
rows=$((22 * 60 * 7))
[ "$(psql -c 'select count(*) from market_bars')" = $rows ] || t_fail "market_bars row count"

# read N: prints the checksum of every bar read on N connections (and checks the count)
read_sum() {
    local out
    out=$($B/marketgen --db "$DATABASE_URL" --read=$1 --checksum) || t_fail "read on $1 connections failed"
    grep -q "read $rows bars of 22 symbols" <<<"$out" || t_fail "read on $1 connections: $out"
    sed -n 's/^bars checksum //p' <<<"$out"
}
want=$(read_sum 1)
[ -n "$want" ] || t_fail "no checksum"
for n in 2 3; do
    [ "$(read_sum $n)" = "$want" ] || t_fail "as loaded: $n connections read other bars than 1"
done

# Every fifth hour's bars updated in place (same values): they move to the end of the table.
psql -c "update market_bars set volume = volume where extract (hour from ts)::int % 5 = 0" ||
    t_fail "update"
for n in 1 2 3; do
    [ "$(read_sum $n)" = "$want" ] || t_fail "after updates: $n connections read other bars"
done

# Fully shuffled.
psql -c "create table shuffled as select * from market_bars order by random ();
         truncate market_bars; insert into market_bars select * from shuffled; drop table shuffled" ||
    t_fail "shuffle"
for n in 1 2 3; do
    [ "$(read_sum $n)" = "$want" ] || t_fail "shuffled: $n connections read other bars"
done

# A NaN close: the same error (symbol and time) on every connection count.
psql -c "update market_bars set close = 'NaN' where ctid = (select ctid from market_bars
         where symbol = 'SPY' order by ts limit 1 offset 100)" || t_fail "set NaN"
first=""
for n in 1 2 3; do
    if $B/marketgen --db "$DATABASE_URL" --read=$n >/dev/null 2>"$T_TMP/err$n"; then
        t_fail "a NaN close was accepted on $n connections"
    fi
    grep -q "symbol SPY ts .*: close is NaN" "$T_TMP/err$n" || { cat "$T_TMP/err$n"; t_fail "NaN error on $n"; }
    msg=$(sed 's/^.*marketgen: //' "$T_TMP/err$n")
    [ -z "$first" ] && first=$msg
    [ "$msg" = "$first" ] || t_fail "the error differs on $n connections: $msg"
done
echo "ok: 1, 2, 3 connections read the same bars in three physical orders; one error message"
