-- proto3 JSON (issue 12): H:to_json / H:from_json and the schema forms.
-- Data rows: each checks one rule of the mapping in one direction, or both.
-- (Python's json_format is compared on random messages in
-- json_differential_spec.lua; Google's conformance suite runs the rest.)
local dynpb = require "dynpb"
local pb = T.pb

local s3 = assert(dynpb.load(T.fixture("json/json3.pb")))
local s2 = assert(dynpb.load(T.fixture("json/json2.pb")))
local ext = assert(dynpb.load(T.fixture("ext.pb")))
local P = assert(s3:message("jt.Person"))
local W = assert(s3:message("jt.Wkt"))
local Deep = assert(s3:message("jt.Deep"))
local M2 = assert(s2:message("jt2.Msg"))

-- JSON text -> a Lua value, for comparing documents whatever their order
-- (a small strict reader for the tests; numbers as Lua numbers)
local function jparse(s)
  local i = 1
  local function ws() i = s:find("[^ \t\r\n]", i) or #s + 1 end
  local val
  local function str()
    local out = {}
    i = i + 1
    while true do
      local c = s:sub(i, i)
      if c == '"' then i = i + 1 return table.concat(out) end
      if c == "\\" then
        local e = s:sub(i + 1, i + 1)
        local map = { n = "\n", t = "\t", r = "\r", b = "\b", f = "\f", ['"'] = '"', ["\\"] = "\\", ["/"] = "/" }
        if e == "u" then
          out[#out + 1] = "\\u" .. s:sub(i + 2, i + 5)
          i = i + 6
        else
          out[#out + 1] = map[e]
          i = i + 2
        end
      else
        out[#out + 1] = c
        i = i + 1
      end
    end
  end
  function val()
    ws()
    local c = s:sub(i, i)
    if c == "{" then
      local t = {}
      i = i + 1
      ws()
      if s:sub(i, i) == "}" then i = i + 1 return t end
      repeat
        ws()
        local k = str()
        ws()
        assert(s:sub(i, i) == ":")
        i = i + 1
        t[k] = val()
        ws()
        local d = s:sub(i, i)
        i = i + 1
      until d == "}"
      return t
    elseif c == "[" then
      local t = { n = 0 }
      i = i + 1
      ws()
      if s:sub(i, i) == "]" then i = i + 1 return t end
      repeat
        t.n = t.n + 1
        t[t.n] = val()
        ws()
        local d = s:sub(i, i)
        i = i + 1
      until d == "]"
      return t
    elseif c == '"' then
      return str()
    elseif s:sub(i, i + 3) == "true" then i = i + 4 return true
    elseif s:sub(i, i + 4) == "false" then i = i + 5 return false
    elseif s:sub(i, i + 3) == "null" then i = i + 4 return "<null>"
    else
      local num = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", i)
      i = i + #num
      return tonumber(num)
    end
  end
  local v = val()
  ws()
  assert(i == #s + 1, "trailing text in " .. s)
  return v
end

local function same_json(expected, got)
  assert.same(jparse(expected), jparse(got))
end

describe("to_json", function()
  -- { name, handle, table to encode (or raw bytes), expected JSON, options }
  local rows = {
    { "empty message", P, {}, "{}" },
    { "json_name by default", P, { full_name = "Ann", home = { street_name = "x" } },
      '{"fullName":"Ann","home":{"streetName":"x"}}' },
    { "proto_names", P, { full_name = "Ann" }, '{"full_name":"Ann"}', { proto_names = true } },
    { "a json_name option", P, { custom = "c" }, '{"my_custom":"c"}' },
    { "64-bit as strings", P, { big = "-9223372036854775808", ubig = "18446744073709551615", f64 = 5 },
      '{"big":"-9223372036854775808","ubig":"18446744073709551615","f64":"5"}' },
    { "32-bit as numbers", P, { age = -2147483648, delta = -5 }, '{"age":-2147483648,"delta":-5}' },
    { "double shortest", P, { score = 0.1 }, '{"score":0.1}' },
    { "double 1/3", P, { score = 1 / 3 }, '{"score":0.3333333333333333}' },
    { "float round-trips as float", P, { ratio = 0.1 }, '{"ratio":0.1}' },
    { "float 1/3", P, { ratio = 1 / 3 }, '{"ratio":0.33333334}' },
    { "double big", P, { score = 1e300 }, '{"score":1e+300}' },
    { "subnormal", P, { score = 5e-324 }, '{"score":5e-324}' },
    { "NaN", P, { score = 0 / 0 }, '{"score":"NaN"}' },
    { "Infinity", P, { score = math.huge, ratio = -math.huge },
      '{"score":"Infinity","ratio":"-Infinity"}' },
    { "bool", P, { active = true }, '{"active":true}' },
    { "bytes base64 padded", P, { blob = "\0\1\2\255" }, '{"blob":"AAEC/w=="}' },
    { "bytes base64 one pad", P, { blob = "ab" }, '{"blob":"YWI="}' },
    { "enum names", P, { kind = "KIND_B", kinds = { "KIND_A", 1 } },
      '{"kind":"KIND_B","kinds":["KIND_A","KIND_A"]}' },
    { "unknown enum number", P, { kind = 99 }, '{"kind":99}' },
    { "enums as numbers", P, { kind = "KIND_B" }, '{"kind":2}', { enums = "number" } },
    { "string escapes", P, { full_name = "a\"b\\c\n\1\127é" },
      '{"fullName":"a\\"b\\\\c\\n\\u0001\127é"}' },
    { "repeated message", P, { others = { { zip = 1 }, {} } }, '{"others":[{"zip":1},{}]}' },
    { "map string keys sorted", P, { counts = { b = 2, a = 1 } }, '{"counts":{"a":1,"b":2}}' },
    { "map integer keys as strings", P, { by_id = { [-3] = { zip = 1 }, [7] = {} } },
      '{"byId":{"-3":{"zip":1},"7":{}}}' },
    { "map bool keys", P, { flags = { [true] = "y", [false] = "n" } },
      '{"flags":{"false":"n","true":"y"}}' },
    { "oneof", P, { office = { zip = 9 } }, '{"office":{"zip":9}}' },
    { "optional zero is printed", P, { maybe = 0 }, '{"maybe":0}' },
    { "NullValue field", P, { nothing = 0 }, "{}" },
    { "emit_defaults", P, {},
      '{"fullName":"","age":0,"others":[],"big":"0","ubig":"0","score":0,"ratio":0,"active":false,' ..
      '"blob":"","kind":"KIND_UNSET","kinds":[],"counts":{},"byId":{},"flags":{},"my_custom":"",' ..
      '"tags":[],"delta":0,"f64":"0","nothing":null}', { emit_defaults = true } },
    { "indent", P, { age = 1, tags = { "a" }, home = {} },
      '{\n  "age": 1,\n  "home": {},\n  "tags": [\n    "a"\n  ]\n}', { indent = 2 } },
    { "proto2 group and closed enum", M2, { a = 1, grp = { x = 5 }, c = "C_TWO", req = 0 },
      '{"a":1,"grp":{"x":5},"c":"C_TWO","req":0}' },
    { "proto2: only repeated without presence", M2, { req = 1 }, '{"r":[],"req":1}', { emit_defaults = true } },
    -- well-known types
    { "Timestamp", W, { ts = { seconds = 0 } }, '{"ts":"1970-01-01T00:00:00Z"}' },
    { "Timestamp millis", W, { ts = { seconds = 1, nanos = 10000000 } }, '{"ts":"1970-01-01T00:00:01.010Z"}' },
    { "Timestamp micros", W, { ts = { seconds = -1, nanos = 1000 } }, '{"ts":"1969-12-31T23:59:59.000001Z"}' },
    { "Timestamp nanos", W, { ts = { seconds = 253402300799, nanos = 999999999 } },
      '{"ts":"9999-12-31T23:59:59.999999999Z"}' },
    { "Timestamp min", W, { ts = { seconds = -62135596800 } }, '{"ts":"0001-01-01T00:00:00Z"}' },
    { "Duration", W, { dur = { seconds = 1, nanos = 500000000 } }, '{"dur":"1.500s"}' },
    { "Duration negative", W, { dur = { seconds = 0, nanos = -1000 } }, '{"dur":"-0.000001s"}' },
    { "Duration whole", W, { dur = { seconds = -315576000000 } }, '{"dur":"-315576000000s"}' },
    { "FieldMask", W, { mask = { paths = { "foo_bar", "a.b_c" } } }, '{"mask":"fooBar,a.bC"}' },
    { "Struct", W, { st = { fields = { a = { number_value = 1 }, b = { list_value = { values = {
      { string_value = "x" }, { null_value = 0 }, { bool_value = true }, { struct_value = {} } } } } } } },
      '{"st":{"a":1,"b":["x",null,true,{}]}}' },
    { "Value null", W, { val = { null_value = 0 } }, '{"val":null}' },
    { "ListValue", W, { list = { values = { { number_value = 1.5 } } } }, '{"list":[1.5]}' },
    { "Empty", W, { empty = {} }, '{"empty":{}}' },
    { "wrappers", W, { w_double = { value = 1.5 }, w_float = {}, w_int64 = { value = 3 },
      w_uint64 = { value = 4 }, w_int32 = { value = -1 }, w_uint32 = { value = 2 },
      w_bool = { value = true }, w_string = { value = "s" }, w_bytes = { value = "\1" } },
      '{"wDouble":1.5,"wFloat":0,"wInt64":"3","wUint64":"4","wInt32":-1,"wUint32":2,' ..
      '"wBool":true,"wString":"s","wBytes":"AQ=="}' },
    { "Any with a message", W, { any = { type_url = "type.googleapis.com/jt.Address",
      value = s3:encode("jt.Address", { zip = 5 }) } },
      '{"any":{"@type":"type.googleapis.com/jt.Address","zip":5}}' },
    { "Any with a WKT", W, { any = { type_url = "type.googleapis.com/google.protobuf.Duration",
      value = s3:encode("google.protobuf.Duration", { seconds = 2 }) } },
      '{"any":{"@type":"type.googleapis.com/google.protobuf.Duration","value":"2s"}}' },
    { "Any in Any", W, { any = { type_url = "x/google.protobuf.Any", value = s3:encode("google.protobuf.Any",
      { type_url = "x/jt.Address", value = s3:encode("jt.Address", { zip = 1 }) }) } },
      '{"any":{"@type":"x/google.protobuf.Any","value":{"@type":"x/jt.Address","zip":1}}}' },
    { "unresolved Any raw", W, { any = { type_url = "x/no.Such", value = "\8\1" } },
      '{"any":{"@type":"x/no.Such","@value":"CAE="}}', { unresolved_any = "raw" } },
    -- extensions
    { "extensions as [full.name]", ext:message("ext.Base"), { id = 1, ["[ext.num]"] = 5,
      ["[ext.Holder.big]"] = "-7", ["[ext.payload]"] = { text = "t" } },
      '{"id":1,"[ext.num]":5,"[ext.payload]":{"text":"t"},"[ext.Holder.big]":"-7"}' },
  }
  for _, r in ipairs(rows) do
    it(r[1], function()
      local H = r[2]
      local bytes = type(r[3]) == "string" and r[3] or assert(H:encode(r[3]))
      local j, err = H:to_json(bytes, r[5])
      assert.is_nil(err)
      if r[5] and r[5].indent then assert.equal(r[4], j) else same_json(r[4], j) end
      -- compact output has no whitespace outside strings
      if not (r[5] and r[5].indent) then assert.equal(r[4]:gsub("%s", ""), j:gsub("%s", "")) end
    end)
  end

  it("prints a double or float as the shortest %.15g..%.17g (%.6g..%.9g) text that reads back", function()
    -- the reference: fmt_real's search in Lua (string.format is C's printf;
    -- LuaJIT has a printf of its own, rounding ties otherwise: there only
    -- the reading back is checked); to_json skips printf for decimals of
    -- few digits: it must agree everywhere
    local R = assert(dynpb.load_proto { files = { "r.proto" }, sources = { ["r.proto"] =
      'syntax = "proto3"; message R { double d = 1; float f = 2; }' } }):message("R")
    local function want(x, single)
      if x == 0 then return 1 / x < 0 and "-0.0" or "0" end
      local lo, hi = single and 6 or 15, single and 9 or 17
      if not single and math.abs(x) < 2.2250738585072014e-308 then lo = 1 end
      local txt
      for p = lo, hi do
        txt = ("%." .. p .. "g"):format(x)
        local r = tonumber(txt)
        if single then
          if R:encode({ f = r }) == R:encode({ f = x }) then break end
        elseif r == x then break end
      end
      return txt
    end
    local seed = 12345
    local function rnd(n)                          -- deterministic, any Lua
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed % n
    end
    local xs = { 1e-4, 1e-4 * (1 - 2^-52), 0.00012, 1e15, 1e15 - 1, 1e15 - 0.5, 999999999999999.9,
                 1e6, 999999.5, 999999, 0.1, 0.3, 0.1 + 0.2, 1 / 3, 2 ^ 53, 2 ^ 52 + 0.5, 5e-324, 1e300,
                 123456.789, 100, 12.5, -2.5, 1.7976931348623157e308 }
    for _ = 1, 3000 do                             -- decimals of 1 to 17 digits, scaled
      local m, k = rnd(10 ^ (1 + rnd(9))) + rnd(10 ^ rnd(8)) * 10 ^ 9, rnd(24) - 4
      xs[#xs + 1] = m / 10 ^ k
      xs[#xs + 1] = -(m + 0.5) / 10 ^ rnd(12)
    end
    for _ = 1, 2000 do                             -- doubles from random bits
      local v = (rnd(2 ^ 26) * 2 ^ 26 + rnd(2 ^ 26)) / 2 ^ 52 + 1
      xs[#xs + 1] = v * 2 ^ (rnd(120) - 60)
    end
    for _, x in ipairs(xs) do
      local d = R:to_json(assert(R:encode({ d = x })))
      local e = x == 0 and "0" or jit and tostring(tonumber(d:match('^{"d":(.*)}$')) == x) or want(x, false)
      if d ~= '{"d":' .. e .. "}" and e ~= "true" and not (x == 0 and d == "{}") then
        error(("double %.17g: %s, want %s"):format(x, d, e))
      end
      local fb = math.abs(x) < 3.4e38 and R:encode({ f = x })
      local fx = fb and assert(R:decode(fb)).f or 0                      -- x rounded to float
      if fx == fx and math.abs(fx) < math.huge and fx ~= 0 then
        local f = R:to_json(assert(R:encode({ f = fx })))
        local ef = jit and tostring(R:encode({ f = tonumber(f:match('^{"f":(.*)}$')) }) == R:encode({ f = fx }))
          or want(fx, true)
        if f ~= '{"f":' .. ef .. "}" and ef ~= "true" then
          error(("float %.9g: %s, want %s"):format(fx, f, ef))
        end
      end
    end
  end)

  it("prints fields in field-number order whatever the byte order", function()
    local b = pb.vint(2, 7) .. pb.len(1, "a")
    assert.equal('{"fullName":"a","age":7}', P:to_json(b))
  end)

  it("follows the wire's semantics: last value wins, messages merge, packed and unpacked mix", function()
    local b = pb.vint(2, 1) .. pb.vint(2, 2) .. pb.len(3, pb.len(1, "s")) .. pb.len(3, pb.vint(2, 9)) ..
      pb.len(12, "\1\2") .. pb.vint(12, 1)
    assert.equal('{"age":2,"home":{"streetName":"s","zip":9},"kinds":["KIND_A","KIND_B","KIND_A"]}',
      P:to_json(b))
  end)

  it("the last member of a oneof wins", function()
    local b = pb.len(17, "e") .. pb.vint(18, 5)
    assert.equal('{"phone":5}', P:to_json(b))
    assert.equal('{"email":"e"}', P:to_json(pb.vint(18, 5) .. pb.len(17, "e")))
  end)

  it("the last map entry of a key wins", function()
    local e1 = pb.len(1, "k") .. pb.vint(2, 1)
    local e2 = pb.len(1, "k") .. pb.vint(2, 2)
    assert.equal('{"counts":{"k":2}}', P:to_json(pb.len(13, e1) .. pb.len(13, e2)))
    assert.equal('{"counts":{"":0}}', P:to_json(pb.len(13, "")))
  end)

  it("a field without presence holding its zero on the wire is unset", function()
    assert.equal("{}", P:to_json(pb.vint(2, 0) .. pb.len(1, "") .. pb.tag(23, 1) .. ("\0"):rep(8)))
    assert.equal('{"maybe":0}', P:to_json(pb.vint(20, 0)))   -- explicit presence: printed
    assert.equal("{}", P:to_json(pb.len(12, "")))           -- an empty packed block
    assert.equal('{"kinds":[]}', P:to_json(pb.len(12, ""), { emit_defaults = true }):match('"kinds":%[%]') and
      '{"kinds":[]}')
  end)

  it("a closed enum's unknown numbers are unknown fields: not printed", function()
    local Rec = assert(dynpb.load(T.fixture("codec/alltypes2.pb"))):message("reft2.TestAll")
    local f = nil
    for _, x in ipairs(Rec:fields()) do if x.type == "enum" and x.label == "optional" then f = x break end end
    local r = nil
    for _, x in ipairs(Rec:fields()) do if x.type == "enum" and x.label == "repeated" then r = x break end end
    assert.equal("{}", Rec:to_json(pb.vint(f.number, 77)))
    assert.equal("{}", Rec:to_json(pb.vint(r.number, 77)))
    local j = Rec:to_json(pb.vint(r.number, 77) .. pb.vint(r.number, 1))
    assert.truthy(j:find("%[\"[%w_]+\"%]"), j)
  end)

  it("does not print unknown fields", function()
    assert.equal('{"age":1}', P:to_json(pb.vint(2, 1) .. pb.vint(900, 3)))
  end)

  it("is the same through the schema", function()
    local b = P:encode({ age = 3 })
    assert.equal(P:to_json(b), s3:to_json("jt.Person", b))
    assert.equal(P:to_json(b), s3:to_json(".jt.Person", b))
  end)

  -- { name, handle, bytes, error pattern, options }
  local bad = {
    { "truncated bytes", P, "\10\5ab", "^dynpb: to_json jt.Person: .* at byte 0$" },
    { "invalid UTF-8", P, pb.len(1, "\255"), "field 'full_name': invalid UTF%-8 in string at byte 2" },
    { "wrong wire type", P, pb.vint(1, 1), "wire type" },
    { "Timestamp out of range", W, pb.len(2, pb.vint(1, 253402300800)), "field 'ts': Timestamp seconds 253402300800 out of range" },
    { "Timestamp nanos", W, pb.len(2, pb.vint(2, 1000000000)), "Timestamp nanos 1000000000 out of range" },
    { "Duration out of range", W, pb.len(3, pb.vint(1, 315576000001)), "Duration seconds 315576000001 out of range" },
    { "Duration sign", W, pb.len(3, pb.vint(1, 1) .. pb.tag(2, 0) .. "\255\255\255\255\255\255\255\255\255\1"),
      "wrong sign" },
    { "FieldMask upper case", W, pb.len(4, pb.len(1, "fooBar")), "upper%-case" },
    { "Value NaN", W, pb.len(6, pb.tag(2, 1) .. "\0\0\0\0\0\0\248\127"), "NaN or Infinity" },
    { "unresolved Any", W, pb.len(1, pb.len(1, "x/no.Such")), "type 'x/no.Such' of an Any is not in the schema" },
    { "Any without a type", W, pb.len(1, pb.len(2, "x")), "Any without a type URL" },
    { "JSON name clash", s2:message("jt2.Clash"), "",
      "fields 'foo_bar' and 'fooBar' of jt2.Clash have the same JSON name 'fooBar'" },
    { "max_depth", Deep, pb.len(1, pb.len(1, pb.len(1, ""))), "nesting deeper than max_depth %(2%)", { max_depth = 2 } },
  }
  for _, r in ipairs(bad) do
    it("fails: " .. r[1], function()
      local j, err = r[2]:to_json(r[3], r[5])
      assert.is_nil(j)
      assert.matches(r[4], err)
    end)
  end

  it("proto_names avoids a JSON name clash", function()
    assert.equal('{"foo_bar":1}', s2:to_json("jt2.Clash", pb.vint(1, 1), { proto_names = true }))
  end)

  it("raises on misuse", function()
    assert.has_error(function() P:to_json({}) end, "dynpb: to_json jt.Person: bytes expected, got table")
    assert.has_error(function() P:to_json("", { bogus = 1 }) end, "dynpb: to_json: unknown option 'bogus'")
    assert.has_error(function() P:to_json("", { ignore_unknown_fields = true }) end,
      "dynpb: to_json: unknown option 'ignore_unknown_fields'")
    assert.has_error(function() P:to_json("", { indent = -1 }) end)
    assert.has_error(function() P:to_json("", { enums = "names" }) end)
    assert.has_error(function() P:to_json("", { unresolved_any = "skip" }) end)
    assert.has_error(function() P:to_json("", { emit_defaults = 1 }) end)
    assert.has_error(function() s3:to_json("no.Such", "") end)
    assert.has_error(function() P.to_json({}, "") end)
  end)

  it("handles deep nesting up to max_depth (default 100)", function()
    local b = ""
    for _ = 1, 99 do b = pb.len(1, b) end
    assert.truthy(Deep:to_json(b))
    local _, err = Deep:to_json(pb.len(1, b))
    assert.matches("max_depth %(100%)", err)
  end)
end)

describe("from_json", function()
  local function enc(H, t) return assert(H:encode(t)) end
  -- { name, handle, JSON, expected table (as encode takes it), options }
  local rows = {
    { "empty", P, "{}", {} },
    { "json and proto names", P, '{"fullName":"a","home":{"street_name":"s"}}', nil },
    { "both names accepted", P, '{"full_name":"a","home":{"streetName":"s","zip":1}}',
      { full_name = "a", home = { street_name = "s", zip = 1 } } },
    { "json_name option", P, '{"my_custom":"c"}', { custom = "c" } },
    { "whitespace", P, ' \t\r\n{ "age" : 1 }\n', { age = 1 } },
    { "integers from strings and exponents", P, '{"age":"12","big":"-9223372036854775808","ubig":1e3,"delta":1.0}',
      { age = 12, big = "-9223372036854775808", ubig = 1000, delta = 1 } },
    { "uint64 max", P, '{"ubig":"18446744073709551615"}', { ubig = "18446744073709551615" } },
    { "floats from strings", P, '{"score":"1.5","ratio":"-Infinity"}', { score = 1.5, ratio = -math.huge } },
    { "NaN", P, '{"score":"NaN"}', { score = 0 / 0 } },
    { "bytes std, url-safe, unpadded", P, '{"blob":"-_8"}', { blob = "\251\255" } },
    { "bytes padded", P, '{"blob":"+/8="}', { blob = "\251\255" } },
    { "enum name and number", P, '{"kind":"KIND_B","kinds":[1,"KIND_B",5]}', { kind = 2, kinds = { 1, 2, 5 } } },
    { "null is absent", P, '{"age":null,"home":null,"tags":null,"counts":null}', {} },
    { "NullValue", P, '{"nothing":null}', {} },
    { "string escapes", P, '{"fullName":"\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00"}',
      { full_name = "\"\\/\b\f\n\r\t\195\169\240\159\152\128" } },
    { "maps sorted by key", P, '{"counts":{"b":2,"a":1},"byId":{"10":{},"-2":{"zip":1}},"flags":{"true":"t"}}',
      { counts = { a = 1, b = 2 }, by_id = { [10] = {}, [-2] = { zip = 1 } }, flags = { [true] = "t" } } },
    { "map entries longer than 127 bytes, out of order", P,
      '{"byId":{"9":{"streetName":"' .. ("s"):rep(200) .. '"},"1":{}},"counts":{"z":1,"' .. ("k"):rep(150) .. '":2}}',
      { by_id = { [9] = { street_name = ("s"):rep(200) }, [1] = {} }, counts = { z = 1, [("k"):rep(150)] = 2 } } },
    { "fields in number order", P, '{"tags":["x"],"age":3,"fullName":"n"}', { tags = { "x" }, age = 3, full_name = "n" } },
    { "proto3 zeros omitted", P, '{"age":0,"fullName":"","active":false,"kind":"KIND_UNSET"}', {} },
    { "optional zero kept", P, '{"maybe":0}', { maybe = 0 } },
    { "oneof zero kept", P, '{"phone":0}', { phone = 0 } },
    { "oneof null then member", P, '{"email":null,"phone":1}', { phone = 1 } },
    { "proto2", M2, '{"a":1,"grp":{"x":2},"r":[1,2],"c":"C_ONE","req":0}',
      { a = 1, grp = { x = 2 }, r = { 1, 2 }, c = 1, req = 0 } },
    { "ignore_unknown_fields", P, '{"nope":{"a":[1,{"b":null}]},"age":1,"kind":"NOPE","kinds":["NOPE","KIND_A"],"counts":{"a":1}}',
      { age = 1, kinds = { 1 }, counts = { a = 1 } }, { ignore_unknown_fields = true } },
    { "Timestamp", W, '{"ts":"1970-01-01T00:00:01.5Z"}', { ts = { seconds = 1, nanos = 500000000 } } },
    { "Timestamp offset", W, '{"ts":"1970-01-01T01:00:00+01:00"}', { ts = {} } },
    { "Timestamp negative", W, '{"ts":"1969-12-31T23:59:59.999999999Z"}', { ts = { seconds = -1, nanos = 999999999 } } },
    { "Duration", W, '{"dur":"-1.5s"}', { dur = { seconds = -1, nanos = -500000000 } } },
    { "Duration fraction only", W, '{"dur":"0.000000001s"}', { dur = { nanos = 1 } } },
    { "FieldMask", W, '{"mask":"fooBar,a.bC"}', { mask = { paths = { "foo_bar", "a.b_c" } } } },
    { "FieldMask empty", W, '{"mask":""}', { mask = {} } },
    { "FieldMask empty paths", W, '{"mask":",a,"}', { mask = { paths = { "", "a", "" } } } },
    { "Struct", W, '{"st":{"a":1,"b":[null,"x",true,{}]}}',
      { st = { fields = { a = { number_value = 1 }, b = { list_value = { values = {
        { null_value = 0 }, { string_value = "x" }, { bool_value = true }, { struct_value = {} } } } } } } } },
    { "Value null", W, '{"val":null}', { val = { null_value = 0 } } },
    { "repeated Value null", W, '{"vals":[null,0]}', { vals = { { null_value = 0 }, { number_value = 0 } } } },
    { "map of Value null", W, '{"vmap":{"k":null}}', { vmap = { k = { null_value = 0 } } } },
    { "wrappers", W, '{"wDouble":0,"wInt64":"5","wBool":true,"wString":"s","wBytes":"AQ==","wList":[1,0]}',
      { w_double = {}, w_int64 = { value = 5 }, w_bool = { value = true }, w_string = { value = "s" },
        w_bytes = { value = "\1" }, w_list = { { value = 1 }, {} } } },
    { "wrapper null is absent", W, '{"wInt32":null}', {} },
    { "Empty", W, '{"empty":{}}', { empty = {} } },
    { "Any", W, '{"any":{"zip":5,"@type":"type.googleapis.com/jt.Address"}}',
      { any = { type_url = "type.googleapis.com/jt.Address", value = s3:encode("jt.Address", { zip = 5 }) } } },
    { "Any of a WKT", W, '{"any":{"@type":"t/google.protobuf.Timestamp","value":"1970-01-01T00:00:02Z"}}',
      { any = { type_url = "t/google.protobuf.Timestamp", value = s3:encode("google.protobuf.Timestamp", { seconds = 2 }) } } },
    { "Any empty", W, '{"any":{}}', { any = {} } },
    { "extensions", ext:message("ext.Base"), '{"[ext.num]":5,"id":1,"[ext.Holder.big]":"-7"}',
      { id = 1, ["[ext.num]"] = 5, ["[ext.Holder.big]"] = -7 } },
  }
  for _, r in ipairs(rows) do
    it(r[1], function()
      local b, err = r[2]:from_json(r[3], r[5])
      if r[4] == nil then   -- the row only checks that it parses
        assert.is_nil(err)
        return
      end
      assert.is_nil(err)
      assert.equal(enc(r[2], r[4]), b)
    end)
  end

  -- { name, JSON, error (plain substring), handle }
  local bad = {
    { "the issue's example", '{"home": {"zip": 1.5}}',
      "dynpb: from_json jt.Person: field 'home.zip': 1.5 is not an integer at byte 17" },
    { "not an object", "[]", "expected an object for jt.Person, got array at byte 0" },
    { "trailing garbage", '{} {}', "trailing characters after the JSON value at byte 3" },
    { "trailing comma", '{"age":1,}', "expected a member name, got '}'" },
    { "comment", '{/* x */}', "a comment" },
    { "single quotes", "{'age':1}", "expected a member name" },
    { "unknown field", '{"nope":1}', "no field named 'nope' in jt.Person at byte 1" },
    { "field twice", '{"age":1,"age":2}', "field 'age' appears twice at byte 9" },
    { "field twice, two names", '{"fullName":"a","full_name":"b"}', "field 'full_name' appears twice" },
    { "oneof twice", '{"email":"a","phone":1}', "a second member of oneof 'contact' ('phone')" },
    { "int out of range", '{"age":2147483648}', "field 'age': 2147483648 is out of range for int32" },
    { "uint negative", '{"ubig":"-1"}', "-1 is out of range for uint64" },
    { "int64 too big", '{"big":"9223372036854775808"}', "out of range for int64" },
    { "fraction", '{"big":"1.5"}', "1.5 is not an integer" },
    { "leading zero", '{"age":01}', "leading zero" },
    { "plus sign", '{"age":+1}', "expected an integer" },
    { "int from bool", '{"age":true}', "expected an integer, got boolean" },
    { "string with spaces", '{"age":" 1"}', "string ' 1' is not an integer" },
    { "float out of range", '{"ratio":1e39}', "1e39 is out of range for float" },
    { "double out of range", '{"score":1e400}', "is out of range for double" },
    { "bad float string", '{"score":"nan"}', "string 'nan' is not a number" },
    { "bad base64", '{"blob":"a*=="}', "invalid base64" },
    { "bad base64 length", '{"blob":"abcde"}', "invalid base64 (length)" },
    { "unknown enum", '{"kind":"NOPE"}', "unknown value 'NOPE' for enum jt.Kind" },
    { "bool from string", '{"active":"true"}', "expected a boolean, got string" },
    { "string from number", '{"fullName":1}', "expected a string, got number" },
    { "invalid UTF-8", '{"fullName":"\255"}', "invalid UTF-8 in string" },
    { "unpaired high surrogate", '{"fullName":"\\ud800x"}', "unpaired surrogate" },
    { "unpaired low surrogate", '{"fullName":"\\udc00"}', "unpaired surrogate" },
    { "bad escape", '{"fullName":"\\x"}', "invalid escape '\\x'" },
    { "control character", '{"fullName":"a\nb"}', "control character in string" },
    { "unterminated string", '{"fullName":"ab', "unterminated string" },
    { "truncated", '{"age":1', "expected '}', got end of input" },
    { "bad literal", '{"active":tru}', "invalid JSON literal" },
    { "null in array", '{"tags":["a",null]}', "field 'tags[2]': null is not allowed in a repeated field" },
    { "array expected", '{"tags":"a"}', "expected '[', got string" },
    { "map value null", '{"counts":{"a":null}}', "field 'counts[\"a\"]': a map value cannot be null" },
    { "map key not an integer", '{"byId":{"x":{}}}', "map key 'x' is not an integer" },
    { "map key twice", '{"counts":{"b":1,"a":1,"b":2}}', "a map key appears twice" },
    { "map bool key", '{"flags":{"yes":"y"}}', "map key 'yes' is not a boolean" },
    { "path through repeated", '{"others":[{},{"zip":"x"}]}', "field 'others[2].zip': string 'x' is not an integer" },
    { "closed enum unknown number", '{"c":7,"req":1}', "unknown value 7 for closed enum jt2.Closed", M2 },
    { "Timestamp bad", '{"ts":"1970-01-01 00:00:00Z"}', "is not an RFC 3339 timestamp", W },
    { "Timestamp lowercase z", '{"ts":"1970-01-01T00:00:00z"}', "is not an RFC 3339 timestamp", W },
    { "Timestamp 10 digits", '{"ts":"1970-01-01T00:00:00.0000000001Z"}', "is not an RFC 3339 timestamp", W },
    { "Timestamp Feb 30", '{"ts":"1970-02-30T00:00:00Z"}', "is not an RFC 3339 timestamp", W },
    { "Timestamp year 10000", '{"ts":"9999-12-31T23:59:59-01:00"}', "Timestamp out of range", W },
    { "Duration bad", '{"dur":"1.5"}', "is not a Duration", W },
    { "Duration range", '{"dur":"315576000001s"}', "Duration out of range", W },
    { "FieldMask underscore", '{"mask":"foo_bar"}', "contains '_'", W },
    { "Any without @type", '{"any":{"zip":1}}', "an Any needs \"@type\"", W },
    { "Any unknown type", '{"any":{"@type":"x/no.Such"}}', "type 'no.Such' of an Any is not in the schema", W },
    { "Any WKT extra member", '{"any":{"@type":"x/google.protobuf.Duration","value":"1s","x":1}}',
      "holds only \"@type\" and \"value\"", W },
    { "Value NaN literal", '{"val":NaN}', "expected a number", W },
    { "JSON name clash", '{}', "fields 'foo_bar' and 'fooBar' of jt2.Clash have the same JSON name",
      s2:message("jt2.Clash") },
    { "max_depth", '{"next":{"next":{"next":{}}}}', "nesting deeper than max_depth (3)", Deep, { max_depth = 3 } },
    { "max_depth while skipping", '{"x":[[[[1]]]]}', "nesting deeper than max_depth (3)", Deep,
      { max_depth = 3, ignore_unknown_fields = true } },
  }
  for _, r in ipairs(bad) do
    it("fails: " .. r[1], function()
      local H = r[4] or P
      local b, err = H:from_json(r[2], r[5])
      assert.is_nil(b)
      assert.truthy(err and err:find(r[3], 1, true), tostring(err))
    end)
  end

  it("max_depth 100 by default, also for Struct", function()
    local ok = ("["):rep(98) .. ("]"):rep(98)
    assert.truthy(W:from_json('{"list":' .. ok .. '}'))
    local deep = ("["):rep(200) .. ("]"):rep(200)
    local _, err = W:from_json('{"list":' .. deep .. '}')
    assert.truthy(err:find("max_depth (100)", 1, true), err)
  end)

  it("raises on misuse", function()
    assert.has_error(function() P:from_json(1) end, "dynpb: from_json jt.Person: JSON text expected, got number")
    assert.has_error(function() P:from_json("{}", { bogus = 1 }) end, "dynpb: from_json: unknown option 'bogus'")
    assert.has_error(function() P:from_json("{}", { indent = 2 }) end, "dynpb: from_json: unknown option 'indent'")
    assert.has_error(function() P:from_json("{}", { ignore_unknown_fields = "yes" }) end)
    assert.has_error(function() P:from_json("{}", { max_depth = 0 }) end)
  end)

  it("round-trips what to_json writes", function()
    local t = { full_name = "Ann", age = 30, home = { street_name = "Main", zip = 1 }, others = { { zip = 2 } },
      big = "-9007199254740993", ubig = "18446744073709551615", score = 0.1, ratio = 0.25, active = true,
      blob = "\0\255", kind = "KIND_A", kinds = { "KIND_B", 7 }, counts = { b = 2, a = 1 },
      by_id = { [5] = { zip = 5 } }, flags = { [true] = "t" }, custom = "c", email = "x@y", maybe = 0,
      tags = { "a", "\"q\"\n" }, delta = -3, f64 = "123" }
    local b = enc(P, t)
    for _, o in ipairs { {}, { proto_names = true }, { indent = 3 }, { emit_defaults = true }, { enums = "number" } } do
      assert.equal(b, assert(P:from_json(assert(P:to_json(b, o)))))
    end
  end)

  it("is the same through the schema", function()
    assert.equal(P:from_json('{"age":3}'), s3:from_json("jt.Person", '{"age":3}'))
  end)

  it("finds field and enum value names of every length 1 to 48 by their text (JSON keys and strings)", function()
    -- names that share a prefix and differ in length only; the JSON text of a
    -- name is followed by other bytes than its NUL-ended copy in the schema,
    -- so a name hash that read past the name would miss it
    local lines = { 'syntax = "proto3"; package nl;', "enum Kind {" }
    for k = 1, 48 do lines[#lines + 1] = ("  E%s = %d;"):format(("V"):rep(k - 1), k - 1) end
    lines[#lines + 1] = "}"
    lines[#lines + 1] = "message M { Kind e = 100;"
    for k = 1, 48 do lines[#lines + 1] = ("  int32 f%s = %d;"):format(("q"):rep(k - 1), k) end
    lines[#lines + 1] = "}"
    local H = assert(assert(dynpb.load_proto { files = { "nl.proto" },
      sources = { ["nl.proto"] = table.concat(lines, "\n") } }):message("nl.M"))
    for k = 1, 48 do
      local f, v = "f" .. ("q"):rep(k - 1), "E" .. ("V"):rep(k - 1)
      local want = assert(H:encode({ [f] = k, e = k > 1 and v or nil }))
      assert.equal(want, assert(H:from_json(('{"%s": %d, "e": "%s"}'):format(f, k, v))), f)
      assert.same({ [f] = k, e = k > 1 and v or nil }, assert(H:decode(want)), f)
    end
    local ok, err = H:from_json('{"f' .. ("q"):rep(48) .. '": 1}')
    assert.is_nil(ok)
    assert.matches("no field", err)
    ok, err = H:from_json('{"e": "E' .. ("V"):rep(48) .. '"}')
    assert.is_nil(ok)
    assert.matches("EVVV", err)
  end)

  it("reuses the state's buffers: a call allocates its result only", function()
    -- a finalizer that calls to_json during another call gets its own scratch
    local b = enc(P, { full_name = ("x"):rep(1000), tags = { "a", "b" } })
    local j = P:to_json(b)
    local inner
    for _ = 1, 50 do
      setmetatable({}, { __gc = function() inner = P:to_json(b) end })
    end
    for _ = 1, 200 do assert.equal(j, P:to_json(b)); assert.equal(b, P:from_json(j)) end
    collectgarbage()
    assert.equal(j, inner or j)
  end)
end)
