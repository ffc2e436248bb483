/*
 * spec/allocs.c -- issue 6: "no per-call allocation in C beyond the Lua
 * values returned". A Lua 5.4 state with a counting allocator loads dynpb
 * and counts the blocks allocated (new blocks and growths; frees are not
 * counted) per call of each operation, with the collector stopped so that
 * nothing else allocates in between (blocks of 2n calls - blocks of n
 * calls, over n):
 *   - encode of Order (414 bytes): one block per call, the result
 *     string (the output buffer belongs to the state and is reused);
 *   - encode of Small (26 bytes, an interned short string that already
 *     exists): none;
 *   - decode of Small and Order: exactly as many as copy(), a C deep copy
 *     of the decoded table with every table presized to its final size --
 *     the least any decoder returning fresh tables allocates (every string
 *     of these messages is short and already interned).
 *
 *   allocs <dynpb cpath pattern> <bench dir>
 * Exit status 0 and "allocs: N passed, 0 failed" when every check held.
 */
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

static size_t blocks;   /* allocations counted by count_alloc (this program's only state) */

/* lua_Alloc: realloc/free, counting every new block and every growth */
static void *count_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    (void)ud;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    if (!ptr || nsize > osize) blocks++;
    return realloc(ptr, nsize);
}

/* allocs() -> the number of blocks counted so far */
static int l_allocs(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)blocks);
    return 1;
}

/* [-0, +1] pushes a copy of the table at idx (absolute), tables presized */
static void copy_table(lua_State *L, int idx) {
    int narr = (int)lua_rawlen(L, idx), nrec = 0;
    luaL_checkstack(L, 6, "copy");
    lua_pushnil(L);
    while (lua_next(L, idx)) {                     /* +2 key, value */
        lua_pop(L, 1);
        if (!(lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1 && lua_tointeger(L, -1) <= narr))
            nrec++;
    }
    lua_createtable(L, narr, nrec);                /* +1 the copy */
    int to = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, idx)) {                     /* +2 key, value */
        lua_pushvalue(L, -2);                      /* +1 key */
        if (lua_type(L, -2) == LUA_TTABLE) copy_table(L, lua_gettop(L) - 1);  /* +1 */
        else lua_pushvalue(L, -2);                 /* +1 value */
        lua_rawset(L, to);                         /* -2 */
        lua_pop(L, 1);                             /* -1 value */
    }
}

/* copy(t) -> a deep copy of t */
static int l_copy(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    copy_table(L, 1);
    return 1;
}

static const char *script =
    "local cpath, bench = ...\n"
    "package.cpath = cpath .. ';' .. package.cpath\n"
    "package.path = bench .. '/?.lua;' .. package.path\n"
    "local dynpb = require 'dynpb'\n"
    "local data = require 'bench_data'\n"
    "local function read(name)\n"
    "  local f = assert(io.open(bench .. '/fixtures/' .. name, 'rb'))\n"
    "  local s = f:read('a'); f:close(); return s\n"
    "end\n"
    "local S = assert(dynpb.load(read('bench.pb')))\n"
    "local Order, Small = S:message('bench.Order'), S:message('bench.Small')\n"
    "local obin, sbin = read('order.bin'), read('small.bin')\n"
    "local N, passed, failed = 1000, 0, 0\n"
    "-- blocks allocated per call of fn(arg), collector stopped: the count of\n"
    "-- 2N calls minus the count of N calls, so one-time growths inside Lua\n"
    "-- (its string table, call frames freed by the collection) cancel out\n"
    "local function run(fn, arg, n)\n"
    "  collectgarbage(); collectgarbage('stop')\n"
    "  local r\n"
    "  for _ = 1, 3 do r = fn(arg) end\n"
    "  local before = allocs()\n"
    "  for _ = 1, n do r = fn(arg) end\n"
    "  local got = allocs() - before\n"
    "  collectgarbage('restart')\n"
    "  assert(r ~= nil)\n"
    "  return got\n"
    "end\n"
    "local function count(fn, arg)\n"
    "  return (run(fn, arg, 2 * N) - run(fn, arg, N)) / N\n"
    "end\n"
    "local function check(name, got, want)\n"
    "  if got == want then passed = passed + 1\n"
    "  else failed = failed + 1; print(('allocs: FAIL %s: %g blocks per call, expected %g'):format(name, got, want)) end\n"
    "end\n"
    "check('encode Order: the result string only', count(function(t) return Order:encode(t) end, data.order), 1)\n"
    "check('encode Small: nothing (interned result)', count(function(t) return Small:encode(t) end, data.small), 0)\n"
    "local od, sd = assert(Order:decode(obin)), assert(Small:decode(sbin))\n"
    "check('decode Order = presized copy', count(function(b) return Order:decode(b) end, obin),\n"
    "      count(copy, od))\n"
    "check('decode Small = presized copy', count(function(b) return Small:decode(b) end, sbin),\n"
    "      count(copy, sd))\n"
    "-- the counter itself counts: copy(od) must allocate something\n"
    "check('the counter sees allocations', count(copy, od) > 0 and 1 or 0, 1)\n"
    "print(('allocs: %d passed, %d failed'):format(passed, failed))\n"
    "return failed\n";

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: allocs <dynpb cpath pattern> <bench dir>\n");
        return 2;
    }
    lua_State *L = lua_newstate(count_alloc, NULL);
    if (!L) return 2;
    luaL_openlibs(L);
    lua_pushcfunction(L, l_allocs);
    lua_setglobal(L, "allocs");
    lua_pushcfunction(L, l_copy);
    lua_setglobal(L, "copy");
    if (luaL_loadstring(L, script) != LUA_OK) goto fail;
    lua_pushstring(L, argv[1]);
    lua_pushstring(L, argv[2]);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK) goto fail;
    int failed = (int)lua_tointeger(L, -1);
    lua_close(L);
    return failed ? 1 : 0;
fail:
    fprintf(stderr, "allocs: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return 1;
}
