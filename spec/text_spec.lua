-- Text format (issue 19): H:to_text / H:from_text and schema:to_text /
-- schema:from_text against Debian's protoc. Every case of
-- spec/fixtures/codec/cases.lua and the kitchen-sink texts:
--   * to_text(bytes, {print_unknown = true}) is byte-equal to
--     `protoc --decode=TYPE` of the same bytes (protoc prints unknown fields);
--   * from_text(that text) gives bytes that `protoc --decode` prints as the
--     same text, and equal to dynpb's canonical re-encode of protoc's bytes.
local dynpb = require "dynpb"

local DIR = T.specdir .. "/fixtures/codec/"
local PROTO = T.specdir .. "/fixtures/proto"
local U = dynpb.UNKNOWN
local tmp = os.tmpname()

local schemas = {
  ["reft2.TestAll"] = assert(dynpb.load(T.read(DIR .. "alltypes2.pb"))),
  ["reft3.TestAll"] = assert(dynpb.load(T.read(DIR .. "alltypes3.pb"))),
}
local FILES = { ["reft2.TestAll"] = "alltypes2.proto", ["reft3.TestAll"] = "alltypes3.proto" }
local cases = assert(loadfile(DIR .. "cases.lua"))(U)

local function fromhex(h)
  return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
end

local function write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

-- runs protoc with `input` on stdin; returns stdout, or nil and stderr
local function protoc(args, input)
  write(tmp .. ".in", input)
  local ok = os.execute("protoc -I" .. PROTO .. " " .. args .. " < " .. tmp .. ".in > " .. tmp
                        .. ".out 2> " .. tmp .. ".err")
  local out, err = T.read(tmp .. ".out"), T.read(tmp .. ".err")
  if ok == true or ok == 0 then return out end
  return nil, err
end

local function decode_with_protoc(type, bytes)
  return assert(protoc("--decode=" .. type .. " " .. FILES[type], bytes))
end

local function encode_with_protoc(type, text)
  return protoc("--encode=" .. type .. " " .. FILES[type], text)
end

teardown(function()
  os.remove(tmp); os.remove(tmp .. ".in"); os.remove(tmp .. ".out"); os.remove(tmp .. ".err")
end)

-- Cases where protoc 3.21 prints the wire's map entries rather than the map:
-- every entry of a duplicated key, unknown fields inside an entry, and an
-- entry whose closed-enum value is unknown kept in the map (a DynamicMessage
-- quirk; C++ generated code, upb and dynpb put that entry in the unknown
-- fields). dynpb prints the parsed map; for these, the reference is protoc's
-- --decode of the canonical bytes (the same message with the map as parsed).
local MAP_QUIRKS = {
  ["p3 map duplicate key: the last entry wins"] = true,
  ["p3 map entry: value before key, unknown fields inside"] = true,
  ["p3 singular submessages are merged"] = true,
  -- protoc reads the entries back into the map from canonical bytes too:
  -- the text dynpb prints (the entries as unknown fields 97 and 98)
  ["p2 closed enum: map entry with an unknown value goes to the unknown fields"] =
    "m_int32_color {\n  key: 6\n  value: COLOR_NEG\n}\nm_uint32_color {\n  key: 2\n  value: COLOR_BLUE\n}\n"
    .. "98 {\n  1: 1\n  2: 99\n}\n97 {\n  1: 5\n  2: 1000\n}\n",
  ["p2 map duplicate keys and missing key/value"] = true,
}

