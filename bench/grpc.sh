#!/bin/sh
# make grpc-bench: dynpb.grpc against the python3-grpcio test server on this
# machine (wall-clock figures of the whole path, server included: the
# server is the slower side; compare runs side by side, not across machines).
set -e
cd "$(dirname "$0")/.."
LUA=${LUA:-lua5.4}
tmp=$(mktemp -d)
trap 'kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT
protoc -Ispec/fixtures/grpc -I/usr/include --include_imports \
  --descriptor_set_out="$tmp/echo.pb" test/v1/echo.proto
/usr/bin/python3 spec/support/grpc_server.py "$tmp/echo.pb" > "$tmp/port" &
pid=$!
while [ ! -s "$tmp/port" ]; do sleep 0.1; done
LUA_CPATH="build/$LUA/?.so;;" LUA_PATH="lua/?.lua;;" $LUA bench/grpc.lua "$(cut -d' ' -f1 "$tmp/port")" "$tmp/echo.pb"
