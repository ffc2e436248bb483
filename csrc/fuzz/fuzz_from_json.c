/*
 * fuzz_from_json.c -- libFuzzer harness: arbitrary text read as proto3 JSON
 * (issue 12) for a message of spec/fixtures/json/json3.pb (jt.Person,
 * jt.Wkt with every well-known type) or codec/alltypes3.pb / alltypes2.pb.
 *
 * Input: byte 0 picks the message type and the options, the rest is the
 * JSON text. from_json either fails with nil, "dynpb: from_json ..." or
 * gives bytes that decode accepts, that encode writes the same way
 * (canonical), and that to_json prints as text from_json reads back to the
 * same bytes.
 */
#include "fuzz_common.h"

static const char script[] =
    "local j3 = assert(dynpb.load(readfile('json/json3.pb')))\n"
    "local a3 = assert(dynpb.load(readfile('codec/alltypes3.pb')))\n"
    "local a2 = assert(dynpb.load(readfile('codec/alltypes2.pb')))\n"
    "local H = { assert(j3:message('jt.Person')), assert(j3:message('jt.Wkt')),\n"
    "            assert(a3:message('reft3.TestAll')), assert(a2:message('reft2.TestAll')) }\n"
    "local OPTS = { false, {ignore_unknown_fields = true}, {max_depth = 4} }\n"
    "function ONE(b)\n"
    "  if #b == 0 then return end\n"
    "  local sel = b:byte(1)\n"
    "  local h = H[sel % #H + 1]\n"
    "  local opts = OPTS[(sel // #H) % #OPTS + 1] or nil\n"
    "  local text = b:sub(2)\n"
    "  local s, err = h:from_json(text, opts)\n"
    "  if s == nil then return expect_err('dynpb: from_json ' .. h.name .. ': ', s, err) end\n"
    "  assert(type(s) == 'string')\n"
    "  local t, derr = h:decode(s)\n"
    "  if not t then error('decode of from_json output failed: ' .. tostring(derr)) end\n"
    "  local e = assert(h:encode(t))\n"
    "  if e ~= s then error('from_json output is not what encode writes') end\n"
    "  local j, terr = h:to_json(s)\n"
    "  if not j then error('to_json of from_json output failed: ' .. tostring(terr)) end\n"
    "  local s2, ferr = h:from_json(j)\n"
    "  if not s2 then error('from_json of to_json output failed: ' .. tostring(ferr) .. '\\n' .. j) end\n"
    "  if s2 ~= s and not j:find('null', 1, true) then error('JSON round trip changed the bytes:\\n' .. j) end\n"
    "end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_init(script, "=fuzz_from_json");
    fz_run(data, size);
    return 0;
}