describe("text format against protoc", function()
  for _, case in ipairs(cases) do
    it(case.name, function()
      local S = schemas[case.type]
      local bytes = fromhex(case.hex)
      local want = decode_with_protoc(case.type, bytes)
      if MAP_QUIRKS[case.name] then
        local canon = assert(S:encode(case.type, assert(S:decode(case.type, bytes))))
        assert.are_not.equal(want, assert(S:to_text(case.type, bytes, { print_unknown = true })))
        want = MAP_QUIRKS[case.name] == true and decode_with_protoc(case.type, canon) or MAP_QUIRKS[case.name]
      end
      local got = assert(S:to_text(case.type, bytes, { print_unknown = true }))
      assert.are.equal(want, got)
      -- the handle form gives the same
      assert.are.equal(want, S:message(case.type):to_text(bytes, { print_unknown = true }))
      -- back: protoc reads dynpb's bytes as the same text; unknown fields
      -- by number are not text-format input, so only without them
      if not want:find("\n%s*%d+[:{ ]") and not want:find("^%d+[:{ ]") then
        local back, err = S:from_text(case.type, want)
        assert(back, err)
        assert.are.equal(want, decode_with_protoc(case.type, back))
        local canon = assert(S:encode(case.type, assert(S:decode(case.type, bytes))))
        assert.are.equal(canon, back)
      end
    end)
  end

  for _, v in ipairs({ "2", "3" }) do
    local type = "reft" .. v .. ".TestAll"
    it("kitchen sink p" .. v .. ": protoc --encode, to_text, from_text", function()
      local S = schemas[type]
      local src = T.read(DIR .. "text/p" .. v .. "_kitchen.txtpb")
      local bytes = assert(encode_with_protoc(type, src))
      local want = decode_with_protoc(type, bytes)
      assert.are.equal(want, assert(S:to_text(type, bytes)))
      -- dynpb reads protoc's input form too ([] lists, one-line messages, comments)
      local mine = assert(S:from_text(type, src))
      local canon = assert(S:encode(type, assert(S:decode(type, bytes))))
      assert.are.equal(canon, mine)
      local back = assert(S:from_text(type, want))
      assert.are.equal(canon, back)
      assert.are.equal(want, decode_with_protoc(type, back))
    end)
  end
end)

describe("to_text", function()
  local S = schemas["reft3.TestAll"]
  local H = S:message("reft3.TestAll")

  it("escapes like protoc's CEscape", function()
    local b = assert(H:encode({ s_bytes = "\0\1\n\r\t\"'\\ ~\127\128\255" }))
    assert.are.equal('s_bytes: "\\000\\001\\n\\r\\t\\"\\\'\\\\ ~\\177\\200\\377"\n', H:to_text(b))
    assert.are.equal(decode_with_protoc("reft3.TestAll", b), H:to_text(b))
  end)

  it("float and double as protoc's SimpleFtoa / SimpleDtoa", function()
    for _, x in ipairs({ 0.1, 1 / 3, 1e30, -1e-30, 123456789.125, 2 ^ 60, 5e-324, 1.5, -0.0 }) do
      local b = assert(H:encode({ s_float = x, s_double = x }))
      assert.are.equal(decode_with_protoc("reft3.TestAll", b), H:to_text(b))
    end
  end)

  it("indent and one_line", function()
    local b = assert(H:encode({ s_int32 = 1, s_sub = { a = 2 } }))
    assert.are.equal("    s_int32: 1\n    s_sub {\n      a: 2\n    }\n", H:to_text(b, { indent = 4 }))
    assert.are.equal("s_int32: 1 s_sub { a: 2 }", H:to_text(b, { one_line = true }))
    assert.are.equal("", H:to_text(""))
  end)

  it("unknown fields only with print_unknown", function()
    local b = T.pb.vint(100, 7) .. T.pb.len(106, T.pb.vint(1, 1))
    assert.are.equal("", H:to_text(b))
    assert.are.equal("100: 7\n106 {\n  1: 1\n}\n", H:to_text(b, { print_unknown = true }))
    assert.are.equal(decode_with_protoc("reft3.TestAll", b), H:to_text(b, { print_unknown = true }))
  end)

  it("bad bytes: nil, err; misuse raises", function()
    local t, err = H:to_text("\8")
    assert.is_nil(t)
    assert.matches("^dynpb: to_text reft3.TestAll: truncated", err)
    assert.has_error(function() H:to_text(3) end)
    assert.has_error(function() H:to_text("", { indent = -1 }) end)
    assert.has_error(function() H:to_text("", { bogus = 1 }) end)
    assert.has_error(function() S:to_text("no.Such", "") end)
  end)
end)

