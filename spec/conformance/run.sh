#!/bin/sh
# Run Google's protobuf conformance suite against dynpb on one Lua.
#
#   spec/conformance/run.sh [lua]      lua: lua5.4 (default), luajit, lua5.1, 5.3, ...
#
# Builds dynpb for that Lua, builds the runner (build.sh, idempotent), then runs
#   conformance_test_runner --enforce_recommended --failure_list failure_list.txt testee.sh
# Prints the runner's summary lines; the full log is work/run-<lua>.log and
# the lists of failing tests go to work/out-<lua>/.  Exits non-zero unless
# every test passes (failure_list.txt is empty on purpose) and the binary
# suite actually ran tests through dynpb (more than 0 successes).
#
# CONFORMANCE_TIMEOUT: seconds before the runner is killed (default 1200).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=$here/work
lua=${1:-${DYNPB_LUA:-lua5.4}}
case $lua in 5.*) lua=lua$lua ;; esac

mkdir -p "$work"
log=$work/run-$lua.log
out=$work/out-$lua

say() { printf 'conformance[%s]: %s\n' "$lua" "$*"; }

make -C "$root" --no-print-directory LUA="$lua" >"$work/make-$lua.log" 2>&1 || {
  tail -n 30 "$work/make-$lua.log" >&2; say "make LUA=$lua failed"; exit 1; }

"$here/build.sh"

rm -rf "$out"
mkdir -p "$out"
status=0
DYNPB_LUA=$lua timeout "${CONFORMANCE_TIMEOUT:-1200}" \
  "$work/conformance_test_runner" --enforce_recommended \
  --failure_list "$here/failure_list.txt" --output_dir "$out" \
  "$here/testee.sh" >"$log" 2>&1 || status=$?

grep '^CONFORMANCE SUITE' "$log" | sed "s/^/conformance[$lua]: /" || true

# the first suite is the binary/JSON one: it must have run real tests
successes=$(grep -m1 '^CONFORMANCE SUITE' "$log" | sed -n 's/.*: \([0-9][0-9]*\) successes.*/\1/p')
if [ "$status" -ne 0 ] || [ -z "$successes" ] || [ "$successes" -eq 0 ]; then
  if [ -s "$out/failing_tests.txt" ]; then
    n=$(wc -l <"$out/failing_tests.txt")
    say "$n failing tests ($out/failing_tests.txt), first ones:"
    head -n 15 "$out/failing_tests.txt" | sed 's/^/  /'
  fi
  [ "$status" -eq 124 ] && say "runner timed out"
  [ "${successes:-0}" = 0 ] && say "no test reached the codec (0 successes)"
  say "FAILED (exit $status); full log: $log"
  exit 1
fi
say "ok; full log: $log"
