#!/bin/sh
# Fetch Debian's protobuf source package (the version of the installed
# libprotobuf-dev) with a private apt state, for its test protos
# (src/google/protobuf/unittest*.proto ...).  Same approach as
# spec/conformance/build.sh; idempotent.  Prints the source directory.
#
#   spec/protoc/fetch_src.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=${DYNPB_PROTOC_WORK:-$here/work}
mkdir -p "$work"
log() { printf 'protoc/fetch_src: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
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
  [ -d "$srcdir/src/google/protobuf" ] || die "$srcdir has no src/google/protobuf"
  rm -f "$work"/.source-*
  touch "$stamp"
fi
echo "$srcdir"