describe("from_text", function()
  local S = schemas["reft2.TestAll"]
  local H = S:message("reft2.TestAll")
  local T2 = "reft2.TestAll"

  -- rows: text accepted by both protoc and dynpb, bytes compared
  local accepted = {
    { "integers in hex and octal", "o_int32: 0x7fffffff o_int64: -0x8000000000000000 o_uint32: 017" },
    { "floats", "o_float: 1.5f o_double: -1e-3 r_double: [inf, -Infinity, NAN, 1, .5, 2.]" },
    { "bools", "o_bool: t r_bool: [true, True, 1, f, false, False, 0]" },
    { "strings, joined and escaped",
      [[o_string: "a" 'b' "\x41\101\u00fc\U0001F600\?\a\b\f\v" o_bytes: "\xff\0"]] },
    { "messages with <> and optional colon", "o_sub < a: 1 > r_sub: { a: 2 } r_sub [{a: 3}, <a: 4>]" },
    { "separators and comments", "o_int32: 1; # one\no_int64: 2, # two\n" },
    { "enums by name and number", "o_nested: NEG r_nested: [1, BAR]" },
    { "groups by type name", [[OGroup { ga: 5 } RGroup { rga: 1 } RGroup { rga: 2 rgs: "x" }]] },
    { "maps", 'm_string_string { key: "k" value: "v" } m_int32_int32 { key: 1 } m_string_sub { value { a: 1 } }' },
  }
  for _, row in ipairs(accepted) do
    it(row[1], function()
      local ref = assert(encode_with_protoc(T2, row[2]))
      local got, err = H:from_text(row[2])
      assert(got, err)
      assert.are.equal(assert(H:encode(assert(H:decode(ref)))), got)
      assert.are.equal(S:from_text(T2, row[2]), got)
    end)
  end

  -- rows: text protoc rejects too; dynpb's error (line:col and field)
  local rejected = {
    { "o_int32: 2147483648", "1:10: field 'o_int32': integer 2147483648 out of range for int32" },
    { "o_uint32: -1", "1:11: field 'o_uint32': expected a non-negative integer, got '-'" },
    { "o_int32: 1.5", "1:10: field 'o_int32': expected an integer, got '1.5'" },
    { "o_uint64: 18446744073709551616", "integer out of range" },
    { "nope: 1", "1:1: no field named 'nope' in message reft2.TestAll" },
    { "o_int32: 1\no_int32: 2", "2:10: field 'o_int32': non-repeated field 'o_int32' given twice" },
    { "o_int32 1", "1:9: field 'o_int32': expected ':' after field 'o_int32', got '1'" },
    { "o_sub { a: 1", "1:13: field 'o_sub': expected '}', got end of input" },
    { "o_sub { a: x }", "1:12: field 'o_sub.a': expected an integer, got 'x'" },
    { "r_sub { a: 1 } r_sub { a: z }", "field 'r_sub[2].a'" },
    { "o_nested: NOPE", "1:11: field 'o_nested': unknown value 'NOPE' of enum reft2.TestAll.Nested" },
    { "o_nested: 7", "field 'o_nested': 7 is not a value of enum" },
    { 'o_string: "abc', "1:11: field 'o_string': string literal not closed" },
    { 'o_string: "\\q"', "1:12: field 'o_string': invalid escape '\\q'" },
    { "o_bool: yes", "expected a bool" },
    { "o_int32: [1]", "a list '[...]' for non-repeated field 'o_int32'" },
    { "of_uint32: 1 of_string: \"x\"", "field 'of_string' given with field 'of_uint32' of the same oneof" },
    { "o_int32: 12abc", "need space between a number and 'a'" },
    { "[reft2.nope]: 1", "1:1: no extension [reft2.nope] of message reft2.TestAll" },
  }
  for _, row in ipairs(rejected) do
    it("rejects " .. row[1]:gsub("\n", "\\n"), function()
      assert.is_nil((encode_with_protoc(T2, row[1])))
      local got, err = H:from_text(row[1])
      assert.is_nil(got)
      assert.matches("dynpb: from_text reft2.TestAll: ", err, 1, true)
      assert.matches(row[2], err, 1, true)
    end)
  end

  -- protobuf v33 (the conformance suite) differs from protoc 3.21 here:
  -- a group by its lowercase field name is accepted, surrogate escapes and
  -- hex or octal floats are not
  it("v33 rules: group field names, surrogates, decimal floats", function()
    assert.are.equal(assert(H:from_text("OGroup { ga: 5 }")), assert(H:from_text("ogroup { ga: 5 }")))
    for _, row in ipairs({
      { [[o_string: "\ud801\udc37"]], "escape '\\u' of a surrogate (U+D801)" },
      { [[o_bytes: "\U0000dc37"]], "escape '\\U' of a surrogate (U+DC37)" },
      { "o_float: 0x10", "a float must be decimal, got '0x10'" },
      { "o_double: -012", "a float must be decimal, got '012'" },
    }) do
      local b, err = H:from_text(row[1])
      assert.is_nil(b)
      assert.matches(row[2], err, 1, true)
    end
    assert.are.equal(assert(H:from_text("o_float: 0")), assert(H:from_text("o_float: 0.0")))
  end)

  it("max_depth", function()
    local deep = string.rep("o_sub { rec { ", 60) .. string.rep("} } ", 60)
    local got, err = H:from_text(deep, { max_depth = 50 })
    assert.is_nil(got)
    assert.matches("nesting deeper than 50", err, 1, true)
  end)

  it("misuse raises", function()
    assert.has_error(function() H:from_text(1) end)
    assert.has_error(function() H:from_text("", { nope = true }) end)
    assert.has_error(function() S:from_text("no.Such", "") end)
  end)
end)

