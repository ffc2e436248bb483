#!/bin/sh
# csrc/gen/wkt_ed.sh -- refreshes the editions-era built-ins of dynpb.compile
# under csrc/gen/src/google/protobuf/ (a compile with an editions file uses
# them, as buf bundles them; make regen-protoc embeds them in
# csrc/gen/protoc_wkt.c). Test/dev-time only: building dynpb never runs it.
#
#   sh csrc/gen/wkt_ed.sh        npm pack google-proto-files@$VERSION into build/npm
#
# From npm google-proto-files: the well-known types, compiler/plugin.proto and
# cpp_features.proto (descriptor.proto comes from the same package through
# csrc/gen/adapt.sh). java_features.proto and go_features.proto are not in
# that package: they are protobuf's own (java/core/src/main/resources/google/
# protobuf/java_features.proto, go/google/protobuf/go_features.proto), copied
# unchanged. `make buf-compare` checks that all of them compile to the bytes
# buf 1.75 bundles (a file importing each one).
set -eu
VERSION=${VERSION:-5.0.3}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mkdir -p "$root/build/npm"
(cd "$root/build/npm" && npm pack --silent "google-proto-files@$VERSION" >/dev/null)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar xzf "$root/build/npm/google-proto-files-$VERSION.tgz" -C "$tmp"
for f in any api duration empty field_mask source_context struct timestamp type wrappers cpp_features \
         compiler/plugin; do
  mkdir -p "$(dirname "$here/src/google/protobuf/$f.proto")"
  cp "$tmp/package/google/protobuf/$f.proto" "$here/src/google/protobuf/$f.proto"
done
echo "wkt_ed.sh: refreshed csrc/gen/src/google/protobuf from npm google-proto-files@$VERSION; now run make regen-protoc"
