/*
 * fuzz_text.c -- libFuzzer harness for the text format (issue 19).
 *
 * Byte 0 picks the message type and the direction; the rest is either
 *  - text for from_text: it gives bytes or nil, "dynpb: from_text ..."; when
 *    it gives bytes, to_text of them must read back to the same bytes; or
 *  - protobuf bytes for to_text: it gives text or nil, "dynpb: to_text ...";
 *    when it gives text, from_text must read it back to the canonical
 *    encoding of the same message without its unknown fields (to_text
 *    leaves them out unless print_unknown), and to_text with print_unknown,
 *    one_line and indent must not fail either.
 */
#include "fuzz_common.h"

static const char script[] =
    "local shop = assert(dynpb.load(readfile('shop.pb')))\n"
    "local legacy = assert(dynpb.load(readfile('legacy.pb')))\n"
    "local H = { assert(shop:message('shop.v1.Order')), assert(legacy:message('legacy.Record')),\n"
    "            assert(shop:message('shop.v1.Order.Line')), assert(shop:message('shop.v1.Item')) }\n"
    "function ONE(b)\n"
    "  if #b == 0 then return end\n"
    "  local sel = b:byte(1)\n"
    "  local h = H[sel % #H + 1]\n"
    "  local body = b:sub(2)\n"
    "  if (sel // #H) % 2 == 0 then\n"
    "    local s, err = h:from_text(body)\n"
    "    if s == nil then return expect_err('dynpb: from_text ' .. h.name .. ': ', s, err) end\n"
    "    local text = assert(h:to_text(s))\n"
    "    local s2, err2 = h:from_text(text)\n"
    "    if s2 ~= s then error('to_text/from_text round trip differs: ' .. tostring(err2) .. '\\n' .. text) end\n"
    "  else\n"
    "    local text, err = h:to_text(body)\n"
    "    if text == nil then return expect_err('dynpb: to_text ' .. h.name .. ': ', text, err) end\n"
    "    local s, err2 = h:from_text(text)\n"
    "    if not s then error('from_text of to_text output failed: ' .. tostring(err2) .. '\\n' .. text) end\n"
    "    local canon = assert(h:encode(assert(h:decode(body, { unknown = 'drop' }))))\n"
    "    if s ~= canon then error('from_text(to_text(b)) is not the canonical encoding\\n' .. text) end\n"
    "    assert(h:to_text(body, { print_unknown = true, one_line = true, indent = 3 }))\n"
    "  end\n"
    "end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_init(script, "=fuzz_text");
    fz_run(data, size);
    return 0;
}
