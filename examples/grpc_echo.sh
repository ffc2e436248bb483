#!/bin/sh
# The README's gRPC example end to end: compiles the test proto, starts the
# python3-grpcio test server on a free port, runs examples/grpc_echo.lua,
# stops the server. Needs: make (lua5.4 build), protoc, python3-grpcio.
set -e
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT
protoc -Ispec/fixtures/grpc -I/usr/include --include_imports \
  --descriptor_set_out="$tmp/echo.pb" test/v1/echo.proto
/usr/bin/python3 spec/support/grpc_server.py "$tmp/echo.pb" > "$tmp/port" &
pid=$!
while [ ! -s "$tmp/port" ]; do sleep 0.1; done
port=$(cut -d' ' -f1 "$tmp/port")
LUA_CPATH="build/lua5.4/?.so;;" LUA_PATH="lua/?.lua;;" lua5.4 examples/grpc_echo.lua "$port" "$tmp/echo.pb"
