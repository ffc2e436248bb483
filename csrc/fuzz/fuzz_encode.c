/*
 * fuzz_encode.c -- libFuzzer harness: encode Lua values built from the
 * fuzzer's bytes.
 *
 * The bytes are a little program for a stack machine that builds a table:
 * scalars of every kind (integers of all sizes, NaN, infinities, -0, 2^63,
 * decimal strings, arbitrary strings, booleans), field names of the schema
 * and junk keys, nested tables, arrays, self references and cycles,
 * metatables (__index, __pairs, __len, __newindex, __gc), and integer keys.
 * The root table is encoded as one of several message types with one of
 * several option sets. Encode must give bytes or nil, "dynpb: encode ...";
 * when it gives bytes (and no raw unknown-field string was supplied, which
 * encode copies verbatim), decoding them must succeed and re-encoding the
 * result must give the same bytes.
 */
#include "fuzz_common.h"

static const char script[] =
    "local shop = assert(dynpb.load(readfile('shop.pb')))\n"
    "local legacy = assert(dynpb.load(readfile('legacy.pb')))\n"
    "local H = { assert(shop:message('shop.v1.Order')), assert(legacy:message('legacy.Record')),\n"
    "            assert(shop:message('shop.v1.Item')), assert(shop:message('shop.v1.Order.Line')) }\n"
    "local OPTS = { false, {ignore_unknown_keys = true}, {max_depth = 4}, {unknown = 'drop'} }\n"
    "local NAMES = {}\n"
    "for _, h in ipairs(H) do for _, f in ipairs(h:fields()) do NAMES[#NAMES + 1] = f.name end end\n"
    "for _, x in ipairs{ 'Extra', 'Entry', 'nope', '', ('k'):rep(300), 'caf\\195\\169', '\\255' } do\n"
    "  NAMES[#NAMES + 1] = x\n"
    "end\n"
    "local ENUMS = { 'RED', 'BLUE', 'COLOR_UNSPECIFIED', 'GOODS', 'LOW', 'MID', 'HIGH', 'PURPLE' }\n"
    "local SPECIAL = { 0/0, -(0/0), 1/0, -1/0, -0.0, 0.5, 2^31, -2^31 - 1, 2^32, 2^53, 2^53 + 1,\n"
    "  2^63, -2^63, 2^64, 1e308, 3.4e38, 3.5e38, 1e-320, math.maxinteger, math.mininteger,\n"
    "  math.mininteger + 1, -1, 4294967295, 4294967296, '9223372036854775807',\n"
    "  '-9223372036854775808', '18446744073709551615', '18446744073709551616', '-0', '0x10',\n"
    "  ' 1', '' }\n"
    "local gc_mt = { __gc = function(o)\n"
    "  -- runs inside whatever dynpb call allocates next: decode is re-entrant\n"
    "  local t = H[1]:decode('\\8\\1')\n"
    "  if not t or t.id ~= 1 then error('decode from a finalizer failed') end\n"
    "end }\n"
    "local MTS = {\n"
    "  { __index = function() return 1 end },\n"
    "  { __pairs = function() error('__pairs must not be called') end },\n"
    "  { __len = function() return 1e9 end },\n"
    "  { __newindex = function() error('__newindex must not be called') end },\n"
    "  { __index = { id = 5, name = 'x' } },\n"
    "  { __metatable = false },\n"
    "}\n"
    "function ONE(b)\n"
    "  if #b < 1 then return end\n"
    "  local pos, nb = 2, #b\n"
    "  local function byte() local c = b:byte(pos) or 0; pos = pos + 1; return c end\n"
    "  local root = {}\n"
    "  local stack, tabs = {}, { root }    -- values; tables made so far\n"
    "  local cur = root\n"
    "  local raw_unknown = false\n"
    "  local steps = 0\n"
    "  while pos <= nb and steps < 400 do\n"
    "    steps = steps + 1\n"
    "    local op = byte() % 20\n"
    "    if op == 0 then stack[#stack + 1] = byte() - 128\n"
    "    elseif op == 1 then\n"
    "      local s = b:sub(pos, pos + 7); pos = pos + 8\n"
    "      if #s == 8 then stack[#stack + 1] = string.unpack('<i8', s) end\n"
    "    elseif op == 2 then\n"
    "      local s = b:sub(pos, pos + 7); pos = pos + 8\n"
    "      if #s == 8 then stack[#stack + 1] = string.unpack('<d', s) end\n"
    "    elseif op == 3 then\n"
    "      local n = byte() % 40; stack[#stack + 1] = b:sub(pos, pos + n - 1); pos = pos + n\n"
    "    elseif op == 4 then stack[#stack + 1] = byte() % 2 == 1\n"
    "    elseif op == 5 then local t = {}; tabs[#tabs + 1] = t; stack[#stack + 1] = t\n"
    "    elseif op == 6 then stack[#stack + 1] = NAMES[byte() % #NAMES + 1]\n"
    "    elseif op == 7 then stack[#stack + 1] = SPECIAL[byte() % #SPECIAL + 1]\n"
    "    elseif op == 8 then stack[#stack + 1] = ENUMS[byte() % #ENUMS + 1]\n"
    "    elseif op == 9 or op == 10 then      -- cur[name] = value\n"
    "      local v = table.remove(stack)\n"
    "      if v ~= nil then rawset(cur, NAMES[byte() % #NAMES + 1], v) end\n"
    "    elseif op == 11 then                 -- cur[key] = value, any key\n"
    "      local v, k = table.remove(stack), table.remove(stack)\n"
    "      if v ~= nil and k ~= nil and k == k then rawset(cur, k, v) end\n"
    "    elseif op == 12 then                 -- append\n"
    "      local v = table.remove(stack)\n"
    "      if v ~= nil then rawset(cur, #cur + 1, v) end\n"
    "    elseif op == 13 then                 -- descend into a table made so far\n"
    "      cur = tabs[byte() % #tabs + 1]\n"
    "    elseif op == 14 then                 -- a reference to an earlier table (cycles)\n"
    "      stack[#stack + 1] = tabs[byte() % #tabs + 1]\n"
    "    elseif op == 15 then\n"
    "      local k = byte() % (#MTS + 1)\n"
    "      if getmetatable(cur) == nil then   -- not one with __metatable set\n"
    "        if k == #MTS then setmetatable(cur, gc_mt) else setmetatable(cur, MTS[k + 1]) end\n"
    "      end\n"
    "    elseif op == 16 then                 -- raw unknown fields\n"
    "      local n = byte() % 16; rawset(cur, dynpb.UNKNOWN, b:sub(pos, pos + n - 1)); pos = pos + n\n"
    "      raw_unknown = true\n"
    "    elseif op == 17 then                 -- a deep chain\n"
    "      local d, t = byte(), {}\n"
    "      local top = t\n"
    "      for _ = 1, d do t.parent = {}; t = t.parent end\n"
    "      stack[#stack + 1] = top\n"
    "    elseif op == 18 then                 -- an integer-keyed table with a hole\n"
    "      stack[#stack + 1] = { 1, 2, nil, 4, [byte()] = byte() }\n"
    "    else                                 -- a map-shaped table\n"
    "      stack[#stack + 1] = { [byte() - 128] = {}, k = 'v', [true] = 1 }\n"
    "    end\n"
    "  end\n"
    "  local sel = b:byte(1)\n"
    "  local h = H[sel % #H + 1]\n"
    "  local opts = OPTS[(sel // #H) % #OPTS + 1] or nil\n"
    "  local s, err = h:encode(root, opts)\n"
    "  if s == nil then return expect_err('dynpb: encode ' .. h.name .. ': ', s, err) end\n"
    "  if type(s) ~= 'string' then error('encode returned a ' .. type(s)) end\n"
    "  if raw_unknown then return end\n"
    "  local t, derr = h:decode(s)\n"
    "  if not t then error('decode of encode output failed: ' .. tostring(derr) .. ' for ' .. show(s)) end\n"
    "  local s2, eerr = h:encode(t)\n"
    "  if s2 ~= s then error('re-encode differs: ' .. show(s) .. ' vs ' .. show(s2) .. ' ' .. tostring(eerr)) end\n"
    "end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_init(script, "=fuzz_encode");
    fz_run(data, size);
    return 0;
}
