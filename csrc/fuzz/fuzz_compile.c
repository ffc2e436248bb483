/*
 * fuzz_compile.c -- libFuzzer harness: arbitrary bytes compiled as a .proto
 * source by dynpb.compile (the parser, name resolution, option
 * interpretation, text-format aggregates, the emitter, source info). A compile either
 * fails with nil, "dynpb: compile: ..." or gives descriptor-set bytes, which
 * dynpb.load must then accept (a compiled set is always loadable) and a
 * second compile must reproduce exactly (a set without its imports need
 * not load). The input is compiled twice more:
 * as a file importing a fixed helper (custom options, imports), and with
 * a helper importing it.
 */
#include "fuzz_common.h"

static const char script[] =
    "local HELPER = [[syntax = 'proto2'; package h; import 'google/protobuf/descriptor.proto';\n"
    "message O { optional int32 a = 1; repeated string s = 2; optional O sub = 3; }\n"
    "extend google.protobuf.FileOptions { optional O fo = 50000; }\n"
    "extend google.protobuf.MessageOptions { optional int32 mo = 50001; }\n"
    "extend google.protobuf.FieldOptions { optional O fdo = 50002; }\n"
    "message Base { extensions 100 to max; }]]\n"
    "local function check(opts, partial)\n"
    "  local b, err = dynpb.compile(opts)\n"
    "  if b == nil then return expect_err('dynpb: compile: ', b, err) end\n"
    "  local s, lerr = dynpb.load(b)\n"
    "  if not s and not partial then\n"
    "    error('compiled set does not load: ' .. tostring(lerr))\n"
    "  end\n"
    "  if dynpb.compile(opts) ~= b then error('compile is not deterministic') end\n"
    "end\n"
    "function ONE(src)\n"
    "  check{ files = { 'f.proto' }, sources = { ['f.proto'] = src } }\n"
    "  check{ files = { 'f.proto' }, sources = { ['f.proto'] = src }, source_info = true }\n"
    "  check{ files = { 'f.proto' }, sources = { ['f.proto'] = \"import 'h.proto';\\n\" .. src, ['h.proto'] = HELPER } }\n"
    "  check({ files = { 'g.proto' }, sources = { ['f.proto'] = src,\n"
    "    ['g.proto'] = \"syntax = 'proto3'; import public 'f.proto'; message G { }\" }, include_imports = false }, true)\n"
    "end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_init(script, "=fuzz_compile");
    fz_run(data, size);
    return 0;
}
