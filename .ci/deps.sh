#!/bin/sh
# Installs the Debian packages dynpb needs to build, test and run its
# examples, when any is missing. As root it runs apt-get; otherwise it lists
# what is missing and fails. Usage: .ci/deps.sh [extra packages...]
# golang-github-gogo-googleapis-dev: google/api/{http,annotations}.proto for
# the services and options specs (issue 11).
set -e
PKGS="gcc make pkg-config python3
lua5.1 lua5.3 lua5.4 liblua5.1-0-dev liblua5.3-dev liblua5.4-dev
luajit2 libluajit2-5.1-dev
libprotobuf-c-dev protobuf-c-compiler protobuf-compiler libprotobuf-dev
libcurl4-openssl-dev lua-busted luarocks lua-cjson python3-protobuf
golang-github-gogo-googleapis-dev
$*"
missing=""
for p in $PKGS; do
  st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  case "$st" in *"install ok installed"*) ;; *) missing="$missing $p" ;; esac
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "dynpb: missing Debian packages:$missing" >&2
  echo "dynpb: install them with: sudo apt-get install$missing" >&2
  exit 1
fi
echo "dynpb: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends $missing >/dev/null
