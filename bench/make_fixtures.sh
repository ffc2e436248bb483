#!/bin/sh
# Regenerates the benchmark inputs in bench/fixtures (needs protoc and lua5.4).
# bench.proto, order.txtpb and small.txtpb are copies of the shared benchmark
# messages (the ones the issue's reference figures were measured with); the
# rest is generated here. Committed outputs: *.pb, *.bin, large.txtpb, loadset.proto.
set -e
cd "$(dirname "$0")"
lua5.4 gen_fixtures.lua .
cd fixtures
protoc --include_imports --descriptor_set_out=bench.pb bench.proto large.proto
protoc --include_imports --descriptor_set_out=loadset.pb loadset.proto
protoc --encode=bench.Small bench.proto < small.txtpb > small.bin
protoc --encode=bench.Order bench.proto < order.txtpb > order.bin
protoc --encode=bench.Large large.proto < large.txtpb > large.bin
wc -c bench.pb loadset.pb small.bin order.bin large.bin
