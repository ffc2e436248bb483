#!/bin/sh
# Rebuilds the example descriptor sets from the .proto files beside this
# script (needs protoc, from Debian's protobuf-compiler).
set -e
cd "$(dirname "$0")"
for v in v1 v2; do
  protoc -I"$v" -I/usr/include --include_imports --descriptor_set_out="domain_$v.pb" "$v/domain.proto"
done
ls -l domain_v1.pb domain_v2.pb
