#!/bin/sh
# Started by conformance_test_runner with execv (no PATH lookup; argv[1] is
# this script's own path, which we ignore).  Runs testee.lua on the Lua in
# DYNPB_LUA (default lua5.4: also 5.1, 5.3, luajit, ...) against this repo's
# build of dynpb for that Lua.
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
lua=${DYNPB_LUA:-lua5.4}
case $lua in 5.*) lua=lua$lua ;; esac
export DYNPB_CPATH="$root/build/$lua/?.so"
export DYNPB_LPATH="$root/lua/?.lua;$root/lua/?/init.lua"
export DYNPB_CONFORMANCE_DESC="${DYNPB_CONFORMANCE_DESC:-$here/work/conformance.pb}"
exec "$lua" "$here/testee.lua"
