/*
 * fuzz_to_json.c -- libFuzzer harness: arbitrary bytes printed as proto3 JSON
 * (issue 12) as a message of spec/fixtures/json/json3.pb (jt.Person: maps,
 * oneofs, enums, 64-bit, bytes; jt.Wkt: every well-known type, Any
 * included) or of codec/alltypes3.pb / codec/alltypes2.pb (all scalar
 * types, recursion, groups).
 *
 * Input: byte 0 picks the message type and the options, the rest is the
 * protobuf payload. to_json either fails with nil, "dynpb: to_json ..." or
 * gives text that from_json reads back, and printing those bytes again
 * gives the same text (a fixed point), compact and indented alike.
 */
#include "fuzz_common.h"

static const char script[] =
    "local j3 = assert(dynpb.load(readfile('json/json3.pb')))\n"
    "local a3 = assert(dynpb.load(readfile('codec/alltypes3.pb')))\n"
    "local a2 = assert(dynpb.load(readfile('codec/alltypes2.pb')))\n"
    "local H = { assert(j3:message('jt.Person')), assert(j3:message('jt.Wkt')),\n"
    "            assert(a3:message('reft3.TestAll')), assert(a2:message('reft2.TestAll')) }\n"
    "local OPTS = { false, {proto_names = true}, {enums = 'number'}, {emit_defaults = true},\n"
    "               {indent = 2}, {max_depth = 3}, {unresolved_any = 'raw'} }\n"
    "function ONE(b)\n"
    "  if #b == 0 then return end\n"
    "  local sel = b:byte(1)\n"
    "  local h = H[sel % #H + 1]\n"
    "  local opts = OPTS[(sel // #H) % #OPTS + 1] or nil\n"
    "  local body = b:sub(2)\n"
    "  local j, err = h:to_json(body, opts)\n"
    "  if j == nil then return expect_err('dynpb: to_json ' .. h.name .. ': ', j, err) end\n"
    "  assert(type(j) == 'string')\n"
    "  if opts and (opts.max_depth or opts.unresolved_any) then return end\n"
    "  local b2, ferr = h:from_json(j)\n"
    "  if not b2 then error('from_json of to_json output failed: ' .. tostring(ferr) .. '\\n' .. j) end\n"
    "  local j2, terr = h:to_json(b2, opts)\n"
    "  if not j2 then error('to_json of from_json output failed: ' .. tostring(terr)) end\n"
    "  if j2 ~= j then\n"
    "    -- a NullValue field prints null whatever number it holds: accept that only\n"
    "    if not j:find('null', 1, true) then error('to_json is not a fixed point:\\n' .. j .. '\\n' .. j2) end\n"
    "  end\n"
    "  local b3 = assert(h:from_json(j2))\n"
    "  if b3 ~= b2 then error('from_json is not canonical') end\n"
    "end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_init(script, "=fuzz_to_json");
    fz_run(data, size);
    return 0;
}
