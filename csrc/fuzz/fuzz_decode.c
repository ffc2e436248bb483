/*
 * fuzz_decode.c -- libFuzzer harness: arbitrary bytes decoded as a message of
 * a rich schema (spec/fixtures/shop.pb: proto3 with maps, oneofs, nested and
 * recursive messages, 64-bit and packed fields; legacy.pb: proto2 with
 * groups, defaults, required and closed enums).
 *
 * Input: byte 0 picks the message type and the decode options, the rest is
 * the protobuf payload. A decode either fails with nil, "dynpb: decode ..."
 * or succeeds; then encode must succeed, decoding its output must give an
 * equal table, and encoding that table must give the same bytes (canonical).
 */
#include "fuzz_common.h"

static const char script[] =
    "local shop = assert(dynpb.load(readfile('shop.pb')))\n"
    "local legacy = assert(dynpb.load(readfile('legacy.pb')))\n"
    "local H = { assert(shop:message('shop.v1.Order')), assert(legacy:message('legacy.Record')),\n"
    "            assert(shop:message('shop.v1.Order.Line')), assert(shop:message('shop.v1.Item')) }\n"
    "local OPTS = { false, {int64 = 'string'}, {enums = 'number'}, {defaults = true},\n"
    "               {unknown = 'drop'}, {max_depth = 3},\n"
    "               {defaults = true, enums = 'number', int64 = 'string'}, {max_depth = 1000} }\n"
    /* a is contained in b: every key of a is in b with a contained value */
    "local function sub(a, b, d)\n"
    "  d = d or 0\n"
    "  if d > 2000 then error('sub: too deep') end\n"
    "  if type(a) ~= 'table' or type(b) ~= 'table' then return deq(a, b) end\n"
    "  for k, v in pairs(a) do if not sub(v, rawget(b, k), d + 1) then return false end end\n"
    "  return true\n"
    "end\n"
    "local ZERO = zero_names_of(legacy, zero_names_of(shop))\n"
    "local STRICT_DEFAULTS = os.getenv('FUZZ_STRICT_DEFAULTS') == '1'\n"
    "function ONE(b)\n"
    "  if #b == 0 then return end\n"
    "  local sel = b:byte(1)\n"
    "  local h = H[sel % #H + 1]\n"
    "  local opts = OPTS[(sel // #H) % #OPTS + 1] or nil\n"
    "  local body = b:sub(2)\n"
    "  local t, err = h:decode(body, opts)\n"
    "  if t == nil then return expect_err('dynpb: decode ' .. h.name .. ': ', t, err) end\n"
    "  assert(type(t) == 'table', 'decode returned a ' .. type(t))\n"
    "  -- the schema-level method agrees with the handle\n"
    "  local t3 = h.schema:decode(h.name, body, opts)\n"
    "  if not deq(t, t3) then error('schema:decode differs from handle:decode') end\n"
    "  local ropts = opts\n"
    "  if opts and opts.defaults then\n"
    "    -- defaults = true only adds keys to what a plain decode gives\n"
    "    ropts = { int64 = opts.int64, enums = opts.enums }\n"
    "    local plain = h:decode(body, ropts)\n"
    "    if not plain then error('decode fails without defaults = true only') end\n"
    "    if not sub(plain, t) then error('defaults = true changed a decoded value:\\n' .. show(plain) .. '\\n' .. show(t)) end\n"
    "    -- (a missing map value message gets no defaults: see the report)\n"
    "    if STRICT_DEFAULTS then ropts = opts else t = plain end\n"
    "  end\n"
    "  local s, eerr = h:encode(t)\n"
    "  if not s then error('encode of a decoded table failed: ' .. tostring(eerr) .. '\\n' .. show(t)) end\n"
    "  local t2, derr = h:decode(s, ropts)\n"
    "  if not t2 then error('decode of encode output failed: ' .. tostring(derr)) end\n"
    "  if not rdeq(t, t2, ZERO) then error('round trip changed the table:\\n' .. show(t) .. '\\n' .. show(t2)) end\n"
    "  local s2 = assert(h:encode(t2))\n"
    "  if s2 ~= s then error('encode is not canonical: ' .. show(s) .. ' vs ' .. show(s2)) end\n"
    "end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_init(script, "=fuzz_decode");
    fz_run(data, size);
    return 0;
}
