#!/bin/sh
# csrc/gen/adapt.sh -- refreshes csrc/gen/src/google/protobuf/descriptor.proto,
# the descriptor.proto that csrc/gen is generated from (make regen), from the
# npm package google-proto-files (test/dev-time only; building dynpb never
# needs npm or protoc: the generated C is committed).
#
#   sh csrc/gen/adapt.sh                 npm pack google-proto-files@$VERSION into build/npm
#   sh csrc/gen/adapt.sh path/to/descriptor.proto
#
# "Adapted" means: constructs that Debian's protoc 3.21 cannot
# read are removed, nothing else; every message, enum, field and field number
# is kept. The list is STRIP below (sed expressions). With protoc 3.21.12
# it is empty: protoc interprets the options that descriptor.proto
# puts on its own declarations (extension-range `declaration`, `retention`,
# `targets`, `edition_defaults`, `feature_support`) with the file's own newer
# definitions, so the file is read as it is. The script still checks protoc
# accepts the result and fails when it does not; then add the offending
# construct to STRIP. (dynpb's own reader, csrc/desc_read.c, reads only field
# numbers of it that never change.)
set -eu
VERSION=${VERSION:-5.0.3}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dst=$here/src/google/protobuf/descriptor.proto
STRIP=''
if [ $# -ge 1 ]; then
  src=$1; origin="$1"
else
  mkdir -p "$root/build/npm"
  (cd "$root/build/npm" && npm pack --silent "google-proto-files@$VERSION" >/dev/null)
  tgz=$root/build/npm/google-proto-files-$VERSION.tgz
  tar xzf "$tgz" -C "$root/build/npm" package/google/protobuf/descriptor.proto
  src=$root/build/npm/package/google/protobuf/descriptor.proto
  origin="npm google-proto-files@$VERSION"
fi
[ -f "$src" ] || { echo "adapt.sh: no such file: $src" >&2; exit 1; }
sum=$(sha256sum < "$src" | cut -d' ' -f1)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
{
  echo "// dynpb: copied from $origin (sha256 $sum) by csrc/gen/adapt.sh."
  echo "// Removed for protoc 3.21: ${STRIP:-nothing}."
  if [ -n "$STRIP" ]; then sed -e "$STRIP" "$src"; else cat "$src"; fi
} > "$tmp/descriptor.proto"
mkdir -p "$tmp/google/protobuf" "$tmp/out"
cp "$tmp/descriptor.proto" "$tmp/google/protobuf/descriptor.proto"
(cd "$tmp" && protoc -o "$tmp/set.pb" google/protobuf/descriptor.proto) \
  || { echo "adapt.sh: protoc cannot read it; extend STRIP" >&2; exit 1; }
grep -q "^message FieldOptions" "$tmp/descriptor.proto" \
  || { echo "adapt.sh: $src is not descriptor.proto" >&2; exit 1; }
mkdir -p "$(dirname "$dst")"
cp "$tmp/descriptor.proto" "$dst"
echo "adapt.sh: wrote $dst ($origin); now run make regen"
