/*
 * fuzz_common.h -- what the libFuzzer harnesses of dynpb share.
 *
 * Each harness owns one lua_State, created on the first input and kept for
 * the whole run (like a long-lived service). The harness logic is a Lua
 * chunk (FZ_SCRIPT in each harness) that defines a global function ONE(bytes);
 * the C side calls it once per input under lua_pcall. Any Lua error that
 * escapes ONE is a finding: dynpb must answer data errors with nil, err and
 * never raise for them, and every check the chunk makes (round trips,
 * canonical output) raises when it fails. The message and a traceback are
 * printed and the process aborts, so libFuzzer saves the input.
 *
 * The collector runs a step every 16 inputs and a full cycle every 2048, so
 * objects the harness dropped are finalized while dynpb is in use.
 *
 * Fixture descriptor sets are read from $DYNPB_FIXTURES, or the spec/fixtures
 * directory the harness was built from (DYNPB_FIXTURES_DIR).
 */
#ifndef DYNPB_FUZZ_COMMON_H
#define DYNPB_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#ifndef DYNPB_FIXTURES_DIR
#define DYNPB_FIXTURES_DIR "spec/fixtures"
#endif

int luaopen_dynpb(lua_State *L);

/* Lua helpers available to every harness chunk (globals). */
static const char fz_prelude[] =
    "dynpb = require 'dynpb'\n"
    "function readfile(name)\n"
    "  local f = assert(io.open(FIXTURES .. '/' .. name, 'rb'))\n"
    "  local s = f:read('a') f:close() return s\n"
    "end\n"
    /* deep equality; NaN equals NaN; tables compared both ways */
    "function deq(a, b, depth)\n"
    "  depth = depth or 0\n"
    "  if depth > 2000 then error('deq: too deep') end\n"
    "  if a ~= a and b ~= b then return true end\n"
    "  if type(a) ~= 'table' or type(b) ~= 'table' then\n"
    "    return a == b and math.type(a) == math.type(b)\n"
    "  end\n"
    "  for k, v in pairs(a) do if not deq(v, rawget(b, k), depth + 1) then return false end end\n"
    "  for k in pairs(b) do if rawget(a, k) == nil then return false end end\n"
    "  return true\n"
    "end\n"
    /* equality after a round trip: proto3 fields without presence that hold
       their zero value are not encoded, so a key present on one side only
       is accepted when its value is a zero (0, 0.0, false, "", "0", or an
       enum name in the set zero_names) */
    "function is_zero(v, zero_names)\n"
    /* an empty table: a repeated field left empty (decode leaves {} when all
       values of a repeated closed enum were unknown: see the report) */
    "  if type(v) == 'table' then return next(v) == nil end\n"
    "  return v == 0 and 1 / v > 0 or v == false or v == '' or v == '0'\n"
    "    or (type(v) == 'string' and zero_names[v] == true)\n"
    "end\n"
    "function rdeq(a, b, zero_names, depth)\n"
    "  depth = depth or 0\n"
    "  if depth > 2000 then error('rdeq: too deep') end\n"
    "  if a ~= a and b ~= b then return true end\n"
    "  if type(a) ~= 'table' or type(b) ~= 'table' then\n"
    "    return a == b and math.type(a) == math.type(b)\n"
    "  end\n"
    "  for k, v in pairs(a) do\n"
    "    local w = rawget(b, k)\n"
    "    if w == nil then\n"
    "      if not is_zero(v, zero_names) then return false end\n"
    "    elseif not rdeq(v, w, zero_names, depth + 1) then return false end\n"
    "  end\n"
    "  for k, w in pairs(b) do\n"
    "    if rawget(a, k) == nil and not is_zero(w, zero_names) then return false end\n"
    "  end\n"
    "  return true\n"
    "end\n"
    /* the names of enum values numbered 0 in a schema */
    "function zero_names_of(schema, into)\n"
    "  into = into or {}\n"
    "  for _, en in ipairs(schema:enums()) do\n"
    "    for _, v in ipairs(schema:enum_values(en)) do if v.number == 0 then into[v.name] = true end end\n"
    "  end\n"
    "  return into\n"
    "end\n"
    /* a short printable form of a value, for failure messages */
    "function show(v, depth)\n"
    "  depth = depth or 0\n"
    "  if type(v) == 'string' then return string.format('%q', v):sub(1, 200) end\n"
    "  if type(v) ~= 'table' then return tostring(v) end\n"
    "  if depth > 4 then return '{...}' end\n"
    "  local parts = {}\n"
    "  for k, x in pairs(v) do\n"
    "    parts[#parts + 1] = '[' .. show(k, depth + 1) .. ']=' .. show(x, depth + 1)\n"
    "    if #parts > 30 then parts[#parts + 1] = '...' break end\n"
    "  end\n"
    "  return '{' .. table.concat(parts, ', ') .. '}'\n"
    "end\n"
    /* data errors are nil + a message that names the operation */
    "function expect_err(prefix, r, err)\n"
    "  if r ~= nil then return end\n"
    "  if type(err) ~= 'string' or err:sub(1, #prefix) ~= prefix then\n"
    "    error('bad error result: ' .. tostring(err))\n"
    "  end\n"
    "end\n";

static lua_State *fz_L;
static int fz_one_ref = LUA_NOREF;
static unsigned long fz_iter;

static int fz_traceback(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
    return 1;
}

static void fz_die(lua_State *L, const char *what) {
    fprintf(stderr, "\n*** dynpb fuzz harness: %s:\n%s\n", what, lua_tostring(L, -1));
    fflush(stderr);
    abort();
}

static void fz_init(const char *script, const char *chunkname) {
    if (fz_L) return;
    lua_State *L = luaL_newstate();
    if (!L) abort();
    luaL_openlibs(L);
    luaL_requiref(L, "dynpb", luaopen_dynpb, 0);
    lua_pop(L, 1);
    const char *fx = getenv("DYNPB_FIXTURES");
    lua_pushstring(L, fx && *fx ? fx : DYNPB_FIXTURES_DIR);
    lua_setglobal(L, "FIXTURES");
    lua_pushcfunction(L, fz_traceback);
    if (luaL_loadbuffer(L, fz_prelude, sizeof fz_prelude - 1, "=fuzz_prelude") ||
        lua_pcall(L, 0, 0, -2))
        fz_die(L, "prelude failed");
    if (luaL_loadbuffer(L, script, strlen(script), chunkname) || lua_pcall(L, 0, 0, -2))
        fz_die(L, "harness chunk failed");
    lua_pop(L, 1);
    lua_getglobal(L, "ONE");
    if (!lua_isfunction(L, -1)) {
        lua_pushliteral(L, "the chunk defines no ONE function");
        fz_die(L, "setup");
    }
    fz_one_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    fz_L = L;
}

static void fz_run(const uint8_t *data, size_t size) {
    lua_State *L = fz_L;
    int top = lua_gettop(L);
    lua_pushcfunction(L, fz_traceback);
    lua_rawgeti(L, LUA_REGISTRYINDEX, fz_one_ref);
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 1, 0, top + 1)) fz_die(L, "check failed");
    lua_settop(L, top);
    fz_iter++;
    if (fz_iter % 16 == 0) lua_gc(L, LUA_GCSTEP, 0);
    if (fz_iter % 2048 == 0) lua_gc(L, LUA_GCCOLLECT, 0);
}

#endif
