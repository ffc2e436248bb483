#!/usr/bin/env bash
# spec/openresty/gateway.sh -- dynpb.resty.gateway (issue 16) in a real nginx
# (Debian's nginx + libnginx-mod-http-lua, 2 workers) with grpc_pass to a real
# gRPC server (spec/support/grpc_server.py --gateway, python3-grpcio), the
# schema followed from the registry stand-in (spec/support/registry_server.py
# serving spec/fixtures/gateway/gateway_v1.pb, then gateway_v2.pb).
# The configuration is examples/openresty/gateway.conf plus the test servers
# of spec/openresty/gateway_test.conf.
#
# Needs: build/luajit/dynpb.so (make LUA=luajit), nginx, libnginx-mod-http-lua,
# lua-resty-core, python3-grpcio, luajit, wrk, curl. 127.0.0.1 only; everything
# started here is stopped on exit.
# Knobs: LOAD_SECS (default 5, per wrk run), WRK_THREADS (2), WRK_CONNS (20),
#        RSS_TOLERANCE_KB (4096).
# Last line: "gateway: N passed, M failed"; exit status 1 on any failure.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
LOAD_SECS=${LOAD_SECS:-5}
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNS=${WRK_CONNS:-20}
RSS_TOLERANCE_KB=${RSS_TOLERANCE_KB:-4096}
PY=/usr/bin/python3
FIX=$root/spec/fixtures/gateway
V1=$FIX/gateway_v1.pb V2=$FIX/gateway_v2.pb
BASE=/v1beta1/namespaces/shop/schemas/domain

