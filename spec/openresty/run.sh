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
NGINX_PID= REG_PID= EDGE_PID= TLS_PIDS= TOGGLE_PID=
cleanup() {
  for p in $TOGGLE_PID $NGINX_PID $REG_PID $EDGE_PID $TLS_PIDS; do
    kill "$p" 2>/dev/null
  done
  for p in $TOGGLE_PID $NGINX_PID $REG_PID $EDGE_PID $TLS_PIDS; do
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
no_error_lines() { ! grep -E '\[(error|crit|alert|emerg)\]' "$T/ng/error.log"; }

start_nginx() {
  local port
  for _ in 1 2 3; do
    port=$(free_port)
    DYNPB_CODE_ROOT="$CODE" \
      "$root/examples/openresty/render.sh" "$T/ng" "$port" "$REG$BASE" "$REFRESH" "$TIMEOUT" >/dev/null || return 1
    [ -n "${STRATEGY_SED:-}" ] && sed -i -e "$STRATEGY_SED" "$T/ng/nginx.conf"
    # test-only locations and the CA for the https checks
    sed -i -e "/location = \/booking/e cat '$here/test_locations.conf'" \
           -e "s|^\(  lua_shared_dict dynpb .*\)$|\1\n  lua_ssl_trusted_certificate $T/tls/ca.pem;|" \
           "$T/ng/nginx.conf"
    /usr/sbin/nginx -p "$T/ng" -c "$T/ng/nginx.conf" > "$T/ng/stderr" 2>&1 &
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
mkdir -p "$T/tls"
mkcert() {  # NAME: a self-signed certificate for 127.0.0.1
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$T/tls/$1.key" -out "$T/tls/$1.pem" >/dev/null 2>&1
}
mkcert trusted && mkcert untrusted && cp "$T/tls/trusted.pem" "$T/tls/ca.pem" && chmod 0755 "$T/tls" \
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
  test "$(grep -c -E "^.*dynpb\.resty\.follow: (option 'strategy' must be|option 'refresh' must be a number|unknown option 'colour'|no lua_shared_dict 'nope'|url: unsupported URL|'domain' is already followed)" <<<"$m")" -eq 6

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

start_py "$T/tls1.out" "$root/spec/support/registry_server.py" --tls "$T/tls/trusted.pem" "$T/tls/trusted.key" "$V1" "$V2" \
  && TLS_PIDS="$TLS_PIDS $STARTED_PID" && r=$(tf "https://127.0.0.1:$STARTED_PORT$BASE")
check "https with a trusted certificate (lua_ssl_trusted_certificate) ($r)" grep -q "status=200 .*fp=$FP1" <<<"$r"
start_py "$T/tls2.out" "$root/spec/support/registry_server.py" --tls "$T/tls/untrusted.pem" "$T/tls/untrusted.key" "$V1" \
  && TLS_PIDS="$TLS_PIDS $STARTED_PID" && r=$(tf "https://127.0.0.1:$STARTED_PORT$BASE")
check "https with an untrusted certificate is refused ($r)" grep -q "^error .*TLS handshake: .*certificate" <<<"$r"

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
summary
