/*
 * allocfail.c -- every dynpb API call under an allocator that fails.
 *
 * The lua_State runs on a counting allocator. For each case (a Lua function
 * that makes one API call and returns a string summarizing the result) and
 * for N = 1, 2, 3, ...:
 *   1. prep() runs and the collector makes two full cycles (allocation on);
 *   2. the allocator is armed: the Nth allocation from now fails and, in
 *      "sticky" mode, so does every one after it until the call returns
 *      (a real out-of-memory); in "once" mode only the Nth fails (Lua 5.4
 *      then collects and retries, so this reaches dynpb's own allocations);
 *   3. call() runs under lua_pcall; the allocator is disarmed.
 *   The outcome must be a Lua error, or nil + a string (dynpb's data error
 *   form), or the expected result; a wrong result is a failure. Then, with
 *   allocation allowed again, call() must give the expected result (the
 *   state stayed usable). The loop ends at the first N whose call made
 *   fewer than N allocations (the call completed without a failure).
 * Cases marked same_allocs (encodes, to_json, from_json) must also make, in that call, as
 * many allocations as before any failure (give or take one of Lua's own
 * after an error unwound the stack): an encode that raised must have
 * released the state's encode buffer (otherwise every later encode takes a
 * per-call buffer, which costs allocations).
 * Afterwards the Lua heap must be back near its size before the case (no
 * leak through Lua), and at the end lua_close must return every byte the
 * allocator handed out (no leak outside Lua). Built with ASan+UBSan, so a
 * crash, an invalid access or a leak seen by LeakSanitizer also fails.
 *
 * Environment: DYNPB_FIXTURES (spec/fixtures), DYNPB_LUADIR (lua/, for
 * dynpb.registry), ALLOCFAIL_ONLY (run the cases whose name contains it),
 * ALLOCFAIL_MAXN (safety bound on N, default 200000).
 * Exit status 0 when every case passes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

int luaopen_dynpb(lua_State *L);

/* ---- the allocator */

typedef struct {
    size_t live;           /* bytes handed out and not freed */
    size_t peak;
    unsigned long count;   /* growing allocations since arming */
    unsigned long fail_at; /* 0 = disarmed */
    int sticky;
    unsigned long failed;  /* allocations refused since arming */
} acct;

static void *af_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    acct *a = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        a->live -= old;
        return NULL;
    }
    /* Lua assumes that shrinking never fails: only growth is refused */
    if (a->fail_at && nsize > old) {
        a->count++;
        if (a->count == a->fail_at || (a->sticky && a->count > a->fail_at)) {
            a->failed++;
            return NULL;
        }
    }
    void *p = realloc(ptr, nsize);
    if (!p) return NULL;
    a->live = a->live - old + nsize;
    if (a->live > a->peak) a->peak = a->live;
    return p;
}

static acct A;

static void arm(unsigned long n, int sticky) {
    A.count = 0;
    A.failed = 0;
    A.sticky = sticky;
    A.fail_at = n;
}

static unsigned long disarm(void) {
    A.fail_at = 0;
    return A.failed;
}

/* ---- the cases (Lua) */

