#!/bin/sh
# Installs the Debian packages dynpb needs to build, test and run its
# examples, when any is missing. As root it runs apt-get (its progress shown);
# otherwise it lists what is missing and fails. Silent when nothing is missing.
# Usage: .ci/deps.sh [extra packages...]
# golang-github-gogo-googleapis-dev: google/api/{http,annotations}.proto for
# the services and options specs (issue 11). libprotobuf-c-dev and
# protobuf-c-compiler: only the bench's protobuf-c row (bench/pbc_bench.c).
set -e
PKGS="gcc make pkg-config python3
lua5.1 lua5.2 lua5.3 lua5.4 liblua5.1-0-dev liblua5.2-dev liblua5.3-dev liblua5.4-dev
luajit2 libluajit2-5.1-dev
libprotobuf-c-dev protobuf-c-compiler protobuf-compiler libprotobuf-dev
libcurl4-openssl-dev zlib1g-dev lua-busted luarocks lua-cjson python3-protobuf strace openssl
golang-github-gogo-googleapis-dev
libprotoc-dev dpkg-dev
$*"
missing=""
for p in $PKGS; do
  st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  case "$st" in *"install ok installed"*) ;; *) missing="$missing $p" ;; esac
done
[ -z "$missing" ] && exit 0
n=$(echo $missing | wc -w)
if [ "$(id -u)" != 0 ]; then
  echo "dynpb: $n Debian package(s) missing:$missing" >&2
  echo "dynpb: install them with: sudo apt-get install$missing" >&2
  exit 1
fi
echo "dynpb: installing $n Debian package(s) with apt-get (about 1-2 minutes on a fresh machine):"
echo "dynpb:  $missing"
export DEBIAN_FRONTEND=noninteractive
echo "dynpb: apt-get update"
apt-get update -q 2>&1 | grep -Ev '^(Hit|Get|Ign):' || true
echo "dynpb: apt-get install"
# one line per package unpacked and set up (apt's own progress), not every detail
apt-get install -y -q -o Dpkg::Progress-Fancy=0 --no-install-recommends $missing 2>&1 \
  | grep -E '^(Need to get|After this|Unpacking|Setting up|E:|W:)' \
  | sed 's/^/dynpb:   /'
# the pipe hides apt-get's status: check the result instead
for p in $missing; do
  st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  case "$st" in *"install ok installed"*) ;; *) echo "dynpb: apt-get did not install $p" >&2; exit 1 ;; esac
done
echo "dynpb: packages installed"
