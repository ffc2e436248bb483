#!/bin/sh
# The first command on a fresh Debian machine: installs the Debian packages
# dynpb needs (when run as root; otherwise it names the missing ones), builds
# the module for Lua 5.4 and runs the main example, live_constants.lua.
set -e
cd "$(dirname "$0")/.."
sh .ci/deps.sh
make --no-print-directory example
