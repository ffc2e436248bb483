/*
 * fuzz_load.c -- libFuzzer harness: arbitrary bytes loaded as a descriptor
 * set (dynpb.load). A load either fails with nil, "dynpb: load: ..." or gives
 * a schema; then every enum and (up to 40) message types are exercised:
 * enum tables against enum_values, fields(), decode of a few fixed payloads
 * and of the input's own bytes with each type, and for each success the
 * encode / decode / encode round trip (equal tables, equal bytes).
 * The pin size changes with the input, so the cache's pinning and weak
 * eviction run too.
 */
#include "fuzz_common.h"

static const char script[] =
    "local PROBES = { '', '\\8\\1', '\\8\\255\\255\\255\\255\\15', '\\10\\0', '\\18\\3abc',\n"
    "  '\\26\\2\\8\\1', '\\29\\0\\0\\128\\63', '\\33\\0\\0\\0\\0\\0\\0\\240\\63',\n"
    "  '\\11\\8\\1\\12', '\\34\\4\\10\\2\\8\\1', '\\8\\1\\16\\2\\24\\3\\32\\4\\40\\5' }\n"
    "local n = 0\n"
    "local ZERO\n"
    "local function roundtrip(h, payload)\n"
    "  local t, err = h:decode(payload)\n"
    "  if t == nil then return expect_err('dynpb: decode ' .. h.name .. ': ', t, err) end\n"
    "  local s, eerr = h:encode(t)\n"
    "  if not s then error(h.name .. ': encode of a decoded table failed: ' .. tostring(eerr)\n"
    "                      .. '\\n' .. show(t)) end\n"
    "  local t2, derr = h:decode(s)\n"
    "  if not t2 then error(h.name .. ': decode of encode output failed: ' .. tostring(derr)) end\n"
    "  if not rdeq(t, t2, ZERO) then error(h.name .. ': round trip changed the table:\\n' .. show(t)\n"
    "                               .. '\\n' .. show(t2)) end\n"
    "  if h:encode(t2) ~= s then error(h.name .. ': encode is not canonical') end\n"
    "end\n"
    "function ONE(b)\n"
    "  n = n + 1\n"
    "  if n % 97 == 0 then dynpb.configure{pin = #b % 5} end\n"
    "  local s, err = dynpb.load(b, {pin = #b % 2 == 0})\n"
    "  if s == nil then return expect_err('dynpb: load: ', s, err) end\n"
    "  if s.fingerprint ~= dynpb.fingerprint(b) then error('fingerprint mismatch') end\n"
    "  if not rawequal(dynpb.load(b), s) then error('a second load is not the same object') end\n"
    "  for _, en in ipairs(s:enums()) do\n"
    "    local C = assert(s:enum(en))\n"
    "    local vals = assert(s:enum_values('.' .. en))\n"
    "    for _, v in ipairs(vals) do\n"
    "      if C[v.name] ~= v.number then error('enum ' .. en .. ': constant ' .. v.name) end\n"
    "      if type(C[v.number]) ~= 'string' then error('enum ' .. en .. ': no name for a number') end\n"
    "    end\n"
    "    if pcall(function() C.X = 1 end) then error('enum table is writable') end\n"
    "  end\n"
    "  for _, sv in ipairs(s:services()) do\n"
    "    local x = assert(s:service(sv))\n"
    "    for _, m in ipairs(x.methods) do assert(s:method(m.path)) end\n"
    "  end\n"
    "  if type(s:files()) ~= 'table' then error('files() is not a table') end\n"
    "  ZERO = zero_names_of(s)\n"
    "  local tail = b:sub(-64)\n"
    "  for i, tn in ipairs(s:types()) do\n"
    "    if i > 40 then break end\n"
    "    local h = assert(s:message(tn))\n"
    "    if h.name ~= tn or not rawequal(h.schema, s) then error('bad handle for ' .. tn) end\n"
    "    if type(h:options()) ~= 'table' or type(h:extensions()) ~= 'table' then\n"
    "      error('bad options or extensions of ' .. tn)\n"
    "    end\n"
    "    for _, f in ipairs(h:fields()) do\n"
    "      if type(f.name) ~= 'string' or type(f.number) ~= 'number' or type(f.type) ~= 'string' then\n"
    "        error('bad field reflection in ' .. tn)\n"
    "      end\n"
    "    end\n"
    "    for _, p in ipairs(PROBES) do roundtrip(h, p) end\n"
    "    roundtrip(h, tail)\n"
    "    local e, eerr = h:encode({})\n"
    "    if not e then error(tn .. ': encode of {} failed: ' .. tostring(eerr)) end\n"
    "  end\n"
    "end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_init(script, "=fuzz_load");
    fz_run(data, size);
    return 0;
}