passed=0 failed=0
ok()   { passed=$((passed + 1)); echo "ok   - $*"; }
fail() { failed=$((failed + 1)); echo "FAIL - $*"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else fail "$name"; fi; }
note() { echo "       $*"; }
summary() { echo "gateway: $passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit $?; }

T=$(mktemp -d /tmp/dynpb-gateway.XXXXXX)
chmod 0755 "$T"
NGINX_PID= REG_PID= GRPC_PID=
cleanup() {
  for p in $NGINX_PID $REG_PID $GRPC_PID; do kill "$p" 2>/dev/null; done
  for p in $NGINX_PID $REG_PID $GRPC_PID; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null
  done
  if [ "${KEEP_TMP:-0}" = 1 ]; then echo "(kept $T)"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

missing=""
for f in "$root/build/luajit/dynpb.so" /usr/sbin/nginx /usr/lib/nginx/modules/ngx_http_lua_module.so \
         /usr/share/lua/5.1/resty/core.lua "$PY"; do
  [ -e "$f" ] || missing="$missing $f"
done
for c in wrk curl luajit; do command -v $c >/dev/null || missing="$missing $c"; done
"$PY" -c 'import grpc' 2>/dev/null || missing="$missing python3-grpcio"
if [ -n "$missing" ]; then
  fail "prerequisites: missing$missing (make LUA=luajit; apt-get install nginx libnginx-mod-http-lua lua-resty-core python3-grpcio wrk curl)"
  summary
fi

# what the workers load, where they can read it
CODEROOT=$T/code
mkdir -p "$CODEROOT/examples/openresty" "$CODEROOT/build"
cp -R "$root/lua" "$CODEROOT/lua"
cp "$here/gw_variant.lua" "$CODEROOT/lua/"
cp -R "$root/build/luajit" "$CODEROOT/build/luajit"
chmod -R a+rX "$CODEROOT"

start_py() {   # OUT ARGS...: waits for "PORT PID"; sets STARTED_PORT STARTED_PID
  local out=$1; shift
  "$PY" "$@" > "$out" 2>"$out.err" &
  local pid=$!
  for _ in $(seq 100); do
    if [ -s "$out" ] && read -r STARTED_PORT _ < "$out"; then STARTED_PID=$pid; return 0; fi
    sleep 0.05
  done
  kill "$pid" 2>/dev/null; echo "server did not start: $*"; cat "$out.err"; return 1
}
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ctl() { curl -s --max-time 3 -o /dev/null "$REG/_control?$1"; }
workers() { pgrep -P "$NGINX_PID" | sort -n | tr '\n' ' '; }
lj() { LUA_PATH="$root/lua/?.lua;;" LUA_CPATH="$root/build/luajit/?.so;;" luajit "$@"; }

# ------------------------------------------------------------------ start
start_py "$T/grpc.out" "$root/spec/support/grpc_server.py" --gateway "$V2" || { fail "gRPC server starts"; summary; }
GRPC_PID=$STARTED_PID GRPC_PORT=$STARTED_PORT
start_py "$T/reg.out" "$root/spec/support/registry_server.py" "$V1" "$V2" || { fail "registry stand-in starts"; summary; }
REG_PID=$STARTED_PID REG=http://127.0.0.1:$STARTED_PORT

start_nginx() {
  local port port2 port3 dead
  for _ in 1 2 3; do
    port=$(free_port) port2=$(free_port) port3=$(free_port) dead=$(free_port)
    DYNPB_CODE_ROOT="$CODEROOT" DYNPB_CONF=gateway.conf DYNPB_BACKEND="127.0.0.1:$GRPC_PORT" \
      "$root/examples/openresty/render.sh" "$T/ng" "$port" "$REG$BASE" 1 1 >/dev/null || return 1
    sed -i -e "/^  server {/e cat '$here/gateway_test.conf'" "$T/ng/nginx.conf"
    sed -i -e "s|@PORT2@|$port2|; s|@PORT3@|$port3|; s|@DEAD@|$dead|" \
           -e "s|^\(    listen 127.0.0.1:$port reuseport;\)$|\1\n    add_header X-Worker \$pid always;\n    location /plain/ { rewrite ^/plain(/.*)\$ \$1 break; grpc_pass grpc://backend; }\n    location /noop/ { rewrite ^/noop(/.*)\$ \$1 break; access_by_lua_block { local _ = 1 } grpc_pass grpc://backend; header_filter_by_lua_block { local _ = 1 } body_filter_by_lua_block { local _ = 1 } }|" \
           "$T/ng/nginx.conf"
    /usr/sbin/nginx -p "$T/ng" -c "$T/ng/nginx.conf" -g 'daemon off;' > "$T/ng/stderr" 2>&1 &
    NGINX_PID=$!
    NG=http://127.0.0.1:$port NG2=http://127.0.0.1:$port2 NG3=http://127.0.0.1:$port3
    local until=$(( $(date +%s) + 10 ))
    while [ "$(date +%s)" -lt "$until" ]; do
      if [ "$(workers | wc -w)" -eq 2 ] && [ "$(curl -s --max-time 1 -o /dev/null -w '%{http_code}' "$NG/v1/shops/up")" = 200 ]; then
        return 0
      fi
      kill -0 "$NGINX_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill "$NGINX_PID" 2>/dev/null; wait "$NGINX_PID" 2>/dev/null; NGINX_PID=
    cat "$T/ng/stderr" "$T/ng/error.log" 2>/dev/null | tail -5
  done
  return 1
}

echo "# dynpb.resty.gateway in nginx ($(/usr/sbin/nginx -v 2>&1 | sed 's/.*: //'), 2 workers), grpc_pass to python3-grpcio $("$PY" -c 'import grpc; print(grpc.__version__)')"
start_nginx || { fail "nginx starts with the gateway configuration (2 workers) and serves v1"; summary; }
ok "nginx starts with examples/openresty/gateway.conf + test servers, workers $(workers), backend port $GRPC_PORT"
MASTER=$NGINX_PID

# get URL [curl args...]: sets BODY and CODE (and HDRS: the response headers)
get() {
  local url=$1; shift
  BODY=$(curl -s --max-time 10 -D "$T/resp.hdrs" -o "$T/resp.body" -w '%{http_code}' "$@" "$url" > "$T/resp.code"; tr -d "\\0" < "$T/resp.body")
  CODE=$(cat "$T/resp.code")
  HDRS=$(tr -d '\r' < "$T/resp.hdrs")
}
has() { grep -qF -- "$1" <<<"$BODY"; }
is() { [ "$CODE" = "$1" ] && has "$2"; }
shown() { echo "$CODE $(head -c 400 <<<"$BODY" | tr "\n" " ")"; }
# the body is JSON (python's parser) and has the given value at a path: jq_is EXPR VALUE
pj() { "$PY" -c 'import json,sys; d=json.loads(sys.stdin.read()); print(json.dumps(eval(sys.argv[1]), sort_keys=True, separators=(",", ":")))' "$1" <<<"$BODY" 2>&1; }
pj_is() { [ "$(pj "$1")" = "$2" ]; }

# ============================================================ binding forms
get "$NG/v1/shops/42"
check "GET /v1/shops/{shop}: GetShop with the path variable ($(shown))" \
  is 200 '{"req":{"shop":"42"},"method":"/gw.v1.Shops/GetShop"'
check "response is application/json, no content-length" grep -qi '^content-type: application/json$' <<<"$HDRS"
get "$NG/v1/stores/7"
check "additional binding GET /v1/stores/{shop} ($(shown))" is 200 '{"req":{"shop":"7"},"method":"/gw.v1.Shops/GetShop"'
get "$NG/v1/shops/9:get" -X POST -d '{"text":"t1"}'
check "additional binding POST /v1/shops/{shop}:get with body \"*\" (custom verb) ($(shown))" \
  is 200 '{"req":{"shop":"9","text":"t1"},"method":"/gw.v1.Shops/GetShop"'
get "$NG/v1/shops/a/subs/s%2F1"
check "nested field variable {sub.id}, percent-decoded ($(shown))" \
  is 200 '{"req":{"shop":"a","sub":{"id":"s/1"}},"method":"/gw.v1.Shops/GetSub"'
get "$NG/v1/shops/1/items/2"
check "pattern variable {name=shops/*/items/*} ($(shown))" is 200 '{"req":{"name":"shops/1/items/2"},"method":"/gw.v1.Shops/GetName"'
get "$NG/v1/files/a/b/c.txt"
check "'**' variable {path=**} ($(shown))" is 200 '{"req":{"path":"a/b/c.txt"},"method":"/gw.v1.Shops/GetPath"'
get "$NG/v1/any/zz/x/5"
check "'*' segment /v1/any/*/x/{shop} ($(shown))" is 200 '{"req":{"shop":"5"},"method":"/gw.v1.Shops/Wild"'
get "$NG/v1/shops" -X POST -H 'Content-Type: application/json' -d '{"shop":"n1","item":{"qty":3},"colors":["RED",2]}'
check "body \"*\": the whole message from JSON ($(shown))" \
  is 200 '{"req":{"shop":"n1","item":{"qty":"3"},"colors":["RED","GREEN"]},"method":"/gw.v1.Shops/CreateShop"'
get "$NG/v1/shops/s1/items/i1?text=q&item.title=from-query" -X PATCH -d '{"title":"T","qty":5}'
check "body field \"item\" + path variable {item.id} inside it + query for the rest ($(shown))" \
  is 200 '{"req":{"shop":"s1","item":{"id":"i1","title":"T","qty":"5"},"text":"q"},"method":"/gw.v1.Shops/UpdateItem"'
get "$NG/v1/echo/e1?text=hi"
check "response_body \"req\": only that field's JSON ($(shown))" is 200 '{"shop":"e1","text":"hi"}'
check "response_body: the body is exactly it" test "$BODY" = '{"shop":"e1","text":"hi"}'
get "$NG/v1/method/m1"
check "response_body of a scalar field: a JSON string ($(shown))" test "$CODE $BODY" = '200 "/gw.v1.Shops/GetMethod"'
get "$NG2/v1/echo/e2?text=hi"
check "response_body with emit_defaults + proto_names: the options apply inside the field ($(shown))" \
  eval '[ "$CODE" = 200 ] && grep -q "^{\"shop\":\"e2\",\"sub\":null\|^{\"shop\":\"e2\",\"name\":\"\",\"page_size\":0" <<<"$BODY" && has "\"text\":\"hi\"" && has "\"fail_code\":0"'

# ============================================================ query mapping
get "$NG/v1/shops/q?page_size=10&filter.status=OPEN&filter.tags=a&filter.tags=b&ids=1&ids=2&color=RED&colors=1&colors=GREEN&flag&at=2024-01-01T00:00:00Z&filter.sub.id=deep&filterColorAlias=x" 
check "unknown query parameter -> 400 naming it ($(shown))" is 400 "query parameter 'filterColorAlias'"
get "$NG/v1/shops/q?pageSize=11&filter.status=OPEN&filter.tags=a&filter.tags=b&ids=1&ids=2&color=RED&colors=1&colors=GREEN&flag&at=2024-01-01T00:00:00Z&filter.sub.id=deep"
check "query: scalars, nested (filter.sub.id), repeated (ids, filter.tags), enums by name and number, bare bool, Timestamp, JSON names ($(shown))" \
  pj_is 'd["req"]' '{"at":"2024-01-01T00:00:00Z","color":"RED","colors":["RED","GREEN"],"filter":{"status":"OPEN","sub":{"id":"deep"},"tags":["a","b"]},"flag":true,"ids":[1,2],"pageSize":11,"shop":"q"}'
get "$NG/v1/shops/p?shop=other"
check "a query parameter does not override a path variable ($(shown))" is 200 '{"req":{"shop":"p"}'
get "$NG/v1/shops/p?page_size=abc"
check "bad query value -> 400 with from_json's message ($(shown))" \
  is 400 "dynpb: gateway: query parameter 'page_size': dynpb: from_json gw.v1.Req: field 'page_size': string 'abc' is not an integer"
get "$NG/v1/shops/p?page_size=1&page_size=2"
check "a non-repeated parameter given twice -> 400 ($(shown))" is 400 "given 2 times"
get "$NG/v1/shops/p?filter=1"
check "a message-typed parameter -> 400 ($(shown))" is 400 "query parameter 'filter': field 'filter' is a message"

# ============================================================ errors
get "$NG/v1/nothing/here"
check "no rule matched -> 404 google.rpc.Status JSON ($(shown))" \
  is 404 '{"code":5,"message":"dynpb: gateway: no route for GET /v1/nothing/here","details":[]}'
get "$NG/gw.v1.Shops/Direct" -X POST -d '{}'
check "a method without a rule is not reachable directly (allow_direct = false) ($(shown))" is 404 '"code":5'
lines0=$(wc -l < "$T/ng/access.log")
get "$NG/v1/shops" -X POST -d '{"shop": 5, "item": {"qty": "x"}}'
check "bad body -> 400 with dynpb's from_json message ($(shown))" \
  is 400 '{"code":3,"message":"dynpb: from_json gw.v1.Req: field '"'"'shop'"'"': expected a string'
get "$NG/v1/shops/s1/items/i1" -X PATCH -d '{"qty":"x"}'
check "bad body field -> 400 naming the body field ($(shown))" \
  is 400 "dynpb: gateway: body (field 'item'): dynpb: from_json gw.v1.Item: field 'qty'"
get "$NG/v1/shops" -X POST -d '{"shop": "unterminated'
check "body that is not JSON -> 400 ($(shown))" is 400 '"code":3'
sleep 0.3
up=$(tail -n +"$((lines0 + 1))" "$T/ng/access.log" | awk '{print $1, $NF}' | tr '\n' ' ')
check "the backend was not called for the 400s (access.log status, upstream_status: $up)" \
  test "$(tail -n +"$((lines0 + 1))" "$T/ng/access.log" | awk '$1 == 400 && $NF == "-"' | wc -l)" -eq 3
get "$NG/v1/fail" -d '{"fail_code":5,"fail_message":"no shop 42","details":true}'
check "gRPC error with details -> HTTP 404, Status JSON, ErrorInfo decoded, unknown type raw ($(shown))" \
  is 404 '{"code":5,"message":"no shop 42","details":[{"@type":"type.googleapis.com/gw.v1.ErrorInfo","reason":"SHOP_CLOSED","metadata":{"shop":"42"}},{"@type":"type.googleapis.com/other.v1.Unknown","@value":"CAc="}]}'
map=""
for c in $(seq 1 16); do
  get "$NG/v1/fail" -d "{\"fail_code\":$c,\"fail_message\":\"m $c\"}"
  [ "$(pj 'd["code"]')" = "$c" ] || CODE="bad-body"
  map="$map $c:$CODE"
done
note "grpc code:HTTP status:$map"
check "google/rpc/code.proto mapping for every code" \
  test "$map" = " 1:499 2:500 3:400 4:504 5:404 6:409 7:403 8:429 9:400 10:409 11:400 12:501 13:500 14:503 15:500 16:401"
get "$NG/v1/fail" -d '{"fail_code":7,"fail_message":"after headers","headers_first":true}'
check "an error after the headers (not Trailers-Only): HTTP 200, the body is the Status ($(shown))" \
  is 200 '{"code":7,"message":"after headers","details":[]}'
get "$NG/v1/fail" -d '{"fail_code":3,"fail_message":"caf\u00e9 100% / \"q\""}'
check "grpc-message percent-decoded into the Status message ($(shown))" is 400 '"message":"café 100% / \"q\""'
get "$NG3/v1/shops/42"
check "backend down -> 503 JSON UNAVAILABLE ($(shown))" is 503 '{"code":14,"message":"dynpb: gateway: the backend did not answer with gRPC (nginx status 502'
get "$NG/v1/fail" -H 'X-Timeout: 0.3' -d '{"sleep":1.5}'
check "X-Timeout lowers the timeout: grpc-timeout sent, DEADLINE_EXCEEDED -> 504 ($(shown))" is 504 '"code":4'

# ============================================================ metadata
get "$NG/v1/shops/md" -H 'Authorization: Bearer t0k' -H 'X-Request-Id: r-1' -H 'X-Tenant: acme' -H 'X-Secret: s' -H 'Cookie: c=1'
md=$(pj 'd["metadata"]')
note "metadata at the backend: $md"
check "metadata allow-list: authorization, x-request-id, x-tenant forwarded; x-secret, cookie, user-agent not" \
  eval 'grep -q "\"authorization\":\"Bearer t0k\"" <<<"$md" && grep -q "\"x-request-id\":\"r-1\"" <<<"$md" && grep -q "\"x-tenant\":\"acme\"" <<<"$md" && ! grep -qiE "x-secret|cookie|user-agent" <<<"$md"'
get "$NG2/v1/shops/md" -H 'Authorization: Bearer t0k' -H 'X-Tenant: acme'
md=$(pj 'd["metadata"]')
check "another location's allow-list (x-tenant only) ($md)" \
  eval 'grep -q "\"x-tenant\":\"acme\"" <<<"$md" && ! grep -q authorization <<<"$md"'

# ============================================================ streaming
get "$NG/v1/shops/s/watch?count=3"
check "server streaming as a JSON array ($(shown))" pj_is '[x.get("index", 0) for x in d]' '[0,1,2]'
get "$NG/v1/shops/s/watch?count=2&fail_code=9&fail_message=late"
check "stream error after messages: HTTP 200, last array element is the Status ($(shown))" \
  eval '[ "$CODE" = 200 ] && pj_is "d[-1]" "{\"code\":9,\"details\":[],\"message\":\"late\"}" && pj_is "len(d)" 3'
check "that late status is logged" grep -q 'gw.v1.Shops.Watch ended with grpc-status 9 after the headers: late' "$T/ng/error.log"
get "$NG/v1/shops/s/watch?count=0&fail_code=5&fail_message=none"
check "stream error before any message (Trailers-Only) -> 404 Status ($(shown))" is 404 '{"code":5,"message":"none"'
get "$NG/v1/shops/s/watch?count=0"
check "empty stream -> [] ($(shown))" test "$CODE $BODY" = "200 []"
t=$(curl -s --max-time 10 -o "$T/slow" -w '%{time_starttransfer} %{time_total}' "$NG/v1/shops/s/watch?count=3&sleep=0.4")
check "stream written as frames arrive (first byte, total: $t s)" \
  awk -v a="${t% *}" -v b="${t#* }" 'BEGIN { exit !(a < 0.8 && b >= 1.1) }'
get "$NG2/v1/shops/s/watch?count=2&fail_code=10&fail_message=aborted"
nd_lines=$(grep -c . <<<"$BODY")
check "ndjson (stream = \"ndjson\"): one JSON per line, the Status last ($nd_lines lines: $(shown))" \
  eval '[ "$nd_lines" = 3 ] && grep -q "^{\"code\":10,\"message\":\"aborted\"" <<<"$(tail -1 <<<"$BODY")" && grep -qi "^content-type: application/x-ndjson" <<<"$HDRS"'
check "emit_defaults + proto_names on that location (fail_code, page_size present)" \
  eval 'head -1 <<<"$BODY" | grep -q "\"page_size\":0" && head -1 <<<"$BODY" | grep -q "\"fail_code\":10"'
big=$(head -c 300000 /dev/zero | tr '\0' 'x')
printf '{"shop":"big","text":"%s"}' "$big" > "$T/big.json"
get "$NG/v1/shops" -X POST --data-binary @"$T/big.json"
check "a 300 kB response reassembled from many chunks ($CODE, ${#BODY} bytes)" \
  eval '[ "$CODE" = 200 ] && [ "$(pj "len(d[\"req\"][\"text\"])")" = 300000 ]'

# ============================================================ variant options
get "$NG/v1/admin/a1"
check "services: without an allow-list gw.v1.Admin is served ($(shown))" is 200 '"method":"/gw.v1.Admin/Secret"'
get "$NG2/v1/admin/a1"
check "services = { \"gw.v1.Shops\" }: gw.v1.Admin -> 404 ($(shown))" is 404 '"code":5'
get "$NG2/gw.v1.Shops/Direct" -X POST -d '{"shop":"d1"}'
check "allow_direct: POST /gw.v1.Shops/Direct with a JSON body ($(shown))" is 200 '"method":"/gw.v1.Shops/Direct"'
head -c 100000 /dev/zero | tr '\0' 'y' | sed 's/^/{"text":"/; s/$/"}/' > "$T/100k.json"
get "$NG2/v1/shops" -X POST --data-binary @"$T/100k.json"
check "max_body (64 KiB) -> 413 ($(shown))" is 413 "larger than max_body (65536)"
head -c 30000 /dev/zero | tr '\0' 'z' | sed 's/^/{"text":"/; s/$/"}/' > "$T/30k.json"
get "$NG2/v1/shops" -X POST --data-binary @"$T/30k.json"
check "a body nginx buffered to a file (30 kB > client_body_buffer_size 8k) is read from it ($CODE)" \
  eval '[ "$CODE" = 200 ] && [ "$(pj "len(d[\"req\"][\"text\"])")" = 30000 ]'
check "(that body was buffered to a file: nginx says so)" grep -q 'a client request body is buffered to a temporary file' "$T/ng/error.log"
get "$NG2/v1/shops/forbidden"
check "on_request refuses -> 403 Status JSON ($(shown))" is 403 '"message":"shop forbidden is forbidden"'
get "$NG2/v1/shops/boom"
check "on_request raises -> 500 Status JSON, logged ($(shown))" \
  eval 'is 500 "\"code\":13" && grep -q "on_request raised: .*hook failed on purpose" "$T/ng/error.log"'
get "$NG3/v1/shops/no-te"
check "a location without grpc_set_header TE trailers: the backend's refusal, and a hint in error.log ($(shown))" \
  eval '[ "$CODE" != 200 ] && grep -q "needs .grpc_set_header TE trailers;." "$T/ng/error.log"'
get "$NG3/_gw/bad"
check "misuse in access{} raises: nginx's 500 passes the filters untouched ($CODE $(grep -i '^content-type' <<<"$HDRS"))" \
  eval '[ "$CODE" = 500 ] && grep -qi "^content-type: text/html" <<<"$HDRS" && grep -q "dynpb: gateway: unknown option .colour." "$T/ng/error.log"'
get "$NG2/v1/shops/h?text=hook"
check "on_request changes the request and adds metadata ($(shown))" \
  eval 'has "\"text\":\"changed by on_request in GetShop\"" && has "\"x-hook\":\"1\""'
m=$(curl -s --max-time 3 "$NG3/_gw/misuse")
note "misuse: $(tr '\n' '|' <<<"$m")"
check "misuse raises: unknown option, bad stream, wrong type, no schema, bad metadata, bad cors, undefined name" \
  test "$(grep -c -E "dynpb: gateway: (unknown option 'colour'|option 'stream' must be|option 'schema' must be a string|option 'schema' .* is required|option 'metadata'\[1\] must be a string|option 'cors': origins must be|no configuration named 'nope')" <<<"$m")" -eq 7

# ============================================================ gRPC-Web and CORS
lj "$here/grpcweb.lua" encode "$V1" gw.v1.Req '{"shop":"w1","count":2}' > "$T/web.bin"
lj "$here/grpcweb.lua" encode "$V1" gw.v1.Req '{"fail_code":7,"fail_message":"no way","details":true}' > "$T/webfail.bin"
curl -s --max-time 5 -D "$T/wh" -o "$T/wb" -H 'Content-Type: application/grpc-web+proto' -H 'X-Grpc-Web: 1' \
  -H 'Origin: http://localhost:3000' --data-binary @"$T/web.bin" "$NG/gw.v1.Shops/GetShop"
w=$(lj "$here/grpcweb.lua" decode "$V1" gw.v1.Reply < "$T/wb" 2>&1)
note "grpc-web: $(tr '\n' '|' <<<"$w")"
check "gRPC-Web binary: a data frame from the plain gRPC backend, then the trailer frame (grpc-status 0, x-trail from trailers = {...})" \
  eval 'grep -q "^{\"req\":{\"shop\":\"w1\",\"count\":2},\"method\":\"/gw.v1.Shops/GetShop\"" <<<"$w" && grep -q "^trailers: grpc-status=0; x-trail=done$" <<<"$w"'
check "gRPC-Web response headers: content-type, CORS allow-origin and expose-headers" \
  eval 'tr -d "\r" < "$T/wh" | grep -qi "^content-type: application/grpc-web+proto$" && tr -d "\r" < "$T/wh" | grep -qi "^access-control-allow-origin: http://localhost:3000$" && tr -d "\r" < "$T/wh" | grep -qi "^access-control-expose-headers: grpc-status, grpc-message"'
curl -s --max-time 5 -o "$T/wt" -H 'Content-Type: application/grpc-web-text' -H 'Accept: application/grpc-web-text' \
  --data-binary "$(base64 -w0 "$T/web.bin")" "$NG/gw.v1.Shops/Watch"
w=$(lj "$here/grpcweb.lua" decode "$V1" gw.v1.Reply text < "$T/wt" 2>&1)
note "grpc-web-text: $(tr '\n' '|' <<<"$w")"
check "gRPC-Web text, server streaming: base64 body, 2 data frames and the trailer frame" \
  eval '[ "$(grep -c "\"method\":\"/gw.v1.Shops/Watch\"" <<<"$w")" = 2 ] && grep -q "^trailers: grpc-status=0; x-trail=done$" <<<"$w"'
curl -s --max-time 5 -D "$T/wh" -o "$T/wb" -H 'Content-Type: application/grpc-web' --data-binary @"$T/webfail.bin" "$NG/gw.v1.Shops/Fail"
check "gRPC-Web error (Trailers-Only): grpc-status, grpc-message, grpc-status-details-bin in the headers" \
  eval 'tr -d "\r" < "$T/wh" | grep -q "^grpc-status: 7$" && tr -d "\r" < "$T/wh" | grep -q "^grpc-message: no way$" && tr -d "\r" < "$T/wh" | grep -q "^grpc-status-details-bin: ..*"'
lj "$here/grpcweb.lua" encode "$V1" gw.v1.Req '{"count":1,"fail_code":14,"fail_message":"went away"}' > "$T/weblate.bin"
curl -s --max-time 5 -o "$T/wb" -H 'Content-Type: application/grpc-web+proto' --data-binary @"$T/weblate.bin" "$NG/gw.v1.Shops/Watch"
w=$(lj "$here/grpcweb.lua" decode "$V1" gw.v1.Reply < "$T/wb" 2>&1)
check "gRPC-Web error after a message: the status in the trailer frame ($(tr '\n' '|' <<<"$w"))" \
  grep -q "^trailers: grpc-message=went away; grpc-status=14; x-trail=done$" <<<"$w"
curl -s --max-time 5 -D "$T/wh" -o "$T/wb" -H 'Content-Type: application/grpc-web+proto' --data-binary @"$T/web.bin" "$NG3/gw.v1.Shops/GetShop"
check "gRPC-Web, backend down: grpc-status 14 in the headers" eval 'tr -d "\r" < "$T/wh" | grep -q "^grpc-status: 14$"'
curl -s --max-time 5 -D "$T/wh" -o "$T/wb" -H 'Content-Type: application/grpc-web' -H 'Origin: http://a.example' \
  --data-binary @"$T/web.bin" "$NG2/gw.v1.Admin/Secret"
check "gRPC-Web to a service outside the allow-list: grpc-status 12 in the headers, CORS (origins = \"*\")" \
  eval 'tr -d "\r" < "$T/wh" | grep -q "^grpc-status: 12$" && tr -d "\r" < "$T/wh" | grep -qi "^access-control-allow-origin: \*$" && [ ! -s "$T/wb" ]'
get "$NG2/v1/nothing" -H 'Origin: http://a.example'
check "a JSON error the gateway answers itself carries the CORS header too ($(shown))" \
  eval '[ "$CODE" = 404 ] && grep -qi "^access-control-allow-origin: \*$" <<<"$HDRS"'
get "$NG/gw.v1.Shops/GetShop" -X OPTIONS -H 'Origin: http://localhost:3000' -H 'Access-Control-Request-Method: POST' \
  -H 'Access-Control-Request-Headers: content-type,x-grpc-web,x-user-agent'
check "CORS preflight: 204, allow-origin, allow-methods, the requested headers" \
  eval '[ "$CODE" = 204 ] && grep -qi "^access-control-allow-origin: http://localhost:3000$" <<<"$HDRS" && grep -qi "^access-control-allow-methods: .*POST" <<<"$HDRS" && grep -qi "^access-control-allow-headers: content-type,x-grpc-web,x-user-agent$" <<<"$HDRS"'
get "$NG/gw.v1.Shops/GetShop" -X OPTIONS -H 'Origin: http://evil.example' -H 'Access-Control-Request-Method: POST'
check "CORS preflight from an origin not allowed -> 403 ($(shown))" is 403 '"code":7'
get "$NG/v1/shops/c1" -H 'Origin: http://localhost:3000'
check "CORS on a JSON response: allow-origin" grep -qi "^access-control-allow-origin: http://localhost:3000$" <<<"$HDRS"

# ============================================================ live route change
stats_all() {   # the /_gw/stats line of every worker into $T/gwstats
  : > "$T/gwstats.raw"
  for _ in $(seq 40); do curl -s --max-time 2 "$NG3/_gw/stats" >> "$T/gwstats.raw"; done
  sort -u "$T/gwstats.raw" > "$T/gwstats"
}
archive() { curl -s --max-time 3 -D - -o "$T/arch" -w 'code=%{http_code}\n' -X POST -d '{"text":"a"}' "$NG/v1/shops/a1:archive" | tr -d '\r' | grep -iE '^(x-worker|code=)' | tr '\n' ' '; echo; }
a=$(archive)
check "v1: POST /v1/shops/{shop}:archive has no route yet ($a)" grep -q 'code=404' <<<"$a"
w_before=$(workers)
ctl latest=2
served=0
for _ in $(seq 60); do
  : > "$T/arch_hits"
  for _ in $(seq 20); do archive >> "$T/arch_hits"; done
  n=0
  for w in $w_before; do grep -qi "x-worker: $w code=200" "$T/arch_hits" && n=$((n + 1)); done
  if [ "$n" -eq 2 ] && ! grep -q 'code=404' "$T/arch_hits"; then served=1; break; fi
  sleep 0.2
done
check "v2 published at the registry: the new rpc + route is served by both workers" test "$served" -eq 1
check "(its reply names the new method)" grep -q '"method":"/gw.v1.Shops/Archive"' "$T/arch"
check "no reload: same master, same workers ($w_before-> $(workers))" \
  test "$w_before" = "$(workers)" -a "$MASTER" = "$NGINX_PID"
for _ in $(seq 50); do get "$NG/v1/shops/x"; done
stats_all
note "routers: $(tr '\n' '|' < "$T/gwstats")"
check "each worker built its router once per schema version (2 builds), not per request" \
  test "$(grep -c 'builds=2$' "$T/gwstats")" -eq 2

# ============================================================ registry faults
fault_ok=1
for mode in 500 hang garbage; do
  ctl "mode=$mode"
  sleep 1.5
  for _ in $(seq 10); do
    a=$(archive); grep -q 'code=200' <<<"$a" || fault_ok=0
    get "$NG/v1/shops/f"; [ "$CODE" = 200 ] || fault_ok=0
  done
done
ctl mode=ok
kill "$REG_PID" 2>/dev/null; wait "$REG_PID" 2>/dev/null; REG_PID=
sleep 1.5
for _ in $(seq 10); do a=$(archive); grep -q 'code=200' <<<"$a" || fault_ok=0; done
check "registry faults (500, hang, garbage, down): routes keep working on every request" test "$fault_ok" -eq 1

# ============================================================ load: gateway vs plain grpc_pass
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
# CPU ticks (utime + stime) of the nginx workers: what the gateway costs nginx,
# whatever the backend's speed
ticks() { local t=0 w; for w in $(workers); do t=$((t + $(awk '{print $14 + $15}' "/proc/$w/stat"))); done; echo "$t"; }
HZ=$(getconf CLK_TCK)
declare -A CPU_US
wrk_run() {   # NAME URL [script]
  local t0; t0=$(ticks)
  wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"$LOAD_SECS"s --timeout 3s --latency ${3:+-s "$3"} "$2" > "$T/wrk-$1.txt" 2>&1
  local n; n=$(awk '/requests in/ {print $1}' "$T/wrk-$1.txt")
  CPU_US[$1]=$(awk -v d="$(( $(ticks) - t0 ))" -v n="${n:-0}" -v hz="$HZ" 'BEGIN { if (n > 0) printf "%.0f", d * 1e6 / hz / n; else print "?" }')
}
wrk_fig() {   # NAME -> "R req/s, latency avg A, p99 P, non-2xx N"
  local f=$T/wrk-$1.txt
  echo "$(awk '/^Requests\/sec/ {print $2}' "$f") req/s, latency avg $(awk '/^    Latency/ {print $2}' "$f"), p99 $(awk '/^ +99%/ {print $2}' "$f"), $(awk '/requests in/ {print $1}' "$f") requests, non-2xx $(awk '/Non-2xx/ {print $NF}' "$f" | grep . || echo 0), nginx CPU ${CPU_US[$1]} us/request"
}
non2xx() { awk '/Non-2xx/ {print $NF}' "$T/wrk-$1.txt" | grep . || echo 0; }
cat > "$T/plain.wrk.lua" <<'EOF'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/grpc"
wrk.headers["TE"] = "trailers"
wrk.body = "\0\0\0\0\4\10\2" .. "42"    -- one gRPC frame: gw.v1.Req{shop = "42"}
EOF
get "$NG/plain/gw.v1.Shops/GetShop" -H 'Content-Type: application/grpc' -H 'TE: trailers' --data-binary @<(printf '\0\0\0\0\4\n\00242')
check "plain grpc_pass location answers the same call (200, $(wc -c < "$T/resp.body") bytes of gRPC)" test "$CODE" = 200
wrk_run warm "$NG/v1/shops/42"
declare -A rss0
for w in $(workers); do rss0[$w]=$(rss "$w"); done
wrk_run plain "$NG/plain/gw.v1.Shops/GetShop" "$T/plain.wrk.lua"
wrk_run gateway "$NG/v1/shops/42"
wrk_run noop "$NG/noop/gw.v1.Shops/GetShop" "$T/plain.wrk.lua"
wrk_run plain2 "$NG/plain/gw.v1.Shops/GetShop" "$T/plain.wrk.lua"
wrk_run gateway2 "$NG/v1/shops/42"
wrk_run noop2 "$NG/noop/gw.v1.Shops/GetShop" "$T/plain.wrk.lua"
note "wrk -t$WRK_THREADS -c$WRK_CONNS -d${LOAD_SECS}s, backend python3-grpcio, same call (GetShop shop=42):"
note "  plain grpc_pass  : $(wrk_fig plain)"
note "  gateway JSON GET : $(wrk_fig gateway)"
note "  empty Lua phases : $(wrk_fig noop)   (grpc_pass with access/header_filter/body_filter_by_lua doing nothing)"
note "  plain grpc_pass  : $(wrk_fig plain2)   (again, interleaved)"
note "  gateway JSON GET : $(wrk_fig gateway2)"
note "  empty Lua phases : $(wrk_fig noop2)"
for n in plain gateway noop plain2 gateway2 noop2; do
  check "load: $n made requests and 0 non-2xx ($(non2xx $n))" \
    eval '[ "$(non2xx '$n')" = 0 ] && [ "$(awk "/requests in/ {print \$1}" "$T/wrk-'$n'.txt")" -gt 500 ] && ! grep -q "Socket errors" "$T/wrk-'$n'.txt"'
done
for w in $(workers); do
  r1=$(rss "$w"); r0=${rss0[$w]:-0}
  note "worker $w VmRSS: before ${r0} kB, after ${r1} kB, growth $((r1 - r0)) kB"
  check "load: flat RSS for worker $w (growth $((r1 - r0)) kB <= ${RSS_TOLERANCE_KB} kB)" test "$((r1 - r0))" -le "$RSS_TOLERANCE_KB"
done
check "no [error]/[crit]/[alert] lines in error.log (but the backend-down ones and the raising hook's)" \
  eval '! grep -E "\[(error|crit|alert|emerg)\]" "$T/ng/error.log" | grep -v -e "connect() failed (111: Connection refused) while connecting to upstream.*127.0.0.1:'"${NG3##*:}"'" -e "on_request raised: .*hook failed on purpose" -e "access_by_lua.*unknown option .colour." -e "needs .grpc_set_header TE trailers;."'
summary
