#!/bin/sh
# Build Google's protobuf conformance_test_runner from Debian's protobuf
# source package, plus a descriptor set of the conformance protos for the
# Lua testee.  Idempotent: every step is skipped when its output exists.
#
#   spec/conformance/build.sh          (run from anywhere)
#
# Outputs, all under spec/conformance/work/ (gitignored):
#   conformance_test_runner            the runner binary
#   conformance.pb                     FileDescriptorSet: conformance.proto,
#                                      test_messages_proto{2,3}.proto + imports
#
# The source package version is the one of the installed libprotobuf-dev, so
# the runner and the library it links against agree.  The system apt
# configuration is not touched: a deb-src list is derived from the existing
# apt sources and used with a private apt state directory (work/apt/).
#
# Needs (apt): g++ protobuf-compiler libprotobuf-dev dpkg-dev.  Installed
# automatically when missing and run as root.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
work=$here/work
mkdir -p "$work"
runner=$work/conformance_test_runner
descset=$work/conformance.pb

log() { printf 'conformance/build: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---- 1. tools -----------------------------------------------------------
need_pkgs=""
for p in g++ protobuf-compiler libprotobuf-dev dpkg-dev; do
  st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$st" = installed ] || need_pkgs="$need_pkgs $p"
done
if [ -n "$need_pkgs" ]; then
  if [ "$(id -u)" = 0 ]; then
    log "installing:$need_pkgs"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $need_pkgs >&2
  else
    die "missing packages:$need_pkgs (apt-get install them, or run as root)"
  fi
fi

version=$(dpkg-query -W -f='${source:Version}' libprotobuf-dev)
upver=$(dpkg-query -W -f='${source:Upstream-Version}' libprotobuf-dev)
srcdir=$work/protobuf-$upver
stamp=$work/.source-$version

# ---- 2. source package, through a private apt state ---------------------
if [ ! -f "$stamp" ] || [ ! -d "$srcdir/conformance" ]; then
  apt_dir=$work/apt
  rm -rf "$apt_dir"
  mkdir -p "$apt_dir/sources.list.d" "$apt_dir/lists/partial" \
           "$apt_dir/cache/archives/partial" "$apt_dir/download"
  list=$apt_dir/sources.list.d/deb-src.sources

  # deb822 files: every stanza whose Types include "deb" gets Types: deb-src
  # (all other fields, Signed-By included, are kept as they are).
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk '
      /^[Tt][Yy][Pp][Ee][Ss]:/ {
        if ($0 ~ /[[:space:]]deb([[:space:]]|$)/) print "Types: deb-src"
        else print
        next
      }
      { print }
    ' "$f" | awk '
      # keep only the stanzas that now read deb-src
      BEGIN { RS = ""; ORS = "\n\n" }
      /(^|\n)Types: deb-src(\n|$)/ { print }
    ' >>"$list"
  done
  # one-line format: "deb [opts] uri suite comps..." -> "deb-src ..."
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    sed -n 's/^[[:space:]]*deb[[:space:]]/deb-src /p' "$f" >>"$apt_dir/sources.list"
  done
  touch "$apt_dir/sources.list"
  [ -s "$list" ] || [ -s "$apt_dir/sources.list" ] || die "no apt 'deb' sources found to derive deb-src from"

  set -- -o "Dir::Etc::sourcelist=$apt_dir/sources.list" \
         -o "Dir::Etc::sourceparts=$apt_dir/sources.list.d" \
         -o "Dir::State::Lists=$apt_dir/lists" \
         -o "Dir::Cache=$apt_dir/cache" \
         -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=" \
         -o "APT::Sandbox::User=root" \
         -o "Debug::NoLocking=1"
  log "apt-get update (private state in $apt_dir)"
  apt-get "$@" -q update >"$apt_dir/update.log" 2>&1 ||
    { cat "$apt_dir/update.log" >&2; die "apt-get update failed"; }
  log "downloading source protobuf=$version"
  (cd "$apt_dir/download" &&
   apt-get "$@" -q source --download-only "protobuf=$version") >"$apt_dir/source.log" 2>&1 ||
    { cat "$apt_dir/source.log" >&2; die "apt-get source protobuf=$version failed"; }
  dsc=$(ls "$apt_dir"/download/protobuf_*.dsc | head -n 1)
  rm -rf "$srcdir"
  # apt already checked the files against the signed Sources index
  dpkg-source --no-check --no-copy -x "$dsc" "$srcdir" >"$apt_dir/dpkg-source.log" 2>&1 ||
    { cat "$apt_dir/dpkg-source.log" >&2; die "dpkg-source -x failed"; }
  [ -d "$srcdir/conformance" ] || die "$srcdir has no conformance/ directory"
  rm -f "$work"/.source-*
  touch "$stamp"
fi

# ---- 3. descriptor set for the testee -----------------------------------
if [ ! -s "$descset" ] || [ "$stamp" -nt "$descset" ]; then
  log "descriptor set $descset"
  protoc -I"$srcdir/conformance" -I"$srcdir/src" --include_imports \
    --descriptor_set_out="$descset.tmp" \
    "$srcdir/conformance/conformance.proto" \
    "$srcdir/src/google/protobuf/test_messages_proto2.proto" \
    "$srcdir/src/google/protobuf/test_messages_proto3.proto"
  mv "$descset.tmp" "$descset"
fi

# ---- 4. conformance_test_runner -----------------------------------------
if [ ! -x "$runner" ] || [ "$stamp" -nt "$runner" ]; then
  gen=$work/gen
  shim=$work/shim
  rm -rf "$gen" "$shim"
  mkdir -p "$gen" "$shim/google/protobuf/stubs"
  # the one header the runner needs that libprotobuf-dev does not ship
  cp "$srcdir/src/google/protobuf/stubs/stringprintf.h" "$shim/google/protobuf/stubs/"
  log "protoc --cpp_out"
  protoc -I"$srcdir/conformance" -I"$srcdir/src" --cpp_out="$gen" \
    "$srcdir/conformance/conformance.proto" \
    "$srcdir/src/google/protobuf/test_messages_proto2.proto" \
    "$srcdir/src/google/protobuf/test_messages_proto3.proto"
  c=$srcdir/conformance
  srcs="$c/conformance_test_main.cc $c/conformance_test.cc $c/conformance_test_runner.cc
        $c/binary_json_conformance_suite.cc $c/text_format_conformance_suite.cc
        $c/third_party/jsoncpp/jsoncpp.cpp
        $gen/conformance.pb.cc
        $gen/google/protobuf/test_messages_proto2.pb.cc
        $gen/google/protobuf/test_messages_proto3.pb.cc"
  log "g++ conformance_test_runner"
  obj=$work/obj
  rm -rf "$obj"
  mkdir -p "$obj"
  : >"$work/runner-build.log"
  pids=""
  i=0
  for s in $srcs; do
    i=$((i + 1))
    g++ -std=c++17 -O1 -w -pthread -I"$gen" -I"$shim" -I"$c" \
      -c "$s" -o "$obj/$i.o" >"$obj/$i.log" 2>&1 &
    pids="$pids $!"
  done
  fail=0
  for p in $pids; do wait "$p" || fail=1; done
  cat "$obj"/*.log >>"$work/runner-build.log"
  [ "$fail" = 0 ] && g++ -pthread -o "$runner.tmp" "$obj"/*.o -lprotobuf \
    >>"$work/runner-build.log" 2>&1 || fail=1
  if [ "$fail" != 0 ]; then
    tail -n 40 "$work/runner-build.log" >&2
    die "g++ failed (full log: $work/runner-build.log)"
  fi
  mv "$runner.tmp" "$runner"
fi

log "ok: $runner"