describe("text format: extensions, Any, MessageSet (textfmt.proto)", function()
  local set = tmp .. ".pb"
  local P = "protoc -I" .. PROTO .. " -I/usr/include "
  local made = os.execute(P .. "--include_imports --descriptor_set_out=" .. set .. " textfmt.proto")
  assert(made == true or made == 0, "protoc could not compile textfmt.proto")
  local S = assert(dynpb.load(T.read(set)))
  os.remove(set)
  local src = T.read(T.specdir .. "/fixtures/text/textfmt_top.txtpb")
  local function run(args, input)
    write(tmp .. ".in", input)
    local ok = os.execute(P .. args .. " textfmt.proto < " .. tmp .. ".in > " .. tmp .. ".out 2> " .. tmp .. ".err")
    assert(ok == true or ok == 0, T.read(tmp .. ".err"))
    return T.read(tmp .. ".out")
  end
  local bytes = run("--encode=textfmt.Top", src)
  local want = run("--decode=textfmt.Top", bytes)

  it("to_text with expand_any = false is byte-equal to protoc --decode", function()
    assert.matches("[ext.Holder.big]: -9000000000", want, 1, true)
    assert.are.equal(want, assert(S:to_text("textfmt.Top", bytes, { expand_any = false })))
  end)

  it("from_text of protoc's text and of the source (expanded Any, [..] lists) gives protoc's message", function()
    local canon = assert(S:encode("textfmt.Top", assert(S:decode("textfmt.Top", bytes))))
    assert.are.equal(canon, assert(S:from_text("textfmt.Top", want)))
    assert.are.equal(canon, assert(S:from_text("textfmt.Top", src)))
  end)

  it("Any is expanded when its type is in the schema", function()
    local text = assert(S:to_text("textfmt.Top", bytes))
    assert.matches('any {\n  [type.googleapis.com/textfmt.Inner] {\n    n: 7\n    s: "in any"\n'
                   .. '    kids {\n      n: 1\n    }\n  }\n}\n', text, 1, true)
    assert.matches('anys {\n  [type.googleapis.com/ext.Payload] {\n    text: "p"\n  }\n}\n', text, 1, true)
    -- not in the schema, or not a type.googleapis.com URL: plain fields
    assert.matches('type_url: "type.googleapis.com/not.In.Schema"', text, 1, true)
    assert.matches('type_url: "example.com/textfmt.Inner"', text, 1, true)
    -- protoc reads the expanded text back to the same message
    assert.are.equal(want, run("--decode=textfmt.Top", run("--encode=textfmt.Top", text)))
    assert.are.equal(assert(S:from_text("textfmt.Top", want)), assert(S:from_text("textfmt.Top", text)))
  end)

  it("Any errors", function()
    local b, err = S:from_text("textfmt.Top", "any { [type.googleapis.com/no.Such] { } }")
    assert.is_nil(b)
    assert.matches("1:7: field 'any': type 'no.Such' of the Any is not in the schema", err, 1, true)
    b, err = S:from_text("textfmt.Top", 'any { type_url: "x" [type.googleapis.com/textfmt.Inner] { } }')
    assert.is_nil(b)
    assert.matches("already", err, 1, true)
  end)

  it("reserved field names are read and dropped (protobuf v33, conformance)", function()
    local want = assert(S:from_text("textfmt.Inner", "n: 1"))
    for _, text in ipairs({
      "old_name: 5 n: 1", "n: 1; gone { a: 1 b { c: [1, 2] } [x.y]: 3 }", "old_name: [1, -2.5, 'x' \"y\", E]\nn: 1",
      "gone: < z: 1 >, n: 1", "old_name: -inf n: 1",
    }) do
      assert.are.equal(want, assert(S:from_text("textfmt.Inner", text)))
    end
    local b, err = S:from_text("textfmt.Inner", "old_name { n: 1 ")
    assert.is_nil(b)
    assert.matches("expected '}', got end of input", err, 1, true)
    b, err = S:from_text("textfmt.Inner", "newer: 1")
    assert.matches("no field named 'newer'", err, 1, true)
  end)

  it("MessageSet items are printed and read by type name, as protoc does", function()
    local b = assert(S:encode("ext.MSetHolder",
      { mset = { ["[ext.MItem.item]"] = { s = "x" }, ["[ext.MItem2.item2]"] = { n = 3 } } }))
    local text = assert(S:to_text("ext.MSetHolder", b))
    assert.are.equal("mset {\n  [ext.MItem] {\n    s: \"x\"\n  }\n  [ext.MItem2] {\n    n: 3\n  }\n}\n", text)
    assert.are.equal(text, run("--decode=ext.MSetHolder", b))
    assert.are.equal(b, assert(S:from_text("ext.MSetHolder", text)))
  end)
end)