static const char cases_lua[] =
    "local dynpb = require 'dynpb'\n"
    "local function read(name)\n"
    "  local f = assert(io.open(FIXTURES .. '/' .. name, 'rb'))\n"
    "  local s = f:read('a') f:close() return s\n"
    "end\n"
    "local function hex(s) return (s:gsub('.', function(c) return ('%02x'):format(c:byte()) end)) end\n"
    /* a canonical text of a value: keys sorted, so equal tables give equal text */
    "local function dump(v)\n"
    "  if type(v) == 'string' then return ('%q'):format(v) end\n"
    "  if type(v) ~= 'table' then return tostring(v) end\n"
    "  local keys = {}\n"
    "  for k in pairs(v) do keys[#keys + 1] = k end\n"
    "  table.sort(keys, function(a, b)\n"
    "    if type(a) ~= type(b) then return type(a) < type(b) end\n"
    "    if type(a) == 'boolean' then return (a and 1 or 0) < (b and 1 or 0) end\n"
    "    return a < b end)\n"
    "  local out = {}\n"
    "  for _, k in ipairs(keys) do out[#out + 1] = '[' .. dump(k) .. ']=' .. dump(v[k]) end\n"
    "  return '{' .. table.concat(out, ',') .. '}'\n"
    "end\n"
    "local SHOP, LEGACY = read('shop.pb'), read('legacy.pb')\n"
    /* variants with one more (empty) file: new fingerprints, so a load of
       them compiles even while shop/legacy are alive */
    "local function variant(set, name)\n"
    "  return set .. '\\10' .. string.char(#name + 2) .. '\\10' .. string.char(#name) .. name\n"
    "end\n"
    "local SHOP_X, SHOP_Y, SHOP_Z = variant(SHOP, 'x.proto'), variant(SHOP, 'y.proto'), variant(SHOP, 'z.proto')\n"
    "local LEGACY_X = variant(LEGACY, 'x.proto')\n"
    "PROTO_C = [[syntax = 'proto2'; package c; import 'google/protobuf/descriptor.proto';\n"
    "message Opt { optional int32 a = 1; repeated string s = 2; optional Opt sub = 3; }\n"
    "extend google.protobuf.MessageOptions { optional Opt opt = 50000; }\n"
    "message M { option (opt) = { a: 1 s: 'x' s: 'y' sub { a: 2 } }; option (opt).sub.sub.a = 3;\n"
    "  optional int32 i = 1 [default = -0x10]; optional bytes b = 2 [default = '\\001\\377'];\n"
    "  optional group G = 3 { optional double d = 1 [default = inf]; }\n"
    "  map<string, M> m = 4; oneof o { string x = 5; int64 y = 6; } extensions 100 to max; }\n"
    "extend M { repeated int32 e = 100 [packed = true]; }\n"
    "service S { rpc R(M) returns (stream M) { option deprecated = true; } }]]\n"
    "PROTO_C2 = PROTO_C .. '\\n// another fingerprint'\n"
    "local TMPFILE = os.tmpname()\n"
    "do local f = assert(io.open(TMPFILE, 'wb')) f:write(LEGACY_X) f:close() end\n"
    "function CLEANUP() os.remove(TMPFILE) end\n"
    "local S2\n"
    "local function fresh_s2()\n"
    "  dynpb.configure{ pin = 0 }; S2 = nil; collectgarbage(); collectgarbage()\n"
    "  S2 = assert(dynpb.load(SHOP_Y))\n"
    "end\n"
    "local SVC, SVC_BYTES = nil, read('services.pb')\n"
    "local function fresh_svc()\n"
    "  dynpb.configure{ pin = 0 }; SVC = nil; collectgarbage(); collectgarbage()\n"
    "  SVC = assert(dynpb.load(SVC_BYTES))\n"
    "end\n"
    "local EXT = assert(dynpb.load(read('ext.pb')))\n"
    "local shop = assert(dynpb.load(SHOP))          -- kept for the codec cases\n"
    "local legacy = assert(dynpb.load(LEGACY))\n"
    "local Order = assert(shop:message('shop.v1.Order'))\n"
    "local Record = assert(legacy:message('legacy.Record'))\n"
    "local ORDER = { id = 5, user_id = -7, user_name = 'h\\195\\169llo', token = '\\0\\1',\n"
    "  verified = true, balance = 1.5, score = 0.25, color = 'BLUE', flags = 9, delta = -3,\n"
    "  address = { street = 'x', zip = 1 }, tags = { 1, 2, 300 },\n"
    "  items = { { id = 1, name = 'a' }, { id = 2, qty = -1 } }, attrs = { b = '2', a = '1' },\n"
    "  items_by_id = { [3] = { name = 'c' }, [-1] = {} }, card = 'visa', priority = 0,\n"
    "  unpacked = { 5, 6 }, notes = { 'x', '' }, colors = { 'RED', 7 },\n"
    "  parent = { id = 1, parent = { id = 2 } }, lines = { { sku = 'k', kind = 'GOODS' } },\n"
    "  big = math.maxinteger, huge_number = 4 }\n"
    "local ORDER_BYTES = assert(Order:encode(ORDER))\n"
    "local BIG = { notes = {} }\n"
    "for i = 1, 3000 do BIG.notes[i] = ('n'):rep(i % 50) end\n"
    "local RECORD_BYTES = assert(Record:encode({ id = 1, name = 'r', extra = { a = 1 },\n"
    "  entry = { { k = 1 }, { k = 2 } }, levels = { 'LOW', 'HIGH' }, child = { id = 2 } }))\n"
    "local function fresh() dynpb.configure{ pin = 0 } end   -- prep: nothing pinned, so the\n"
    "                                                         -- load cases compile each time\n"
    "local registry_ok, registry = pcall(require, 'dynpb.registry')\n"
    "local function fake_transport(listing)\n"
    "  return { name = 'fake', now = function() return 0 end,\n"
    "    fetch = function(req)\n"
    "      if req.url:match('/versions$') then\n"
    "        return { status = 200, body = listing, headers = { etag = '\"v\"' } }\n"
    "      end\n"
    "      return { status = 200, body = SHOP_Z, headers = { ['last-modified'] = 'x' } }\n"
    "    end }\n"
    "end\n"
    "CASES = {\n"
    "  { name = 'load', prep = fresh, call = function()\n"
    "      local s, err = dynpb.load(SHOP_X)\n"
    "      if not s then return nil, err end\n"
    "      return s.fingerprint .. ' ' .. #s:types() end },\n"
    "  { name = 'load proto2', prep = fresh, call = function()\n"
    "      local s, err = dynpb.load(LEGACY_X, { pin = false })\n"
    "      if not s then return nil, err end\n"
    "      return dump(s:types()) end },\n"
    "  { name = 'load malformed', prep = fresh, call = function()\n"
    "      local s, err = dynpb.load(SHOP:sub(1, 700))\n"
    "      return 'failed: ' .. tostring(s == nil) end },\n"
    "  { name = 'load missing import', prep = fresh, call = function()\n"
    "      local s, err = dynpb.load(read('shop_noimports.pb'))\n"
    "      return tostring(s) .. ' ' .. (err and err:match('imports %b\\'\\'') or '-') end },\n"
    /* issue 14: an editions set (feature resolution), and an unknown edition */
    "  { name = 'load editions', prep = fresh, call = function()\n"
    "      local s, err = dynpb.load(read('editions/ed2024.binpb'), { pin = false })\n"
    "      if not s then return nil, err end\n"
    "      return dump(s:message('ed.v2.Msg'):fields()) end },\n"
    "  { name = 'load unknown edition', prep = fresh, call = function()\n"
    "      local s, err = dynpb.load('\\10\\22\\10\\7e.proto\\98\\8editions\\112\\234\\7')\n"
    "      return tostring(s) .. ' ' .. tostring(err) end },\n"
    "  { name = 'load_file', prep = fresh, call = function()\n"
    "      local s, err = dynpb.load_file(TMPFILE)\n"
    "      if not s then return nil, err end\n"
    "      return s.fingerprint end },\n"
    "  { name = 'fingerprint', call = function() return dynpb.fingerprint(SHOP) end },\n"
    "  { name = 'stats', call = function() local s = dynpb.stats() return tostring(s.live ~= nil) end },\n"
    "  { name = 'configure', call = function() return tostring(dynpb.configure{ pin = 3 }) end },\n"
    "  { name = 'types', call = function() return dump(shop:types()) end },\n"
    "  { name = 'enums', call = function() return dump(shop:enums()) end },\n"
    "  { name = 'enum', prep = fresh_s2,\n"
    "    call = function()\n"
    "      local C, err = S2:enum('shop.v1.Color')\n"
    "      if not C then return nil, err end\n"
    "      return C.RED .. C.BLUE .. C[1] .. tostring(C.NOPE) end },\n"
    "  { name = 'enum_values', call = function() return dump(shop:enum_values('.shop.v1.Order.Line.Kind')) end },\n"
    "  { name = 'message', prep = fresh_s2,\n"
    "    call = function()\n"
    "      local h, err = S2:message('shop.v1.Order')\n"
    "      if not h then return nil, err end\n"
    "      return h.name .. tostring(rawequal(h.schema, S2)) .. #h:fields() end },\n"
    "  { name = 'fields', call = function() return dump(Order:fields()) .. dump(Record:fields()) end },\n"
    /* issue 11: the first options/services call decodes the whole set */
    "  { name = 'services and options', prep = fresh_svc, call = function()\n"
    "      local m, err = SVC:method('/svc.v1.ShopService/CreateShops')\n"
    "      if not m then return nil, err end\n"
    "      return dump(m.options) .. dump(SVC:enum_values('svc.v1.Status')) .. #SVC:files() end },\n"
    "  { name = 'extensions', call = function()\n"
    "      local t, err = EXT:decode('ext.MSet', EXT:encode('ext.MSet', { ['[ext.MItem.item]'] = { s = 'x' } }))\n"
    "      if not t then return nil, err end\n"
    "      return dump(t) .. dump(EXT:message('ext.Base'):extensions()) end },\n"
    "  { name = 'decode', call = function()\n"
    "      local t, err = Order:decode(ORDER_BYTES)\n"
    "      if not t then return nil, err end\n"
    "      return dump(t) end },\n"
    "  { name = 'decode schema options', call = function()\n"
    "      local t, err = shop:decode('shop.v1.Order', ORDER_BYTES, { defaults = true, int64 = 'string' })\n"
    "      if not t then return nil, err end\n"
    "      return dump(t) end },\n"
    "  { name = 'decode proto2 groups', call = function()\n"
    "      local t, err = Record:decode(RECORD_BYTES, { defaults = true })\n"
    "      if not t then return nil, err end\n"
    "      return dump(t) end },\n"
    "  { name = 'decode error', call = function()\n"
    "      local t, err = Order:decode(ORDER_BYTES:sub(1, -3))\n"
    "      return tostring(t) .. ' ' .. tostring(err) end },\n"
    "  { name = 'encode', same_allocs = true, call = function()\n"
    "      local s, err = Order:encode(ORDER)\n"
    "      if not s then return nil, err end\n"
    "      return hex(s) end },\n"
    "  { name = 'encode large (buffer growth)', same_allocs = true, call = function()\n"
    "      local s, err = Order:encode(BIG)\n"
    "      if not s then return nil, err end\n"
    "      return #s .. ' ' .. hex(s:sub(-20)) end },\n"
    "  { name = 'encode error', same_allocs = true, call = function()\n"
    "      local s, err = Order:encode({ items = { { id = 1 }, { qty = 'x' } } })\n"
    "      return tostring(s) .. ' ' .. tostring(err) end },\n"
    "  { name = 'encode proto2', same_allocs = true, call = function()\n"
    "      local s, err = legacy:encode('legacy.Record', { id = 1, extra = { a = 2 }, entry = { { k = 3 } } })\n"
    "      if not s then return nil, err end\n"
    "      return hex(s) end },\n"
    /* dynpb.compile (issue 13): a proto2 file with groups, defaults, custom
       and aggregate options importing a built-in; an error; load_proto */
    "  { name = 'compile', call = function()\n"
    "      local b, err = dynpb.compile{ files = { 'c.proto' }, sources = { ['c.proto'] = PROTO_C } }\n"
    "      if not b then return nil, err end\n"
    "      return hex(b:sub(-40)) .. #b end },\n"
    "  { name = 'compile source_info', call = function()\n"
    "      local b, err = dynpb.compile{ files = { 'c.proto' }, sources = { ['c.proto'] = '// c\\n' .. PROTO_C }, source_info = true }\n"
    "      if not b then return nil, err end\n"
    "      return hex(b:sub(-40)) .. #b end },\n"
    "  { name = 'compile error', call = function()\n"
    "      local b, err = dynpb.compile{ files = { 'e.proto' }, sources = { ['e.proto'] =\n"
    "        'syntax = \"proto3\"; message M { Nope n = 1; }' } }\n"
    "      return tostring(b) .. ' ' .. tostring(err) end },\n"
    "  { name = 'load_proto', prep = fresh, call = function()\n"
    "      local s, err = dynpb.load_proto{ files = { 'c.proto' }, sources = { ['c.proto'] = PROTO_C2 } }\n"
    "      if not s then return nil, err end\n"
    "      return #s:types() .. '' end },\n"
    /* proto3 JSON (issue 12): the first call grows the state's scratch
       buffers; JSON_BIG makes them grow again */
    "  { name = 'to_json', same_allocs = true, call = function()\n"
    "      local j, err = Order:to_json(ORDER_BYTES, { indent = 2 })\n"
    "      if not j then return nil, err end\n"
    "      return j end },\n"
    "  { name = 'to_json large (buffer growth)', same_allocs = true, call = function()\n"
    "      local j, err = Order:to_json(assert(Order:encode(BIG)))\n"
    "      if not j then return nil, err end\n"
    "      return #j .. ' ' .. j:sub(-20) end },\n"
    "  { name = 'to_json error', same_allocs = true, call = function()\n"
    "      local j, err = Order:to_json(ORDER_BYTES:sub(1, -3))\n"
    "      return tostring(j) .. ' ' .. tostring(err) end },\n"
    "  { name = 'to_json proto2', same_allocs = true, call = function()\n"
    "      local j, err = Record:to_json(RECORD_BYTES, { emit_defaults = true, proto_names = true })\n"
    "      if not j then return nil, err end\n"
    "      return j end },\n"
    "  { name = 'from_json', same_allocs = true, call = function()\n"
    "      local b, err = Order:from_json(assert(Order:to_json(ORDER_BYTES)))\n"
    "      if not b then return nil, err end\n"
    "      return hex(b) end },\n"
    "  { name = 'from_json large (buffer growth)', same_allocs = true, call = function()\n"
    "      local b, err = Order:from_json(JSON_BIG)\n"
    "      if not b then return nil, err end\n"
    "      return #b .. ' ' .. hex(b:sub(-20)) end },\n"
    "  { name = 'from_json error', same_allocs = true, call = function()\n"
    "      local b, err = Order:from_json('{\"items\": [{\"id\": 1}, {\"qty\": \"x\"}]}')\n"
    "      return tostring(b) .. ' ' .. tostring(err) end },\n"
    "  { name = 'from_json schema', same_allocs = true, call = function()\n"
    "      local b, err = legacy:from_json('legacy.Record', '{\"id\": 1, \"name\": \"r\", \"zz\": [1]}',\n"
    "        { ignore_unknown_fields = true })\n"
    "      if not b then return nil, err end\n"
    "      return hex(b) end },\n"
    "}\n"
    "JSON_BIG = assert(Order:to_json(assert(Order:encode(BIG))))\n"
    "if registry_ok then\n"
    "  CASES[#CASES + 1] = { name = 'registry versions listing', call = function()\n"
    "      local v, err = registry._newest_version('{\"versions\": [1, \"7\", 3.0, 2]}')\n"
    "      return tostring(v) .. ' ' .. tostring(err) end }\n"
    "  CASES[#CASES + 1] = { name = 'registry bad listing', call = function()\n"
    "      local v, err = registry._newest_version('{\"versions\": [1, {\"a\": [true, null, \"\\\\u00e9\"]}')\n"
    "      return tostring(v) .. ' ' .. tostring(err) end }\n"
    "  CASES[#CASES + 1] = { name = 'registry retry-after', call = function()\n"
    "      return tostring(registry._retry_after_seconds('Wed, 21 Oct 2015 07:28:00 GMT', 1445412000))\n"
    "        .. ' ' .. tostring(registry._retry_after_seconds(' 120 ')) end }\n"
    "  CASES[#CASES + 1] = { name = 'registry new (versions strategy)', prep = fresh, call = function()\n"
    "      local reg, err = registry.new{ url = 'http://registry.invalid/s', strategy = 'versions',\n"
    "        transport = fake_transport('{\"versions\": [1, 2, 12]}') }\n"
    "      if not reg then return nil, err end\n"
    "      local s = reg:schema()\n"
    "      local C = reg:enum('shop.v1.Color')\n"
    "      reg:close()\n"
    "      return s.fingerprint .. ' ' .. tostring(C and C.RED) end }\n"
    "else\n"
    "  io.stderr:write('allocfail: dynpb.registry not found, registry cases skipped: ', tostring(registry), '\\n')\n"
    "end\n";

