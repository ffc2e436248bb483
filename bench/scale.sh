#!/bin/sh
# bench/scale.sh -- `make bench-scale`: load all of googleapis with dynpb and
# with lua-protobuf, each in a fresh process, for each Lua given.
#   sh bench/scale.sh <work dir> <lua>...
# The set is made here (never committed): npm's google-proto-files (test/bench
# time only), every google/** file but google/protobuf (protoc's own copies are
# used), protoc --include_imports. Skipped with a note when npm is unreachable.
set -e
W=$1; shift
SET=$W/googleapis.pb
if [ ! -s "$SET" ]; then
  mkdir -p "$W/npm"
  if ! (cd "$W/npm" && npm install --no-audit --no-fund --silent --prefix . google-proto-files >/dev/null 2>&1); then
    echo "bench-scale: skipped (npm could not install google-proto-files)"; exit 0
  fi
  G=$W/npm/node_modules/google-proto-files
  (cd "$G" && find google -name '*.proto' -not -path 'google/protobuf/*' | sort > ../../files.txt)
  (cd "$G" && protoc -I. -I/usr/include --include_imports --descriptor_set_out="$OLDPWD/$SET.tmp" \
     $(cat ../../files.txt) 2>"$OLDPWD/$W/scale-protoc.log") || { tail "$W/scale-protoc.log"; exit 1; }
  mv "$SET.tmp" "$SET"
fi
n=$(wc -l < "$W/npm/files.txt" 2>/dev/null || echo "?")
size=$(wc -c < "$SET")
RUNS=${SCALE_RUNS:-3}
printf '\ngoogleapis: %s files, %s bytes (protoc --include_imports); a fresh process per load,\n' "$n" "$size"
printf '%s rounds of dynpb then lua-protobuf; each row is the round of median load time\n' "$RUNS"
printf '%-10s %-8s %8s %10s %14s %10s\n' lua library "load ms" "RSS +MB" "stats().bytes" "again ms"
for l in "$@"; do
  libs=dynpb
  if [ -e "$W/$l/pb.so" ]; then libs="dynpb ref"; else echo "$l: lua-protobuf not built (no ../shared/peers/lua-protobuf)"; fi
  rows=$W/scale-$l.rows
  : > "$rows"
  r=0
  while [ $r -lt "$RUNS" ]; do
    for lib in $libs; do
      line=$(LUA_CPATH="$PWD/build/$l/?.so;$PWD/$W/$l/?.so;;" $l bench/scale.lua $lib "$SET" 2>&1) || { echo "$line"; exit 1; }
      echo "$line" >> "$rows"
    done
    r=$((r + 1))
  done
  for lib in $libs; do
    grep "^$lib	" "$rows" | sort -t'	' -k2,2n | awk -v l=$l -v k="$RUNS" -F'\t' \
      'NR == int((k + 1) / 2) { printf "%-10s %-8s %8s %10s %14s %10s\n", l, ($1=="ref"?"lua-pb":$1), $2, $3, $4, $5 }'
  done
done
echo "target (issue 17): dynpb load faster than lua-protobuf's, RSS growth <= 100 MB, stats().bytes within 25% of it"
