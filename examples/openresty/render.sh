#!/bin/sh
# render.sh PREFIX PORT REGISTRY_URL [REFRESH [TIMEOUT]]
# Writes PREFIX/nginx.conf from examples/openresty/nginx.conf (or from
# examples/openresty/$DYNPB_CONF: DYNPB_CONF=gateway.conf, whose @BACKEND@ is
# DYNPB_BACKEND, the gRPC server's host:port) with absolute
# paths, and creates the directories it uses. The workers load lua/,
# examples/openresty/*.lua and build/luajit/ from this checkout, or from
# DYNPB_CODE_ROOT when set (a copy they can read: when nginx starts as root
# its workers run as an unprivileged user). Then:
#   nginx -p PREFIX -c PREFIX/nginx.conf        (background; -g 'daemon off;': foreground)
#   nginx -p PREFIX -c PREFIX/nginx.conf -s stop
set -eu
[ $# -ge 3 ] || { echo "usage: $0 PREFIX PORT REGISTRY_URL [REFRESH [TIMEOUT]]" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "${DYNPB_CODE_ROOT:-$here/../..}" && pwd)
prefix=$1 port=$2 url=$3 refresh=${4:-30} timeout=${5:-5}
mkdir -p "$prefix/tmp" "$prefix/state"
prefix=$(cd "$prefix" && pwd)
# workers run as an unprivileged user when nginx starts as root: the snapshot
# directory must be writable by them
chmod 0755 "$prefix"
chmod 0777 "$prefix/state"
conf=${DYNPB_CONF:-nginx.conf} backend=${DYNPB_BACKEND:-127.0.0.1:50051}
for v in "$root" "$prefix" "$url" "$backend"; do
  case "$v" in *'|'*|*'"'*) echo "render.sh: '|' or '\"' in $v" >&2; exit 2 ;; esac
done
sed -e "s|@ROOT@|$root|g" -e "s|@PREFIX@|$prefix|g" -e "s|@PORT@|$port|g" \
    -e "s|@REGISTRY@|$url|g" -e "s|@REFRESH@|$refresh|g" -e "s|@TIMEOUT@|$timeout|g" \
    -e "s|@BACKEND@|$backend|g" "$here/$conf" > "$prefix/nginx.conf"
echo "$prefix/nginx.conf"