/* ---- driver */

static int traceback(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    luaL_traceback(L, L, msg ? msg : "(non-string error)", 1);
    return 1;
}

/* Runs field `fn` of case table at index ci; pushes 2 results.
   Returns the lua_pcall status. */
static int run_fn(lua_State *L, int ci, const char *fn) {
    lua_getfield(L, ci, fn);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
        lua_pushnil(L);
        return LUA_OK;
    }
    int st = lua_pcall(L, 0, 2, 0);
    if (st != LUA_OK) lua_pushnil(L);   /* error object + nil */
    return st;
}

static void full_gc(lua_State *L) {
    lua_gc(L, LUA_GCCOLLECT, 0);
    lua_gc(L, LUA_GCCOLLECT, 0);
}

static int failures;

/* Runs call and returns the number of growing allocations it made (the
   allocator counts but refuses nothing); the results are dropped. */
static unsigned long count_allocs(lua_State *L, int ci) {
    int top = lua_gettop(L);
    arm((unsigned long)-1, 0);
    run_fn(L, ci, "call");
    unsigned long n = A.count;
    disarm();
    lua_settop(L, top);
    return n;
}

static int case_flag(lua_State *L, int ci, const char *name) {
    lua_getfield(L, ci, name);
    int v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

static void report(const char *cname, unsigned long n, const char *mode, const char *what,
                   const char *detail) {
    fprintf(stderr, "allocfail: FAIL case '%s' N=%lu (%s): %s%s%s\n", cname, n, mode, what,
            detail ? ": " : "", detail ? detail : "");
    failures++;
}

/* one case, in one mode; returns the number of N tried */
static unsigned long run_case(lua_State *L, int ci, const char *cname, int sticky,
                              const char *expected, unsigned long maxn, unsigned long allocs) {
    const char *mode = sticky ? "sticky" : "once";
    unsigned long n;
    int top = lua_gettop(L);
    for (n = 1; n <= maxn; n++) {
        if (run_fn(L, ci, "prep") != LUA_OK) {
            report(cname, n, mode, "prep failed", lua_tostring(L, -2));
            lua_settop(L, top);
            return n;
        }
        lua_settop(L, top);
        full_gc(L);
        arm(n, sticky);
        int st = run_fn(L, ci, "call");
        unsigned long injected = disarm();
        if (injected == 0) {
            /* the call completed without a refused allocation: done */
            if (st != LUA_OK || !lua_isstring(L, -2) || strcmp(lua_tostring(L, -2), expected))
                report(cname, n, mode, "wrong result without allocation failures",
                       st != LUA_OK ? lua_tostring(L, -2) : lua_tostring(L, -1));
            lua_settop(L, top);
            return n;
        }
        if (st == LUA_OK) {
            if (lua_isnil(L, -2)) {
                if (!lua_isstring(L, -1)) report(cname, n, mode, "nil without a message", NULL);
            } else if (!lua_isstring(L, -2) || strcmp(lua_tostring(L, -2), expected)) {
                report(cname, n, mode, "wrong result after an allocation failure",
                       lua_tostring(L, -2));
            }
        }
        /* a raised error (any object) is an acceptable outcome */
        lua_settop(L, top);
        /* the state stays usable: the same call succeeds now */
        if (run_fn(L, ci, "prep") != LUA_OK) {
            report(cname, n, mode, "prep failed after an allocation failure", lua_tostring(L, -2));
            lua_settop(L, top);
            return n;
        }
        lua_settop(L, top);
        full_gc(L);
        if (allocs) {
            /* the recovery of the encode buffer: a call that raised left
               its leased buffer holder unreferenced (collected by the GC
               above), so the next encode may make a new holder and grow a
               new buffer, and keeps them; the one after it must cost the
               usual count again. A buffer still held busy by the failed
               call would cost at least two more on every call. */
            unsigned long k1 = count_allocs(L, ci);
            full_gc(L);
            unsigned long k = count_allocs(L, ci);
            /* Lua's own bookkeeping after an error (CallInfo blocks) may
               cost one more */
            if (k > allocs + 1) {
                char d[128];
                snprintf(d, sizeof d, "%lu then %lu allocations instead of %lu", k1, k, allocs);
                report(cname, n, mode, "the calls after the failure did not get the state's buffer back", d);
            }
            full_gc(L);
        }
        st = run_fn(L, ci, "call");
        if (st != LUA_OK || !lua_isstring(L, -2) || strcmp(lua_tostring(L, -2), expected))
            report(cname, n, mode, "the call fails once allocation works again",
                   st != LUA_OK ? lua_tostring(L, -2) : lua_tostring(L, -1));
        lua_settop(L, top);
    }
    report(cname, n, mode, "no success within ALLOCFAIL_MAXN allocations", NULL);
    return n;
}

int main(void) {
    const char *fx = getenv("DYNPB_FIXTURES");
    const char *luadir = getenv("DYNPB_LUADIR");
    const char *only = getenv("ALLOCFAIL_ONLY");
    unsigned long maxn = getenv("ALLOCFAIL_MAXN") ? strtoul(getenv("ALLOCFAIL_MAXN"), NULL, 10)
                                                  : 200000;
    lua_State *L = lua_newstate(af_alloc, &A);
    if (!L) return 2;
    luaL_openlibs(L);
    luaL_requiref(L, "dynpb", luaopen_dynpb, 0);
    lua_pop(L, 1);
    lua_pushstring(L, fx ? fx : "spec/fixtures");
    lua_setglobal(L, "FIXTURES");
    if (luadir) {
        lua_getglobal(L, "package");
        lua_pushfstring(L, "%s/?.lua;%s/?/init.lua", luadir, luadir);
        lua_setfield(L, -2, "path");
        lua_pop(L, 1);
    }
    lua_pushcfunction(L, traceback);
    if (luaL_loadbuffer(L, cases_lua, sizeof cases_lua - 1, "=allocfail_cases") ||
        lua_pcall(L, 0, 0, -2)) {
        fprintf(stderr, "allocfail: setup failed: %s\n", lua_tostring(L, -1));
        lua_close(L);
        return 2;
    }
    lua_settop(L, 0);
    lua_getglobal(L, "CASES");
    int ncases = (int)lua_rawlen(L, 1);
    unsigned long total = 0;
    for (int i = 1; i <= ncases; i++) {
        lua_rawgeti(L, 1, i);
        int ci = lua_gettop(L);
        lua_getfield(L, ci, "name");
        const char *cname = lua_tostring(L, -1);   /* anchored in the case table */
        lua_pop(L, 1);
        if (only && !strstr(cname, only)) {
            lua_settop(L, 1);
            continue;
        }
        /* the expected result, with allocation allowed */
        if (run_fn(L, ci, "prep") != LUA_OK || (lua_settop(L, ci), run_fn(L, ci, "call")) != LUA_OK ||
            !lua_isstring(L, -2)) {
            fprintf(stderr, "allocfail: case '%s' fails without allocation failures: %s %s\n",
                    cname, lua_tostring(L, -2), lua_tostring(L, -1));
            failures++;
            lua_settop(L, 1);
            continue;
        }
        lua_pushvalue(L, -2);
        lua_replace(L, ci + 1);
        lua_settop(L, ci + 1);
        const char *expected = lua_tostring(L, ci + 1);   /* anchored at ci+1 */
        full_gc(L);
        unsigned long allocs = 0;
        if (case_flag(L, ci, "same_allocs")) {
            allocs = count_allocs(L, ci);
            full_gc(L);
        }
        size_t before = A.live;
        unsigned long n1 = run_case(L, ci, cname, 1, expected, maxn, allocs);
        unsigned long n2 = run_case(L, ci, cname, 0, expected, maxn, allocs);
        if (run_fn(L, ci, "prep") != LUA_OK) failures++;
        lua_settop(L, ci + 1);
        full_gc(L);
        size_t after = A.live;
        long growth = (long)after - (long)before;
        printf("allocfail: %-36s %6lu sticky + %6lu once   heap %+ld bytes%s\n", cname, n1 - 1,
               n2 - 1, growth, allocs ? "   buffer reused after each failure" : "");
        fflush(stdout);
        /* each N repeated the call twice: a leak of even a few bytes per
           failure would add up to far more than this */
        if (growth > 16384) {
            fprintf(stderr, "allocfail: FAIL case '%s': the Lua heap grew by %ld bytes\n", cname,
                    growth);
            failures++;
        }
        total += n1 + n2 - 2;
        lua_settop(L, 1);
    }
    lua_getglobal(L, "CLEANUP");
    lua_pcall(L, 0, 0, 0);
    lua_settop(L, 0);
    lua_close(L);
    if (A.live != 0) {
        fprintf(stderr, "allocfail: FAIL: %zu bytes still allocated after lua_close\n", A.live);
        failures++;
    }
    printf("allocfail: %d cases, %lu failing calls checked, peak heap %zu bytes: %s\n", ncases,
           total, A.peak, failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