describe("to_text: Any nesting stays within max_depth", function()
  it("expands as deep as max_depth allows, then prints the rest as fields", function()
    local set = os.tmpname()
    local ok = os.execute("protoc -I" .. PROTO .. " -I/usr/include --include_imports --descriptor_set_out="
                          .. set .. " textfmt.proto")
    assert(ok == true or ok == 0)
    local S = assert(dynpb.load(T.read(set)))
    os.remove(set)
    local Top = S:message("textfmt.Top")
    -- Top{any = Any(Top{any = Any(...)})}, 150 levels of Any
    local b = assert(Top:encode({}))
    for _ = 1, 150 do
      b = assert(Top:encode({ any = { type_url = "type.googleapis.com/textfmt.Top", value = b } }))
    end
    for _, depth in ipairs({ 10, 100 }) do
      local text = assert(Top:to_text(b, { max_depth = depth }))
      local expansions = select(2, text:gsub("%[type%.googleapis%.com/textfmt%.Top%]", ""))
      assert.is_true(expansions > 0 and expansions < depth, tostring(expansions))
      assert.matches('type_url: "type.googleapis.com/textfmt.Top"', text, 1, true)
    end
  end)
end)

describe("registry form", function()
  it("reg:to_text / reg:from_text use the current schema", function()
    local registry = require "dynpb.registry"
    local path = DIR .. "alltypes3.pb"
    if path:sub(1, 1) ~= "/" then path = assert(os.getenv("PWD")) .. "/" .. path end
    local reg = assert(registry.new({ url = "file://" .. path }))
    local S = schemas["reft3.TestAll"]
    local b = assert(S:encode("reft3.TestAll", { s_int32 = 5, s_string = "x" }))
    assert.are.equal('s_int32: 5\ns_string: "x"\n', reg:to_text("reft3.TestAll", b))
    assert.are.equal(b, reg:from_text("reft3.TestAll", 's_int32: 5 s_string: "x"'))
    reg:close()
  end)
end)
