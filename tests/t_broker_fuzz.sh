#!/usr/bin/env bash
# Runs every libFuzzer target (frames, journal records, msgpack bodies) for a
# few seconds each: a short smoke run inside `make test`; `make fuzz` runs them
# for FUZZ_SECONDS (default 60) each.
. "$(dirname "$0")/lib.sh"
command -v clang >/dev/null || { echo "clang not installed: no libFuzzer"; exit 77; }
echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n){(void)d;(void)n;return 0;}' > "$T_TMP/probe.c"
clang -fsanitize=fuzzer -o "$T_TMP/probe" "$T_TMP/probe.c" 2>/dev/null || { echo "clang has no libFuzzer runtime"; exit 77; }
"$ROOT/tests/fuzz/run" "${T_FUZZ_SECONDS:-3}" || t_fail "a fuzz target failed"
