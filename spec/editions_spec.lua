-- Issue 14: protobuf editions (2023, 2024) descriptor sets, feature
-- resolution, its reflection, and the presence rule for fields without
-- presence (all syntaxes). The sets are buf-built fixtures
-- (spec/fixtures/editions/make.sh) mixing editions, proto2 and proto3 files;
-- the error cases are hand-made descriptor sets.
local dynpb = require "dynpb"
local pb = T.pb

local set = assert(dynpb.load(T.fixture("editions/all.binpb")))
local F = assert(set:message("ed.v1.Features"))
local FD = assert(set:message("ed.v1.FileDefaults"))
local M24 = assert(set:message("ed.v2.Msg"))
local Plain = assert(set:message("mix.v1.Plain"))
local Old = assert(set:message("mix.v1.Old"))
local UNKNOWN = dynpb.UNKNOWN

local function hex(s)
  return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end
local function unhex(h)
  return (h:gsub("%s", ""):gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
end
local function fields_of(H)
  local by = {}
  for _, f in ipairs(H:fields()) do by[f.name] = f end
  for _, f in ipairs(H:extensions()) do by[f.key] = f end
  return by
end

describe("editions: loading", function()
  it("loads a set mixing editions 2023 and 2024 with proto2 and proto3 files", function()
    assert.equal("ed.v1.Features", F.name)
    assert.equal("mix.v1.Old", Old.name)
    assert.equal(1, set:enum("ed.v1.Color").RED)
    assert.equal(1, set:enum("ed.v2.Kind").A)
  end)

  it("ignores language features (pb.cpp) on the file and on fields", function()
    assert.equal("string", fields_of(F).view.type)
    assert.equal("ca010178", hex(assert(F:encode({view = "x"}))))
  end)
end)

describe("editions: resolved features in handle:fields()", function()
  -- {type, field, type, label, packed, presence}
  local rows = {
    {"ed.v1.Features", "explicit_int", "int32", "optional", false, "explicit"},
    {"ed.v1.Features", "implicit_int", "int32", "optional", false, "implicit"},
    {"ed.v1.Features", "required_int", "int32", "required", false, "explicit"},
    {"ed.v1.Features", "implicit_str", "string", "optional", false, "implicit"},
    {"ed.v1.Features", "with_default", "int32", "optional", false, "explicit"},
    {"ed.v1.Features", "packed_ints", "int32", "repeated", true, nil},
    {"ed.v1.Features", "expanded_ints", "int32", "repeated", false, nil},
    {"ed.v1.Features", "shapes", "enum", "repeated", true, nil},
    {"ed.v1.Features", "child", "message", "optional", false, "explicit"},
    {"ed.v1.Features", "delimited", "group", "optional", false, "explicit"},
    {"ed.v1.Features", "delimited_list", "group", "repeated", false, nil},
    {"ed.v1.Features", "children", "message", "repeated", false, nil},
    {"ed.v1.Features", "pick_int", "int32", "optional", false, "explicit"},
    {"ed.v1.Features", "pick_child", "group", "optional", false, "explicit"},
    {"ed.v1.FileDefaults", "n", "int32", "optional", false, "implicit"},
    {"ed.v1.FileDefaults", "nums", "int32", "repeated", false, nil},
    {"ed.v1.FileDefaults", "sub", "group", "optional", false, "explicit"},
    {"ed.v1.FileDefaults", "subs", "message", "repeated", false, nil},
    {"ed.v1.FileDefaults", "packed", "int32", "repeated", true, nil},
    {"ed.v1.FileDefaults", "prefixed", "message", "optional", false, "explicit"},
    {"ed.v1.LegacyJson", "a", "int32", "optional", false, "explicit"},
    {"ed.v2.Msg", "n", "int32", "optional", false, "explicit"},
    {"ed.v2.Msg", "imp", "int32", "optional", false, "implicit"},
    {"ed.v2.Msg", "nums", "int32", "repeated", true, nil},
    {"ed.v2.Msg", "next", "group", "optional", false, "explicit"},
    {"mix.v1.Old", "id", "int32", "required", false, "explicit"},
    {"mix.v1.Old", "grp", "group", "optional", false, "explicit"},
    {"mix.v1.Old", "nums", "int32", "repeated", false, nil},
    {"mix.v1.Plain", "n", "int32", "optional", false, "implicit"},
    {"mix.v1.Plain", "opt", "int32", "optional", false, "explicit"},
    {"mix.v1.Plain", "nums", "int32", "repeated", true, nil},
    {"mix.v1.Plain", "color", "enum", "optional", false, "implicit"},
    {"mix.v1.Plain", "ed", "message", "optional", false, "explicit"},
  }
  for _, r in ipairs(rows) do
    it(r[1] .. "." .. r[2], function()
      local f = fields_of(set:message(r[1]))[r[2]]
      assert.is_table(f)
      assert.equal(r[3], f.type)
      assert.equal(r[4], f.label)
      assert.equal(r[5], f.packed)
      assert.equal(r[6], f.presence)
    end)
  end

  -- extensions get the features of the scope their `extend` is in
  local ext_rows = {
    {"ed.v1.Features", "[ed.v1.ext_child]", "group", "optional", false, "explicit"},
    {"ed.v1.Features", "[ed.v1.ext_nums]", "int32", "repeated", true, nil},
    {"ed.v1.Features", "[ed.v1.Scope.scoped_sub]", "group", "optional", false, "explicit"},
    {"ed.v1.Features", "[ed.v1.Scope.scoped_nums]", "int32", "repeated", false, nil},
    {"mix.v1.Old", "[mix.v1.old_nums]", "int32", "repeated", false, nil},
    {"mix.v1.Old", "[mix.v1.oldgroup]", "group", "optional", false, "explicit"},
  }
  for _, r in ipairs(ext_rows) do
    it("extension " .. r[2], function()
      local x
      for _, e in ipairs(set:message(r[1]):extensions()) do if e.key == r[2] then x = e end end
      assert.is_table(x)
      assert.equal(r[3], x.type)
      assert.equal(r[4], x.label)
      assert.equal(r[5], x.packed)
      assert.equal(r[6], x.presence)
    end)
  end

  it("keeps a default with explicit presence", function()
    assert.equal(7, fields_of(F).with_default.default)
    assert.equal(7, F:decode("", {defaults = true}).with_default)
  end)
end)

describe("editions: codec", function()
  -- {name, handle, table, hex bytes}: encode gives the bytes, decode gives the table
  local rows = {
    {"explicit presence keeps a zero", F, {explicit_int = 0}, "0800"},
    {"implicit presence drops a zero", F, {implicit_int = 0, implicit_str = "",
      implicit_bool = false, implicit_color = "COLOR_UNSPECIFIED"}, ""},
    -- -0.0 computed at run time (Lua 5.1 folds the literal -0.0 to +0.0)
    {"implicit presence keeps -0.0", F, {implicit_dbl = -1 / math.huge}, "290000000000000080"},
    {"implicit presence keeps a non-zero", F, {implicit_int = 5}, "1005"},
    {"packed by default", F, {packed_ints = {1, 2}}, "52020102"},
    {"EXPANDED", F, {expanded_ints = {1, 2}}, "58015802"},
    {"closed enum repeated, packed", F, {shapes = {"CIRCLE", "SQUARE"}}, "72020102"},
    {"LENGTH_PREFIXED message", F, {child = {v = 1}}, "8a01020801"},
    {"DELIMITED message is a group", F, {delimited = {v = 1}}, "93010801" .. "9401"},
    {"DELIMITED repeated", F, {delimited_list = {{v = 1}, {v = 2}}},
     "9b0108019c01" .. "9b0108029c01"},
    {"maps stay length-prefixed", F, {children = {k = {v = 3}}}, "a201070a016b12020803"},
    {"DELIMITED oneof member", F, {pick_child = {v = 4}}, "b3010804b401"},
    {"a proto2 message inside", F, {old = {id = 1, grp = {g = 2}}},
     "ba01060801" .. "23280224"},
    {"file-level IMPLICIT", FD, {n = 0, s = ""}, ""},
    {"file-level EXPANDED", FD, {nums = {1, 2}}, "18011802"},
    {"file-level DELIMITED", FD, {sub = {x = 1}}, "230801" .. "24"},
    {"file-level DELIMITED: a map's values are length-prefixed", FD, {subs = {[1] = {x = 2}}},
     "2a0608011202" .. "0802"},
    {"field-level PACKED over the file's EXPANDED", FD, {packed = {1, 2}}, "32020102"},
    {"field-level LENGTH_PREFIXED over the file's DELIMITED", FD, {prefixed = {x = 1}},
     "3a020801"},
    {"edition 2024", M24, {n = 0, imp = 0, nums = {1}, next = {n = 1}}, "08001a0101" .. "330801" .. "34"},
    {"editions extensions", F, {["[ed.v1.ext_child]"] = {v = 1}, ["[ed.v1.ext_nums]"] = {1, 2},
      ["[ed.v1.Scope.scoped_sub]"] = {x = 2}, ["[ed.v1.Scope.scoped_nums]"] = {1, 2}},
     "a3060801a406" .. "aa06020102" .. "b3060802b406" .. "b80601b80602"},
    {"proto2 extensions in a mixed set", Old, {id = 1, ["[mix.v1.old_nums]"] = {1, 2},
      ["[mix.v1.oldgroup]"] = {v = 3}}, "0801" .. "a00601a00602" .. "ab060803ac06"},
    {"proto3 with editions types", Plain, {color = "RED", ed = {explicit_int = 0}}, "2801" .. "32020800"},
  }
  for _, r in ipairs(rows) do
    it(r[1], function()
      local H, t, want = r[2], r[3], unhex(r[4])
      local out = assert(H:encode(t))
      assert.equal(r[4], hex(out))
      local back = assert(H:decode(want))
      -- a value encode omits (implicit zero) is absent after decode
      local expect = {}
      for k, v in pairs(t) do
        local f = fields_of(H)[k]
        local zero = v == 0 or v == "" or v == false or v == "COLOR_UNSPECIFIED"
        if not (f.presence == "implicit" and zero and not (v == 0 and 1 / v < 0)) then
          expect[k] = v
        end
      end
      assert.same(expect, back)
    end)
  end

  it("decode reads the delimited field only as a group (length-prefixed is unknown)", function()
    local lp = unhex("9201020801")   -- field 18 with wire type 2
    local t = assert(F:decode(lp))
    assert.is_nil(t.delimited)
    assert.equal(lp, t[UNKNOWN])
  end)

  it("decode accepts packed and expanded input whatever the encoding", function()
    assert.same({1, 2, 3}, assert(F:decode(unhex("5a020102" .. "5803"))).expanded_ints)
    assert.same({1, 2, 3}, assert(F:decode(unhex("5001" .. "5002" .. "52 0103"))).packed_ints)
  end)

  it("open enums keep unknown numbers; closed ones send them to unknown fields", function()
    local t = assert(F:decode(unhex("6009" .. "6809")))
    assert.equal(9, t.color)
    assert.is_nil(t.shape)
    assert.equal(unhex("6809"), t[UNKNOWN])
    local ok, err = F:encode({shape = 9})
    assert.is_nil(ok)
    assert.matches("shape", err)
    -- a proto2 enum used under editions stays closed
    t = assert(F:decode(unhex("c00109")))
    assert.is_nil(t.level)
  end)

  it("utf8_validation: VERIFY checks, NONE does not", function()
    local bad = "\255\254"
    local t, err = F:decode(unhex("7a02") .. bad)
    assert.is_nil(t)
    assert.matches("checked", err)
    assert.equal(bad, assert(F:decode(unhex("8201") .. "\2" .. bad)).unchecked)
    assert.is_nil((F:encode({checked = bad})))
    assert.equal(unhex("8201") .. "\2" .. bad, assert(F:encode({unchecked = bad})))
    -- file-level NONE
    assert.equal(bad, assert(FD:decode(unhex("1202") .. bad)).s)
    -- a map field's NONE holds for its keys and values
    local entry = "\10\2" .. bad .. "\18\2" .. bad
    assert.same({[bad] = bad}, assert(F:decode(unhex("d201") .. "\8" .. entry)).raw_map)
    assert.equal(unhex("d201") .. "\8" .. entry, assert(F:encode({raw_map = {[bad] = bad}})))
    t, err = F:decode(unhex("da01") .. "\8" .. entry)
    assert.is_nil(t)
    assert.matches("checked_map", err)
    assert.is_nil((F:encode({checked_map = {[bad] = bad}})))
  end)
end)

describe("editions: load errors name the file and the edition", function()
  local function file(o, extra) return pb.file("e.proto", o) .. (extra or "") end
  local function feat(...) return pb.len(50, table.concat({...})) end      -- FileOptions.features
  local function fieldopt(s) return pb.len(8, pb.len(21, s)) end           -- FieldOptions.features
  local msg_x = pb.message("M", {pb.field("x", 1, 1, 5)})
  local rows = {
    {"edition 2026", pb.set(file({syntax = "editions"}, pb.vint(14, 1002))),
     "file 'e.proto': edition EDITION_2026 (1002) is not supported"},
    {"a test-only edition", pb.set(file({syntax = "editions"}, pb.vint(14, 99999))),
     "file 'e.proto': edition EDITION_99999_TEST_ONLY (99999) is not supported"},
    {"an unnamed edition", pb.set(file({syntax = "editions"}, pb.vint(14, 5000))),
     "file 'e.proto': edition 5000 is not supported"},
    {"EDITION_PROTO2 as an edition", pb.set(file({syntax = "editions"}, pb.vint(14, 998))),
     "edition proto2 is not supported"},
    {"an unknown field_presence on the file",
     pb.set(file({syntax = "editions"}, pb.vint(14, 1000) .. pb.len(8, feat(pb.vint(1, 9))))),
     "file 'e.proto': features.field_presence = 9 is not a known value (edition 2023)"},
    {"UNKNOWN (0) as a value",
     pb.set(file({syntax = "editions"}, pb.vint(14, 1001) .. pb.len(8, feat(pb.vint(5, 0))))),
     "file 'e.proto': features.message_encoding = 0 is not a known value (edition 2024)"},
    {"an unknown utf8_validation on a field",
     pb.set(file({syntax = "editions", messages = {
       pb.message("M", {pb.field("x", 1, 1, 9) .. fieldopt(pb.vint(4, 1))})}}, pb.vint(14, 1000))),
     "file 'e.proto': field 'M.x': features.utf8_validation = 1 is not a known value (edition 2023)"},
    {"an unknown enum_type on an enum",
     pb.set(file({syntax = "editions", enums = {
       pb.enum("E", {{"A", 0}}) .. pb.len(3, pb.len(7, pb.vint(2, 3)))}}, pb.vint(14, 1000))),
     "file 'e.proto': enum 'E': features.enum_type = 3 is not a known value (edition 2023)"},
    {"an unknown json_format on a message",
     pb.set(file({syntax = "editions", messages = {
       msg_x .. pb.len(7, pb.len(12, pb.vint(6, 7)))}}, pb.vint(14, 1000))),
     "file 'e.proto': message 'M': features.json_format = 7 is not a known value"},
    {"features in a proto3 file",
     pb.set(file({syntax = "proto3"}, pb.len(8, feat(pb.vint(1, 1))))),
     "file 'e.proto': features.field_presence is set, but features are only valid under editions (the file's syntax is proto3)"},
    {"label required under editions",
     pb.set(file({syntax = "editions", messages = {pb.message("M", {pb.field("x", 1, 2, 5)})}},
                 pb.vint(14, 1000))),
     "field 'M.x': label 'required' is not allowed under editions"},
    {"[packed] under editions",
     pb.set(file({syntax = "editions", messages = {
       pb.message("M", {pb.field("x", 1, 3, 5) .. pb.len(8, pb.vint(2, 1))})}}, pb.vint(14, 1000))),
     "field 'M.x': [packed] is not allowed under editions"},
    {"a default without presence",
     pb.set(file({syntax = "editions", messages = {
       pb.message("M", {pb.field("x", 1, 1, 5) .. pb.len(7, "3") .. fieldopt(pb.vint(1, 2))})}},
       pb.vint(14, 1000))),
     "field 'M.x': a default value needs explicit presence"},
    {"an open enum not starting at 0",
     pb.set(file({syntax = "editions", enums = {pb.enum("E", {{"A", 1}})}}, pb.vint(14, 1000))),
     "the first value of an open enum must be 0"},
  }
  for _, r in ipairs(rows) do
    it(r[1], function()
      local s, err = dynpb.load(r[2])
      assert.is_nil(s)
      assert.matches("^dynpb: load: ", err)
      assert.matches(r[3], err, 1, true)
    end)
  end

  it("a feature set with only language extensions loads", function()
    -- FileOptions.features with field 1000 (pb.cpp) set: unknown to dynpb
    local s = assert(dynpb.load(pb.set(file({syntax = "editions", messages = {msg_x}},
      pb.vint(14, 1000) .. pb.len(8, feat(pb.len(1000, pb.vint(1, 1))))))))
    assert.equal("explicit", fields_of(s:message("M")).x.presence)
  end)

  it("a closed enum may start at a non-zero value", function()
    local s = assert(dynpb.load(pb.set(file({syntax = "editions", enums = {
      pb.enum("E", {{"A", 1}}) .. pb.len(3, pb.len(7, pb.vint(2, 2)))}}, pb.vint(14, 1000)))))
    assert.equal(1, s:enum("E").A)
  end)
end)

describe("presence of fields without it (all syntaxes)", function()
  local shop = assert(dynpb.load(T.fixture("shop.pb")))
  local Order = assert(shop:message("shop.v1.Order"))
  local legacy = assert(dynpb.load(T.fixture("legacy.pb")))
  local Record = assert(legacy:message("legacy.Record"))
  -- {name, handle, bytes, the decoded table}
  local rows = {
    {"proto3 int 0", Order, pb.vint(1, 0), {}},
    {"proto3 empty string", Order, pb.len(3, ""), {}},
    {"proto3 enum 0", Order, pb.vint(8, 0), {}},
    {"proto3 false", Order, pb.vint(5, 0), {}},
    {"proto3 0 after a value clears it", Order, pb.vint(1, 5) .. pb.vint(1, 0), {}},
    {"proto3 value after a 0", Order, pb.vint(1, 0) .. pb.vint(1, 5), {id = 5}},
    {"proto3 int32 whose low 32 bits are 0", Order, pb.vint(1, 2 ^ 32), {}},
    {"proto3 optional keeps 0", Order, pb.vint(18, 0), {priority = 0}},
    {"proto3 oneof member keeps \"\"", Order, pb.len(16, ""), {card = ""}},
    {"proto3 float +0.0", Order, pb.tag(7, 5) .. "\0\0\0\0", {}},
    {"proto2 optional keeps 0", Record, pb.vint(1, 0), {id = 0}},
    {"editions IMPLICIT 0", F, pb.vint(2, 0), {}},
    {"editions EXPLICIT 0", F, pb.vint(1, 0), {explicit_int = 0}},
    {"editions IMPLICIT +0.0", F, pb.tag(5, 1) .. ("\0"):rep(8), {}},
    {"editions oneof member 0", F, pb.vint(21, 0), {pick_int = 0}},
  }
  for _, r in ipairs(rows) do
    it(r[1], function()
      local t = assert(r[2]:decode(r[3]))
      assert.same(r[4], t)
      -- decode(encode(decode(b))) == decode(b)
      assert.same(t, assert(r[2]:decode(assert(r[2]:encode(t)))))
    end)
  end

  it("proto3 double and float -0.0 stay present (zero means bitwise +0.0)", function()
    local t = assert(Order:decode(pb.tag(6, 1) .. ("\0"):rep(7) .. "\128" ..
                                  pb.tag(7, 5) .. "\0\0\0\128"))
    assert.equal(-math.huge, 1 / t.balance)
    assert.equal(-math.huge, 1 / t.score)
    assert.equal(hex(pb.tag(6, 1) .. ("\0"):rep(7) .. "\128" .. pb.tag(7, 5) .. "\0\0\0\128"),
                 hex(assert(Order:encode(t))))
  end)

  it("defaults = true still fills them", function()
    local t = assert(Order:decode(pb.vint(1, 0) .. pb.len(3, ""), {defaults = true}))
    assert.equal(0, t.id)
    assert.equal("", t.user_name)
  end)
end)

describe("csrc/gen/feature_defaults.h", function()
  it("is what csrc/gen/features.lua derives from descriptor.proto", function()
    local pp = io.popen("command -v protoc 2>/dev/null")
    local protoc = pp:read("*l")
    pp:close()
    assert.is_string(protoc, "protoc (Debian's protobuf-compiler) is needed")
    local lua = os.getenv("DYNPB_LUA") or "lua5.4"
    local tmp = os.tmpname()
    local gen = T.root .. "/csrc/gen"
    -- the tools run without the sanitizer runtime `make asan` preloads
    local cmd = ("env -u LD_PRELOAD protoc -I%q -o %q google/protobuf/descriptor.proto && " ..
                 "env -u LD_PRELOAD protoc -I%q --decode=google.protobuf.FileDescriptorSet " ..
                 "google/protobuf/descriptor.proto < %q | env -u LD_PRELOAD %q %q")
                :format(gen .. "/src", tmp, gen .. "/src", tmp, lua, gen .. "/features.lua")
    local p = io.popen(cmd)
    local got = p:read("*a")
    p:close()
    os.remove(tmp)
    assert.equal(T.read(T.root .. "/csrc/gen/feature_defaults.h"), got)
    -- the 2023 row as protobuf documents it: EXPLICIT OPEN PACKED VERIFY
    -- LENGTH_PREFIXED ALLOW
    assert.matches("{1000, {1, 1, 1, 2, 1, 1}}", got, 1, true)
  end)
end)
