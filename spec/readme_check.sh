#!/bin/sh
# spec/readme_check.sh [README] -- runs README.md's walkthroughs as written
# (make readme-check; CI).
#
# Marker convention: an HTML comment on the line before a fenced block,
#   <!-- readme-check -->                 the block is run with `sh -e`
#   <!-- readme-check expect="REGEX" -->  ... and its output must match REGEX
#                                         (grep -E, on some line)
#   <!-- readme-check file=NAME -->       the block is written to NAME (no run)
# Blocks without a marker (placeholders, root-only commands, long runs such as
# `make test` that CI runs anyway) are not run.
#
# The marked blocks run in README order, in one shell, each from the top of one fresh copy
# of the checkout (tracked and untracked, not ignored, files: no build/) in a
# temp dir, so an earlier block's files are there for later ones, as for a
# reader typing them in order. The README's example ports 8080 and 9090 are
# replaced by free ports, so parallel runs do not collide. Whatever a block
# left running is stopped at the end (nginx by its pid file under the copy's
# build/nginx, the registry stand-in by the pid it printed).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
readme=${1:-$here/README.md}
tmp=$(mktemp -d)
chmod 0755 "$tmp"                  # nginx workers (nobody) read the copy
copy=$tmp/dynpb
mkdir -p "$copy" "$tmp/blocks"

stop_leftovers() {
  if [ -f "$copy/build/nginx/nginx.pid" ]; then
    kill "$(cat "$copy/build/nginx/nginx.pid")" 2>/dev/null || true
  fi
  if [ -s "$copy/build/registry.out" ]; then
    kill "$(cut -d' ' -f2 "$copy/build/registry.out")" 2>/dev/null || true
  fi
  if [ -s "$copy/build/grpc.out" ]; then      # the gateway walkthrough's gRPC server
    kill "$(cut -d' ' -f2 "$copy/build/grpc.out")" 2>/dev/null || true
  fi
}
cleanup() {
  stop_leftovers
  sleep 0.2
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# the fresh copy
if git -C "$here" rev-parse --git-dir >/dev/null 2>&1; then
  (cd "$here" && git ls-files -z -c -o --exclude-standard \
     | tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | tar -xf - -C "$copy"
else
  (cd "$here" && tar --exclude=./build -cf - .) | tar -xf - -C "$copy"
fi

# two free ports (bound then released: a small window, no fixed numbers)
set -- $(python3 -c '
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')
nginx_port=$1 registry_port=$2

# blocks/NNN.{sh,file}: the block; blocks/NNN.meta: line, kind, argument
awk -v dir="$tmp/blocks" '
  function attr(s, name,   m) {
    if (match(s, name "=\"[^\"]*\"")) { m = substr(s, RSTART, RLENGTH); sub(/^[^=]*="/, "", m); sub(/"$/, "", m); return m }
    if (match(s, name "=[^ \"]+"))    { m = substr(s, RSTART, RLENGTH); sub(/^[^=]*=/, "", m); return m }
    return ""
  }
  /^<!-- readme-check( .*)? -->$/ { pending = $0; pline = NR; next }
  pending != "" && /^```/ && !inblock {
    n++; inblock = 1
    out = sprintf("%s/%03d.block", dir, n)
    f = attr(pending, "file"); e = attr(pending, "expect")
    printf "%d\t%s\t%s\n", pline, (f != "" ? "file" : "run"), (f != "" ? f : e) > sprintf("%s/%03d.meta", dir, n)
    printf "" > out
    pending = ""; next
  }
  inblock && /^```/ { inblock = 0; close(out); next }
  inblock { print >> out; next }
  /^[[:space:]]*$/ { next }
  pending != "" { printf "readme-check: README.md:%d: the marker is not followed by a fenced block\n", pline > "/dev/stderr"; bad = 1; pending = "" }
  END { if (inblock) { print "readme-check: unterminated block" > "/dev/stderr"; bad = 1 } exit bad }
' "$readme"

# One shell runs every block, as a reader's terminal would: a process that a
# block starts in the background (the registry stand-in) keeps its parent.
# Each block starts at the top of the copy; under `sh -e` a failing command
# ends the run, and the driver's EXIT trap names the block.
driver=$tmp/driver.sh
cat > "$driver" <<'EOF'
cur= out=
trap 'rc=$?; if [ $rc != 0 ] && [ -n "$cur" ]; then
  sed "s/^/  | /" "$out" | tail -n 40
  echo "readme-check: README.md:$cur: the block failed (exit $rc)"; fi' EXIT
EOF
n=0
for meta in "$tmp"/blocks/*.meta; do
  [ -e "$meta" ] || { echo "readme-check: no marked blocks in $readme" >&2; exit 1; }
  n=$((n + 1))
  block=${meta%.meta}.block
  line=$(cut -f1 "$meta") kind=$(cut -f2 "$meta") arg=$(cut -f3- "$meta")
  sed -i -e "s/\b8080\b/$nginx_port/g" -e "s/\b9090\b/$registry_port/g" "$block"
  if [ "$kind" = file ]; then
    cp "$block" "$copy/$arg"
    echo "echo '=== README.md:$line: wrote $arg'" >> "$driver"
    continue
  fi
  printf '%s\n' "$arg" > "$block.expect"
  cat >> "$driver" <<EOF
echo '=== README.md:$line'
sed 's/^/  \$ /' '$block'
cur=$line out='$block.out' t0=\$(date +%s)
cd '$copy'
. '$block' > '$block.out' 2>&1
cur=
sed 's/^/  | /' '$block.out' | tail -n 40
if [ -s '$block.expect' ] && [ -n "\$(cat '$block.expect')" ] && ! grep -Eq -f '$block.expect' '$block.out'; then
  echo "readme-check: README.md:$line: no output line matches: \$(cat '$block.expect')"; exit 1
fi
echo "  ok (\$((\$(date +%s) - t0))s)"
EOF
done
t_all=$(date +%s)
rc=0
sh -e "$driver" || rc=$?
stop_leftovers
if [ "$rc" != 0 ]; then
  log=$copy/build/nginx/error.log
  if [ -f "$log" ]; then echo "--- $log"; tail -n 20 "$log"; fi
  exit 1
fi
echo "readme-check: $n marked blocks of README.md ran as written ($(( $(date +%s) - t_all ))s)"
