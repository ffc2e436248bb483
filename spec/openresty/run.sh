#!/usr/bin/env bash
# spec/openresty/run.sh -- dynpb.resty in a real nginx (Debian's nginx +
# libnginx-mod-http-lua, 2 workers) against the registry stand-in
# (spec/support/registry_server.py), checked with real HTTP requests.
#
# Needs: build/luajit/dynpb.so (make LUA=luajit), nginx, libnginx-mod-http-lua,
# lua-resty-core, wrk, curl, openssl, /usr/bin/python3. Everything listens on
# 127.0.0.1 only; everything started here is stopped on exit.
#
# Knobs: LOAD_SECS (default 10), WRK_THREADS (2), WRK_CONNS (20),
#        RSS_TOLERANCE_KB (default 4096: allowed growth of each worker's RSS).
# Last line: "openresty: N passed, M failed"; exit status 1 on any failure.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
LOAD_SECS=${LOAD_SECS:-10}
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNS=${WRK_CONNS:-20}
RSS_TOLERANCE_KB=${RSS_TOLERANCE_KB:-4096}
PY=/usr/bin/python3
V1=$root/examples/schemas/domain_v1.pb
V2=$root/examples/schemas/domain_v2.pb
BASE=/v1beta1/namespaces/shop/schemas/domain
REFRESH=1          # seconds (the test's refresh; the policy adds +/-10 % jitter)
TIMEOUT=1          # seconds per registry request

passed=0 failed=0
ok()   { passed=$((passed + 1)); echo "ok   - $*"; }
fail() { failed=$((failed + 1)); echo "FAIL - $*"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else fail "$name"; fi; }
note() { echo "       $*"; }

T=$(mktemp -d /tmp/dynpb-openresty.XXXXXX)
chmod 0755 "$T"     # nginx workers run as nobody when started as root: they read ca.pem
NGINX_PID= REG_PID= EDGE_PID= TLS_PIDS= TOGGLE_PID= STRACE_PID=
cleanup() {
  for p in $STRACE_PID $TOGGLE_PID $NGINX_PID $REG_PID $EDGE_PID $TLS_PIDS; do
    kill "$p" 2>/dev/null
  done
  for p in $STRACE_PID $TOGGLE_PID $NGINX_PID $REG_PID $EDGE_PID $TLS_PIDS; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  if [ "${KEEP_TMP:-0}" = 1 ]; then echo "(kept $T)"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

summary() {
  echo "openresty: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit $?
}

# ---------------------------------------------------------------- prerequisites
missing=""
for f in "$root/build/luajit/dynpb.so" /usr/sbin/nginx /usr/lib/nginx/modules/ngx_http_lua_module.so \
         /usr/lib/nginx/modules/ndk_http_module.so /usr/share/lua/5.1/resty/core.lua "$PY"; do
  [ -e "$f" ] || missing="$missing $f"
done
for c in wrk curl openssl sha256sum; do command -v $c >/dev/null || missing="$missing $c"; done
if [ -n "$missing" ]; then
  fail "prerequisites: missing$missing (make LUA=luajit; apt-get install nginx libnginx-mod-http-lua lua-resty-core wrk curl openssl)"
  summary
fi

# what the workers load, copied where they can read it: the checkout may sit
# in a directory only its owner can enter (a CI clone under mktemp -d)
CODE=$T/code
mkdir -p "$CODE/examples/openresty" "$CODE/build"
cp -R "$root/lua" "$CODE/lua"
cp "$root"/examples/openresty/*.lua "$CODE/examples/openresty/"
cp -R "$root/build/luajit" "$CODE/build/luajit"
chmod -R a+rX "$CODE"

fp() { sha256sum "$1" | cut -c1-12; }
FP1=$(fp "$V1") FP2=$(fp "$V2")
printf '\n\002b1\020\003\030\001' > "$T/booking.bin"     # Booking{id="b1", service=3, status=CREATED}

# ------------------------------------------------------------------ helpers
# start_py OUTFILE ARGS...: starts a Python server, waits for "PORT PID"; sets STARTED_PORT/STARTED_PID
start_py() {
  local out=$1; shift
  "$PY" "$@" > "$out" 2>"$out.err" &
  local pid=$!
  for _ in $(seq 100); do
    STARTED_PID=
    if [ -s "$out" ] && read -r STARTED_PORT STARTED_PID < "$out" && [ -n "${STARTED_PID:-}" ]; then
      STARTED_PID=$pid; return 0
    fi
    sleep 0.05
  done
  kill "$pid" 2>/dev/null
  echo "server did not start: $*"; cat "$out.err"
  return 1
}

start_registry() {   # [PORT]
  local extra=()
  [ -n "${1:-}" ] && extra=(--port "$1")
  start_py "$T/reg.out" "$root/spec/support/registry_server.py" "${extra[@]}" "$V1" "$V2" || return 1
  REG_PID=$STARTED_PID REG_PORT=$STARTED_PORT
  REG=http://127.0.0.1:$REG_PORT
}
stop_registry() {
  kill "$REG_PID" 2>/dev/null; wait "$REG_PID" 2>/dev/null; REG_PID=
}
ctl() { curl -s --max-time 3 -o /dev/null "$REG/_control?$1"; }
reg_count() { curl -s --max-time 3 "$REG/_stats${1:+?$1}"; }

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

NG=
booking() {   # prints "<http code> <body>" for one POST /booking
  curl -s --max-time 3 -w ' code=%{http_code}' --data-binary @"$T/booking.bin" "$NG/booking"
}
workers() { pgrep -P "$NGINX_PID" | sort -n | tr '\n' ' '; }

# hit N: N requests to /booking; writes them to $T/hits; prints nothing
hit() {
  : > "$T/hits"
  for _ in $(seq "$1"); do booking | tr '\n' ' ' >> "$T/hits"; echo >> "$T/hits"; done
}
# all_serve FP SERVICE: every hit is 200 with FP and SERVICE, and every worker answered
# all_serve FP SERVICE [FILE]: every hit in FILE (default $T/hits) is 200 with
# FP and SERVICE, and every worker answered
all_serve() {
  local fpx=$1 svc=$2 file=${3:-$T/hits} w bad
  [ -s "$file" ] || return 1
  bad=$(grep -v -c "service=$svc .*schema=$fpx.* code=200" "$file")
  [ "$bad" -eq 0 ] || return 1
  for w in $(workers); do grep -q "pid=$w " "$file" || return 1; done
  return 0
}
# wait_all_serve SECS FP SERVICE: polls until every worker serves FP; sets WAITED (seconds)
wait_all_serve() {
  local until=$(( $(date +%s%N) / 1000000 + $1 * 1000 )) start=$(( $(date +%s%N) / 1000000 ))
  while :; do
    hit 24
    if all_serve "$2" "$3"; then
      WAITED=$(awk -v a="$start" -v b="$(( $(date +%s%N) / 1000000 ))" 'BEGIN{printf "%.1f", (b-a)/1000}')
      return 0
    fi
    [ "$(( $(date +%s%N) / 1000000 ))" -lt "$until" ] || return 1
    sleep 0.2
  done
}
# status_of_all: /dynpb/status of every worker into $T/status (one line per pid)
status_of_all() {
  : > "$T/status.raw"
  for _ in $(seq 60); do
    curl -s --max-time 3 "$NG/dynpb/status" >> "$T/status.raw"
    local n=0 w
    for w in $(workers); do grep -q "^pid=$w " "$T/status.raw" && n=$((n + 1)); done
    [ "$n" -eq "$(workers | wc -w)" ] && break
  done
  sort -u -t' ' -k1,1 "$T/status.raw" > "$T/status"
}
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" | head -1; }   # field NAME < line
fetch_errors() { curl -s --max-time 3 "$NG/dynpb/status" | field fetch_errors; }
# (nginx itself logs the handshakes the TLS checks of /_test/fetch make fail on purpose)
no_error_lines() { ! grep -E '\[(error|crit|alert|emerg)\]' "$T/ng/error.log" | grep -v 'request: "GET /_test/fetch?url=https:'; }

start_nginx() {
  local port
  for _ in 1 2 3; do
    port=$(free_port)
    DYNPB_CODE_ROOT="$CODE" \
      "$root/examples/openresty/render.sh" "$T/ng" "$port" "$REG$BASE" "$REFRESH" "$TIMEOUT" >/dev/null || return 1
    [ -n "${STRATEGY_SED:-}" ] && sed -i -e "$STRATEGY_SED" "$T/ng/nginx.conf"
    [ -n "${FOLLOW_SED:-}" ] && sed -i -e "$FOLLOW_SED" "$T/ng/nginx.conf"
    # test-only locations and the CA for the https checks
    sed -i -e "/location = \/booking/e cat '$here/test_locations.conf'" \
           -e "s|^\(  lua_shared_dict dynpb .*\)$|\1\n  lua_ssl_trusted_certificate $T/tls/ca.pem;|" \
           "$T/ng/nginx.conf"
    /usr/sbin/nginx -p "$T/ng" -c "$T/ng/nginx.conf" -g 'daemon off;' > "$T/ng/stderr" 2>&1 &
    NGINX_PID=$!
    NG=http://127.0.0.1:$port
    local until=$(( $(date +%s) + 10 ))
    while [ "$(date +%s)" -lt "$until" ]; do
      if [ "$(workers | wc -w)" -eq 2 ] && curl -s --max-time 1 -o /dev/null "$NG/dynpb/status"; then return 0; fi
      kill -0 "$NGINX_PID" 2>/dev/null || break
      grep -q '\[emerg\]' "$T/ng/error.log" 2>/dev/null && break
      sleep 0.1
    done
    kill "$NGINX_PID" 2>/dev/null; wait "$NGINX_PID" 2>/dev/null; NGINX_PID=
    cat "$T/ng/stderr" "$T/ng/error.log" 2>/dev/null | tail -5
  done
  return 1
}
stop_nginx() {
  kill -QUIT "$NGINX_PID" 2>/dev/null
  for _ in $(seq 100); do kill -0 "$NGINX_PID" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$NGINX_PID" 2>/dev/null; wait "$NGINX_PID" 2>/dev/null; NGINX_PID=
}

# ------------------------------------------------------------ certificates
# a throwaway CA (spec/support/mkcerts.sh): ca.pem is nginx's lua_ssl_trusted_certificate;
# server (127.0.0.1), other (another host name), expired, unknown (self-signed), client
sh "$root/spec/support/mkcerts.sh" "$T/tls" && chmod 0755 "$T/tls" \
  || { fail "openssl: cannot make test certificates"; summary; }

# ======================================================================= run
echo "# dynpb.resty in nginx ($(/usr/sbin/nginx -v 2>&1 | sed 's/.*: //'), 2 workers), registry stand-in, refresh ${REFRESH}s"
start_registry || { fail "registry stand-in starts"; summary; }
start_nginx || { fail "nginx starts with 2 workers"; summary; }
ok "nginx starts with 2 workers ($(workers)) and the registry stand-in (port $REG_PORT)"

# -- the current constants
hit 30
check "v1: every worker answers 200 with v1 (service 3 unknown: UNKNOWN(3))" all_serve "$FP1" 'UNKNOWN(3)'
c=$(curl -s --max-time 3 "$NG/constants")
check "v1: /constants has no GO_SEND ($c)" test "${c#*GO_SEND}" = "$c"
j=$(curl -s --max-time 3 "$NG/_test/json")
check "to_json/from_json on a schema from get() ($j)" \
  grep -q '^{"id":"b1","status":"CREATED"} {"id":"b1","status":"CREATED"} true$' <<<"$j"
u=$(curl -s --max-time 3 "$NG/_test/unknown")
check "get() of a name not followed gives nil, err ($u)" grep -q "^nil .*not followed" <<<"$u"

m=$(curl -s --max-time 3 "$NG/_test/misuse")
note "misuse: $(tr '\n' '|' <<<"$m")"
check "misuse raises at follow{}: bad strategy, wrong type, unknown option, no dict, file://, twice" \
  test "$(grep -c -E "^.*dynpb: resty\.follow: (option 'strategy' must be|option 'refresh' must be a number|unknown option 'colour'|no lua_shared_dict 'nope'|url: unsupported URL|'domain' is already followed)" <<<"$m")" -eq 6

# -- one fetcher per node
status_of_all
leaders=$(grep -c 'leader=true' "$T/status")
check "exactly one worker holds the fetch lease ($leaders)" test "$leaders" -eq 1

# -- a new version, served by all workers after one refresh
ctl latest=2
if wait_all_serve 3 "$FP2" GO_SEND; then
  ok "v2 published: every worker serves GO_SEND after ${WAITED}s (refresh ${REFRESH}s, +/-10 %, + polls)"
else
  fail "v2 published: not every worker serves it within 3 s: $(sort "$T/hits" | uniq -c | head -3)"
fi
c=$(curl -s --max-time 3 "$NG/constants")
check "v2: /constants has GO_SEND=3" grep -q "GO_SEND=3" <<<"$c"

# -- one fetch per node per refresh: registry requests over a window
n0=$(reg_count); sleep 5; n1=$(reg_count)
d=$((n1 - n0))
note "registry requests in 5 s with 2 workers, refresh ${REFRESH}s: $d"
check "one fetch per node per refresh ($d requests in 5 s; 2 workers fetching would make ~10)" \
  test "$d" -ge 3 -a "$d" -le 7
status_of_all
fetcher=$(grep 'leader=true' "$T/status" | field fetches)
nm=$(grep 'leader=true' "$T/status" | field not_modified)
note "fetcher: fetches=$fetcher not_modified=$nm"
check "ETag/304: unchanged refreshes are 304s (not_modified=$nm)" test "${nm:-0}" -ge 3

# -- the cosocket client: bodies and edge cases (edge_server.py), TLS
start_py "$T/edge.out" "$here/edge_server.py" "$V1" || fail "edge server starts"
EDGE_PID=$STARTED_PID EDGE=http://127.0.0.1:$STARTED_PORT
tf() { curl -s --max-time 15 "$NG/_test/fetch?url=$1${2:+&$2}"; }
r=$(tf "$EDGE/chunked");       check "chunked body, extension and trailer ($r)" grep -q "status=200 len=[0-9]* fp=$FP1.* etag=\"c1\"" <<<"$r"
r=$(tf "$EDGE/close");         check "body ended by close ($r)" grep -q "status=200 .*fp=$FP1" <<<"$r"
r=$(tf "$EDGE/continue");      check "100 Continue skipped ($r)" grep -q "status=200 .*fp=$FP1" <<<"$r"
r=$(tf "$EDGE/redirect");      check "redirects followed, relative Location ($r)" grep -q "status=200 .*fp=$FP1" <<<"$r"
r=$(tf "$EDGE/big");           check "chunked body over max_bytes refused ($r)" grep -q "^error .*larger than max_bytes" <<<"$r"
r=$(tf "$EDGE/big-length");    check "Content-Length over max_bytes refused early ($r)" grep -q "^error .*larger than max_bytes" <<<"$r"
r=$(tf "$EDGE/truncated");     check "truncated body is an error ($r)" grep -q "^error .*truncated body" <<<"$r"
r=$(tf "$EDGE/bad-chunk");     check "bad chunk size is an error ($r)" grep -q "^error .*bad chunk size" <<<"$r"
r=$(tf "$EDGE/not-http");      check "a non-HTTP answer is an error ($r)" grep -q "^error .*not an HTTP" <<<"$r"
t0=$(date +%s%N)
r=$(tf "$EDGE/slow-headers" timeout=0.5)
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "total timeout bounds a stalled response (${ms} ms: $r)" test "$ms" -lt 2000 -a "${r#error}" != "$r"
r=$(tf "http://127.0.0.1:$(free_port)/x"); check "connection refused is an error ($r)" grep -q "^error .*connection refused" <<<"$r"
r=$(tf "$REG$BASE" max=100);   check "Content-Length over max (registry) refused ($r)" grep -q "^error .*larger than max_bytes" <<<"$r"

tls_server() {   # OUT CERTNAME [extra args...]: an https registry stand-in; sets TLS_URL
  local out=$1 name=$2; shift 2
  start_py "$T/$out.out" "$root/spec/support/registry_server.py" --tls "$T/tls/$name.pem" "$T/tls/$name.key" "$@" "$V1" "$V2" \
    && TLS_PIDS="$TLS_PIDS $STARTED_PID" && TLS_URL="https://127.0.0.1:$STARTED_PORT$BASE"
}
tls_server tls1 server && r=$(tf "$TLS_URL")
check "https, certificate from the trusted CA (lua_ssl_trusted_certificate) ($r)" grep -q "status=200 .*fp=$FP1" <<<"$r"
TLS_ROOT=${TLS_URL%$BASE}
r=$(tf "$TLS_ROOT/goto%3Fto%3Dhttp%253A%252F%252F127.0.0.1%253A1%252Fx")
check "https -> http redirect refused ($r)" grep -q "^error GET $TLS_ROOT/goto?to=.*: redirect from https to http refused" <<<"$r"
tls_server tls2 unknown && r=$(tf "$TLS_URL")
check "https, certificate from an unknown CA refused, URL and reason named ($r)" \
  grep -q "^error GET $TLS_URL: TLS handshake: .*self.signed certificate" <<<"$r"
tls_server tls3 other && r=$(tf "$TLS_URL")
check "https, certificate for another host name refused ($r)" \
  grep -q "^error GET $TLS_URL: TLS handshake: .*certificate host mismatch" <<<"$r"
tls_server tls4 expired && r=$(tf "$TLS_URL")
check "https, expired certificate refused ($r)" \
  grep -q "^error GET $TLS_URL: TLS handshake: .*certificate has expired" <<<"$r"
tls_server tls5 server --client-ca "$T/tls/ca.pem" && r=$(tf "$TLS_URL" "cert=$T/tls/client.pem&key=$T/tls/client.key")
check "https, client certificate through tcpsock:setclientcert (mTLS) ($r)" grep -q "status=200 .*fp=$FP1" <<<"$r"
r=$(tf "$TLS_URL")
check "https, a server that wants a client certificate refuses a request without one ($r)" \
  grep -q "^error GET $TLS_URL: " <<<"$r"
r=$(tf "$TLS_URL" "cert=$T/tls/missing.pem&key=$T/tls/client.key")
check "https, an unreadable client certificate is an error naming it ($r)" \
  grep -q "^error GET $TLS_URL: client certificate: .*missing.pem" <<<"$r"

# -- credentials stay with their host: a second stand-in on 127.0.0.2
start_py "$T/reg2.out" "$root/spec/support/registry_server.py" --host 127.0.0.2 "$V1" "$V2" \
  && TLS_PIDS="$TLS_PIDS $STARTED_PID" && REG2=http://127.0.0.2:$STARTED_PORT
hdr2() { curl -s --max-time 3 "$REG2/_header?name=$1"; }
hdr1() { curl -s --max-time 3 "$REG/_header?name=$1"; }
goto2=$(python3 -c 'import sys, urllib.parse as u; print(u.quote(sys.argv[1], safe=""))' "$REG2$BASE")
r=$(tf "$REG/redirect/1" "hdr=1")
check "same-origin redirect keeps the custom headers ($r; X-Api-Key=$(hdr1 x-api-key))" \
  test "$(hdr1 x-api-key)" = k3y -a "$(hdr1 cookie)" = "c=1"
r=$(tf "$REG/goto%3Fto%3D$goto2" "hdr=1")
check "redirect to another host (127.0.0.2) sends no custom header ($r; X-Api-Key='$(hdr2 x-api-key)' Cookie='$(hdr2 cookie)')" \
  test -z "$(hdr2 x-api-key)" -a -z "$(hdr2 cookie)" -a "${r#status=200}" != "$r"
r=$(tf "$REG/goto%3Fto%3D$goto2" "hdr=1&fwd=1")
check "forward_headers = true sends them to the other host ($r; X-Api-Key='$(hdr2 x-api-key)')" \
  test "$(hdr2 x-api-key)" = k3y -a "$(hdr2 cookie)" = "c=1"

# -- registry faults: never a handler error, always the last good version (v2)
fault() {   # NAME QUERY: sets the fault, keeps requesting for 3 refreshes, checks
  local name=$1 q=$2 e0 e1 slow
  e0=$(fetch_errors)
  ctl "$q"
  : > "$T/fault_hits"; : > "$T/fault_bodies"
  local end=$(( $(date +%s) + 3 ))
  while [ "$(date +%s)" -lt "$end" ]; do
    curl -s --max-time 3 -o /dev/null -w '%{http_code} %{time_total}\n' \
      --data-binary @"$T/booking.bin" "$NG/booking" >> "$T/fault_hits"
    hit 2; cat "$T/hits" >> "$T/fault_bodies"
    sleep 0.05
  done
  e1=$(fetch_errors)
  local n bad
  n=$(wc -l < "$T/fault_hits")
  bad=$(grep -v -c '^200 ' "$T/fault_hits")
  slow=$(awk '$2 > 0.5' "$T/fault_hits" | wc -l)
  check "fault $name: $n requests, all 200 and fast (non-200: $bad, over 0.5 s: $slow)" \
    test "$bad" -eq 0 -a "$slow" -eq 0 -a "$n" -gt 10
  check "fault $name: the last good version (v2) is served throughout by every worker" \
    all_serve "$FP2" GO_SEND "$T/fault_bodies"
  check "fault $name: reported as fetch errors ($e0 -> $e1)" test "${e1:-0}" -gt "${e0:-0}"
  ctl "mode=ok&retry_after=1"
}
fault "HTTP 500" "mode=500"
fault "hang (timeout ${TIMEOUT}s)" "mode=hang&hang=5"
fault "garbage body" "mode=garbage"
fault "truncated body" "mode=truncate"
fault "body over max_bytes" "mode=huge"
fault "429 Retry-After" "mode=429&retry_after=1"
# connection refused: the registry goes away, then comes back on the same port with v1
stop_registry
e0=$(fetch_errors)
: > "$T/fault_hits"
end=$(( $(date +%s) + 3 ))
while [ "$(date +%s)" -lt "$end" ]; do
  curl -s --max-time 3 -o /dev/null -w '%{http_code}\n' --data-binary @"$T/booking.bin" "$NG/booking" >> "$T/fault_hits"
  sleep 0.05
done
hit 24
bad=$(grep -v -c '^200$' "$T/fault_hits")
check "fault connection refused: all 200 (non-200: $bad)" test "$bad" -eq 0
check "fault connection refused: the last good version (v2) is served" all_serve "$FP2" GO_SEND
e1=$(fetch_errors)
check "fault connection refused: reported ($e0 -> $e1)" test "${e1:-0}" -gt "${e0:-0}"
start_registry "$REG_PORT" || fail "registry restarts on port $REG_PORT"
if wait_all_serve 8 "$FP1" 'UNKNOWN(3)'; then
  ok "recovery: the registry is back (serving v1): every worker serves v1 after ${WAITED}s"
else
  fail "recovery: not every worker serves v1 within 8 s"
fi
check "no [error]/[crit]/[alert] lines in error.log so far" no_error_lines

# -- reload (HUP): new workers start with the schema, one of them takes the lease
old_workers=$(workers)
kill -HUP "$NGINX_PID"
reloaded=0
for _ in $(seq 100); do
  now_workers=$(workers)
  if [ "$(wc -w <<<"$now_workers")" -eq 2 ] && [ -z "$(comm -12 <(tr ' ' '\n' <<<"$old_workers" | sed '/^$/d' | sort) \
        <(tr ' ' '\n' <<<"$now_workers" | sed '/^$/d' | sort))" ]; then reloaded=1; break; fi
  sleep 0.1
done
check "reload: 2 new workers ($old_workers-> $(workers))" test "$reloaded" -eq 1
hit 24
check "reload: the new workers serve the current version (v1) at once" all_serve "$FP1" 'UNKNOWN(3)'
leaders=0
for _ in $(seq 30); do
  status_of_all
  leaders=$(grep -c 'leader=true' "$T/status")
  [ "$leaders" -eq 1 ] && break
  sleep 0.2
done
check "reload: one new worker holds the fetch lease ($leaders)" test "$leaders" -eq 1

# -- load: wrk for LOAD_SECS s, a schema change every second, worker RSS
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
wrk_run() {  # SECS OUT
  wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"$1"s --timeout 2s -s "$here/booking.wrk.lua" "$NG/booking" > "$2" 2>&1
}
toggle() {   # SECS: latest=2,1,2,... every second
  local v=2 i
  for i in $(seq "$1"); do ctl "latest=$v"; v=$((3 - v)); sleep 1; done
}
status_of_all
declare -A upd0
while read -r line; do upd0[$(field pid <<<" $line")]=$(field updates <<<"$line"); done < "$T/status"
ch0=$(grep 'leader=true' "$T/status" | field changes)
toggle 4 & TOGGLE_PID=$!
wrk_run 3 "$T/wrk-warm.txt"
wait "$TOGGLE_PID" 2>/dev/null; TOGGLE_PID=
declare -A rss0
for w in $(workers); do rss0[$w]=$(rss "$w"); done
lines0=$(wc -l < "$T/ng/access.log")
toggle "$LOAD_SECS" & TOGGLE_PID=$!
wrk_run "$LOAD_SECS" "$T/wrk.txt"
wait "$TOGGLE_PID" 2>/dev/null; TOGGLE_PID=
sed 's/^/       wrk: /' "$T/wrk.txt"
total=$(awk '/requests in/ {print $1}' "$T/wrk.txt")
rps=$(awk '/^Requests\/sec/ {print $2}' "$T/wrk.txt")
non2xx=$(awk '/Non-2xx/ {print $NF}' "$T/wrk.txt"); non2xx=${non2xx:-0}
sockerr=$(grep -c 'Socket errors' "$T/wrk.txt")
tail -n +"$((lines0 + 1))" "$T/ng/access.log" | grep ' /booking$' > "$T/load_access.log"
logged=$(wc -l < "$T/load_access.log")
non200=$(awk '$1 != 200' "$T/load_access.log" | wc -l)
per_worker=$(awk '{n[$2]++} END {for (p in n) printf "%s:%d ", p, n[p]}' "$T/load_access.log")
check "load: wrk made requests (${total:-0} in ${LOAD_SECS}s, ${rps:-?} req/s)" test "${total:-0}" -gt 1000
check "load: zero non-200 responses (wrk: $non2xx non-2xx, socket errors lines: $sockerr; access.log: $non200 of $logged)" \
  test "$non2xx" -eq 0 -a "$sockerr" -eq 0 -a "$non200" -eq 0 -a "$logged" -gt 0
note "requests per worker: $per_worker"
status_of_all
ch1=$(grep 'leader=true' "$T/status" | field changes)
note "schema changes adopted by the fetcher during warm-up + load: $((ch1 - ch0))"
while read -r line; do
  w=$(field pid <<<" $line"); u=$(field updates <<<"$line")
  note "worker $w: schema updates during warm-up + load: $((u - ${upd0[$w]:-0}))"
  check "load: worker $w followed the changes ($((u - ${upd0[$w]:-0})) updates)" \
    test "$((u - ${upd0[$w]:-0}))" -ge "$((LOAD_SECS / 2))"
done < "$T/status"
for w in $(workers); do
  r1=$(rss "$w"); r0=${rss0[$w]:-0}
  note "worker $w VmRSS: before ${r0} kB, after ${r1} kB, growth $((r1 - r0)) kB"
  check "load: flat RSS for worker $w (growth $((r1 - r0)) kB <= ${RSS_TOLERANCE_KB} kB)" \
    test "$((r1 - r0))" -le "$RSS_TOLERANCE_KB"
done
check "no [error]/[crit]/[alert] lines in error.log after the load" no_error_lines

# -- snapshot writes go to a thread of the pool (ngx.run_worker_thread), not the worker
r=$(curl -s --max-time 5 "$NG/_test/save?path=$T/ng/state/probe.pb")
check "a snapshot write from a handler runs on the thread pool ($r)" grep -q "^true nil thread=[1-9][0-9]* blocking=0" <<<"$r"
r=$(curl -s --max-time 5 "$NG/_test/save?path=$T/ng/state/probe.pb&pool=nopool")
check "without the thread pool it is written in the worker, and works ($r)" grep -q "^true nil .*blocking=[1-9]" <<<"$r"
check "the missing pool is reported once (warn)" grep -q "written in the worker (blocking).*thread_pool nopool" "$T/ng/error.log"
for mode in dynpb nopool; do
  : > "$T/save_ms"
  for _ in $(seq 20); do curl -s --max-time 5 "$NG/_test/save?path=$T/ng/state/probe.pb&pool=$mode&t=1" >> "$T/save_ms"; done
  note "snapshot write (write_durable, 7 bytes) $( [ $mode = dynpb ] && echo 'on the thread pool' || echo 'in the worker, blocking it'): $(awk '{for(i=1;i<=NF;i++) if ($i ~ /^ms=/) {sub("ms=","",$i); s+=$i; if ($i+0>m) m=$i+0; n++}} END {printf "mean %.3f ms, max %.3f ms over %d", s/n, m, n}' "$T/save_ms")"
done
ctl latest=1; wait_all_serve 6 "$FP1" 'UNKNOWN(3)' >/dev/null
if command -v strace >/dev/null; then
  w=$(workers)
  strace -f -qq -e trace=fsync,rename -o "$T/strace.log" $(for p in $w; do printf -- '-p %s ' "$p"; done) 2>/dev/null &
  STRACE_PID=$!
  sleep 1
  ctl latest=2
  for _ in $(seq 60); do [ "$(fp "$T/ng/state/domain.pb" 2>/dev/null)" = "$FP2" ] && break; sleep 0.1; done
  sleep 0.3
  kill "$STRACE_PID" 2>/dev/null; wait "$STRACE_PID" 2>/dev/null
  ren=$(grep 'rename(".*domain\.pb\.[0-9a-f]*\.tmp", ".*domain\.pb") = 0' "$T/strace.log" | head -1)
  tid=${ren%% *}
  note "strace: $ren"
  check "the fetcher's snapshot write (rename, fsyncs) ran on a pool thread, not a worker (tid $tid; workers $w)" \
    test -n "$tid" -a -z "$(tr ' ' '\n' <<<"$w" | grep -x "$tid")"
  sync_tid=$(grep -cE "^$tid +fsync\(" "$T/strace.log")
  check "that thread fsynced the file and its directory ($sync_tid fsyncs)" test "$sync_tid" -ge 2
else
  fail "strace is not installed (.ci/deps.sh installs it)"
fi

# -- warm start from the snapshot: restart nginx while the registry is down
ctl latest=2; wait_all_serve 6 "$FP2" GO_SEND >/dev/null   # the snapshot now holds v2
snapfp=$(fp "$T/ng/state/domain.pb" 2>/dev/null)
check "the fetcher wrote the snapshot (v2: $snapfp)" test "$snapfp" = "$FP2"
stop_nginx
stop_registry
start_nginx || fail "nginx restarts with the registry down"
r=$(booking | tr '\n' ' ')
check "warm start: the first request after a start with the registry down is 200 with the snapshot (v2) ($r)" \
  grep -q "service=GO_SEND .*schema=$FP2.* code=200" <<<"$r"
hit 24
check "warm start: every worker serves the snapshot" all_serve "$FP2" GO_SEND
stop_nginx

# -- Stencil's versions strategy: GET <url>/versions, then <url>/versions/<max>
rm -f "$T/ng/state/domain.pb"
start_registry "$REG_PORT" || fail "registry restarts on port $REG_PORT"
STRATEGY_SED='s|^\(\s*refresh = \)|      strategy = "versions",\n\1|'
start_nginx || fail "nginx starts with strategy = versions"
check "versions: every worker serves v1" wait_all_serve 3 "$FP1" 'UNKNOWN(3)'
ctl latest=2
if wait_all_serve 3 "$FP2" GO_SEND; then ok "versions: every worker serves v2 after ${WAITED}s"
else fail "versions: not every worker serves v2 within 3 s"; fi
status_of_all
v=$(grep 'leader=true' "$T/status" | field version)
check "versions: the fetcher follows version 2 ($v)" test "$v" = 2
sleep 2.5   # more than two refresh periods: more listings, no new download
lst=$(reg_count "path=$BASE/versions"); v2n=$(reg_count "path=$BASE/versions/2")
note "registry: $lst listing requests, $v2n requests for version 2"
check "versions: version 2 fetched once, the listing each refresh ($v2n, $lst)" test "$v2n" -eq 1 -a "$lst" -ge 2
check "no [error]/[crit]/[alert] lines in error.log at the end" no_error_lines
stop_nginx

# -- an https registry followed by dynpb.resty: every refusal keeps the last good schema
STRATEGY_SED=
tls_server tlsf server || fail "https registry stand-in starts"
TLSF_PID=$STARTED_PID TLSF_PORT=$STARTED_PORT TLSF_URL=$TLS_URL
FOLLOW_SED="s|^\(\s*\)require(\"dynpb.resty\").follow{\$|\1require(\"dynpb.resty\").follow{ name = \"tls\", shared_dict = \"dynpb\", url = \"$TLSF_URL\", refresh = 1, timeout = 1, connect_timeout = 1, cert = \"$T/tls/client.pem\", key = \"$T/tls/client.key\" }\n\1require(\"dynpb.resty\").follow{|"
start_nginx || fail "nginx starts following an https registry"
FOLLOW_SED=
tls_all() {   # FP: every worker's /_test/tls shows FP; leaves the lines in $T/tls_status
  : > "$T/tls_status.raw"
  for _ in $(seq 30); do curl -s --max-time 3 "$NG/_test/tls" >> "$T/tls_status.raw"; done
  sort -u -t' ' -k1,1 "$T/tls_status.raw" > "$T/tls_status"
  local n=0 w
  for w in $(workers); do grep -q "^pid=$w fp=$1 " "$T/tls_status" && n=$((n + 1)); done
  [ "$n" -eq "$(workers | wc -w)" ]
}
ok_tls=0
for _ in $(seq 40); do tls_all "$FP1" && { ok_tls=1; break; }; sleep 0.2; done
check "https follow: every worker has the schema from the https registry (lua_ssl_trusted_certificate)" test "$ok_tls" -eq 1
for bad in "unknown:self.signed certificate" "other:certificate host mismatch" "expired:certificate has expired"; do
  name=${bad%%:*} why=${bad#*:}
  kill "$TLSF_PID" 2>/dev/null; wait "$TLSF_PID" 2>/dev/null
  start_py "$T/tlsf-$name.out" "$root/spec/support/registry_server.py" --port "$TLSF_PORT" \
    --tls "$T/tls/$name.pem" "$T/tls/$name.key" "$V2" && TLSF_PID=$STARTED_PID TLS_PIDS="$TLS_PIDS $STARTED_PID"
  e0=$(curl -s --max-time 3 "$NG/_test/tls" | sed -n 's/.* errors=\([0-9]*\).*/\1/p')
  seen=0
  for _ in $(seq 40); do
    curl -s --max-time 3 "$NG/_test/tls" > "$T/tls_one"
    grep -q "last_error=GET $TLSF_URL: TLS handshake: .*$why" "$T/tls_one" && \
      [ "$(sed -n 's/.* errors=\([0-9]*\).*/\1/p' "$T/tls_one")" -gt "${e0:-0}" ] && { seen=1; break; }
    sleep 0.2
  done
  check "https follow, $name certificate: refused, reported with the URL and the reason ($(sed 's/.*last_error=//' "$T/tls_one"))" test "$seen" -eq 1
  check "https follow, $name certificate: every worker keeps the last good schema (v1)" tls_all "$FP1"
done
# mutual TLS: the registry now wants a client certificate and serves v2; follow{} has cert/key
kill "$TLSF_PID" 2>/dev/null; wait "$TLSF_PID" 2>/dev/null
start_py "$T/tlsf-mtls.out" "$root/spec/support/registry_server.py" --port "$TLSF_PORT" \
  --tls "$T/tls/server.pem" "$T/tls/server.key" --client-ca "$T/tls/ca.pem" "$V2" \
  && TLSF_PID=$STARTED_PID TLS_PIDS="$TLS_PIDS $STARTED_PID"
ok_tls=0
for _ in $(seq 50); do tls_all "$FP2" && { ok_tls=1; break; }; sleep 0.2; done
check "https follow with a client certificate (follow{cert, key}): every worker gets v2 from the mTLS registry" test "$ok_tls" -eq 1
check "no [error]/[crit]/[alert] lines in error.log (https follow)" no_error_lines
stop_nginx
summary
