-- dynpb.compile on editions sources (issue 13 + 14): `edition = "2023"` /
-- "2024" files compile to the set buf builds (the reference: protoc 3.21
-- cannot read them). The committed buf-built fixtures
-- (spec/fixtures/editions/make.sh) are compared byte for byte, so these rows
-- need no buf; `make buf-compare` runs buf itself on more (conformance test
-- protos, random sets, source info). The error rows pin protoc's messages at
-- file:line:col.
local dynpb = require "dynpb"

local FX = T.specdir .. "/fixtures/editions/proto"
local ALL = { "ed2023.proto", "ed2024.proto", "implicit.proto", "legacy2.proto", "plain3.proto" }

local function compile(src, extra)
  local sources = { ["e.proto"] = src }
  for k, v in pairs(extra or {}) do sources[k] = v end
  return dynpb.compile { files = { "e.proto" }, sources = sources }
end

local function fields_of(H)
  local by = {}
  for _, f in ipairs(H:fields()) do by[f.name] = f end
  return by
end

local function hex(s)
  return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

describe("dynpb.compile on editions sources", function()
  it("compiles the editions fixtures to buf's bytes (all files at once, and 2024 alone)", function()
    local got = assert(dynpb.compile { files = ALL, paths = { FX } })
    assert.equal(#T.fixture("editions/all.binpb"), #got)
    assert.is_true(got == T.fixture("editions/all.binpb"))
    assert.is_true(assert(dynpb.compile { files = { "ed2024.proto" }, paths = { FX } }) == T.fixture("editions/ed2024.binpb"))
  end)

  it("writes syntax = \"editions\" and the edition (FileDescriptorProto field 14)", function()
    local S = assert(dynpb.load_proto { files = { "google/protobuf/descriptor.proto" }, paths = { T.root .. "/csrc/gen/src" } })
    local FDS = S:message("google.protobuf.FileDescriptorSet")
    for ed, name in pairs({ ["2023"] = "EDITION_2023", ["2024"] = "EDITION_2024" }) do
      local set = assert(compile('edition = "' .. ed .. '";\nmessage M { int32 a = 1; }'))
      local f = assert(FDS:decode(set)).file[1]
      assert.equal("editions", f.syntax)
      assert.equal(name, f.edition)
      -- no label keywords: singular fields are LABEL_OPTIONAL, presence is a feature
      assert.equal("LABEL_OPTIONAL", f.message_type[1].field[1].label)
    end
  end)

  it("keeps a DELIMITED field TYPE_MESSAGE and copies a map field's features to its entry (as buf and protoc)", function()
    local S = assert(dynpb.load_proto { files = { "google/protobuf/descriptor.proto" }, paths = { T.root .. "/csrc/gen/src" } })
    local set = assert(compile([[edition = "2023";
message M {
  M d = 1 [features.message_encoding = DELIMITED];
  map<string, string> m = 2 [features.utf8_validation = NONE];
}]]))
    local f = assert(S:message("google.protobuf.FileDescriptorSet"):decode(set)).file[1]
    local msg = f.message_type[1]
    assert.equal("TYPE_MESSAGE", msg.field[1].type)
    assert.equal("DELIMITED", msg.field[1].options.features.message_encoding)
    local entry = msg.nested_type[1]
    assert.equal("MEntry", entry.name)
    for _, fd in ipairs(entry.field) do assert.equal("NONE", fd.options.features.utf8_validation) end
  end)

  it("merges several features statements on one element into one FeatureSet (protoc's re-parse)", function()
    local a = assert(compile('edition = "2023";\noption features.enum_type = CLOSED;\noption features.utf8_validation = NONE;\nmessage M {}'))
    local b = assert(compile('edition = "2023";\noption features = { enum_type: CLOSED utf8_validation: NONE };\nmessage M {}'))
    assert.equal(hex(b), hex(a))
  end)
end)

describe("dynpb.load_proto of an editions source", function()
  local ref = assert(dynpb.load(T.fixture("editions/all.binpb")))
  local S = assert(dynpb.load_proto({ files = ALL, paths = { FX } }))

  it("is the schema of buf's set (the same bytes: a cache hit)", function()
    assert.equal(ref, S)
    assert.equal(ref.fingerprint, S.fingerprint)
  end)

  it("resolves presence, packing, closed enums and delimited fields like buf's set", function()
    local F = S:message("ed.v1.Features")
    local by = fields_of(F)
    assert.equal("implicit", by.implicit_int.presence)
    assert.equal("explicit", by.explicit_int.presence)
    assert.equal("required", by.required_int.label)
    assert.is_true(by.packed_ints.packed)
    assert.is_false(by.expanded_ints.packed)
    assert.equal("group", by.delimited.type)
    -- on the wire: implicit zero dropped, explicit zero kept, packed, group
    assert.equal("", hex(assert(F:encode({ implicit_int = 0 }))))
    assert.equal("0800", hex(assert(F:encode({ explicit_int = 0 }))))
    assert.equal("52020102", hex(assert(F:encode({ packed_ints = { 1, 2 } }))))
    assert.equal("930108019401", hex(assert(F:encode({ delimited = { v = 1 } }))))
    -- a closed enum keeps an unknown number in the unknown fields
    local t = assert(F:decode("\104\9"))            -- shape (13) = 9, not a Shape value
    assert.is_nil(t.shape)
    assert.is_string(t[dynpb.UNKNOWN])
  end)

  it("compiles from sources alone, the same bytes as from paths", function()
    local sources = {}
    for _, f in ipairs(ALL) do sources[f] = T.read(FX .. "/" .. f) end
    assert.equal(S, assert(dynpb.load_proto({ files = ALL, sources = sources })))
  end)
end)

describe("dynpb.compile: the built-ins of a compile with an editions file", function()
  local SRC = {
    ["a.proto"] = 'syntax = "proto2";\nimport "google/protobuf/descriptor.proto";\n' ..
      'extend google.protobuf.FieldOptions { optional int32 my = 50000; }',
    ["b.proto"] = 'edition = "2023";\nimport "a.proto";\nmessage B { int32 x = 1 [(my) = 3, features.field_presence = IMPLICIT]; }',
  }
  local function desc_of(set)
    local S = assert(dynpb.load(set))
    return S:message("google.protobuf.FieldOptions")
  end

  it("proto2/proto3 only: Debian's descriptor.proto (protoc 3.21's bytes)", function()
    local set = assert(dynpb.compile { files = { "a.proto" }, sources = SRC })
    assert.is_nil(fields_of(desc_of(set)).features)
  end)

  it("with an editions file, even one after a file that loaded Debian's copy: the newer one, for every file", function()
    local set = assert(dynpb.compile { files = { "a.proto", "b.proto" }, sources = SRC })
    assert.is_table(fields_of(desc_of(set)).features)
    local S = assert(dynpb.load(set))
    assert.equal("implicit", fields_of(S:message("B")).x.presence)
    -- the same set as when the editions file comes first (no second run needed)
    assert.is_true(set == assert(dynpb.compile { files = { "b.proto", "a.proto" }, sources = SRC }))
  end)

  it("language feature files are built in (google/protobuf/cpp_features.proto, java_, go_)", function()
    local set = assert(compile([[edition = "2023";
import "google/protobuf/cpp_features.proto";
import "google/protobuf/java_features.proto";
import "google/protobuf/go_features.proto";
option features.(pb.cpp).legacy_closed_enum = true;
option features.(pb.java).legacy_closed_enum = true;
message M { string s = 1 [features.(pb.cpp).string_type = VIEW]; }]]))
    assert.is_table(dynpb.load(set))
  end)
end)

describe("dynpb.compile: editions errors, at file:line:col", function()
  local rows = {
    { 'edition = "2025";', 'e.proto:1:11: Unknown edition "2025".' },
    { 'edition = "2026";', "e.proto:1:11: Edition 2026 is later than the maximum supported edition 2024." },
    { 'edition = "LEGACY";', "e.proto:1:11: Edition LEGACY is earlier than the minimum supported edition 2023." },
    { 'edition = "2023";\nmessage M {\n  optional int32 a = 1;\n}',
      'e.proto:3:3: Label "optional" is not supported in editions. By default, all singular fields have presence unless features.field_presence is set.' },
    { 'edition = "2023";\nmessage M {\n  required int32 a = 1;\n}',
      'e.proto:3:3: Label "required" is not supported in editions, use features.field_presence = LEGACY_REQUIRED.' },
    { 'edition = "2023";\nmessage M {\n  group G = 1 { int32 x = 2; }\n}',
      "e.proto:3:3: Group syntax is no longer supported in editions. To get group behavior you can specify features.message_encoding = DELIMITED on a message field." },
    { 'edition = "2023";\nmessage M {\n  reserved "foo";\n}',
      "e.proto:3:12: Reserved names must be identifiers in editions, not string literals." },
    { 'edition = "2023";\nmessage M {\n  int32 a = 1 [features.field_presence = IMPLICIT, default = 3];\n}',
      "e.proto:3:9: Implicit presence fields can't specify defaults." },
    { 'edition = "2023";\nenum E { option features.enum_type = CLOSED; A = 1; }\nmessage M {\n  E e = 1 [features.field_presence = IMPLICIT];\n}',
      "e.proto:4:5: Implicit presence enum fields must always be open." },
    { 'edition = "2023";\nenum E {\n  A = 1;\n}', "e.proto:3:7: The first enum value must be zero for open enums." },
    { 'edition = "2023";\nmessage M {\n  int32 a = 1 [features.field_presence = FOO];\n}',
      'e.proto:3:42: Enum type "google.protobuf.FeatureSet.FieldPresence" has no value named "FOO" for option "google.protobuf.FeatureSet.field_presence".' },
    { 'edition = "2023";\nmessage M {\n  int32 a = 1 [features.foo = 1];\n}',
      'e.proto:3:25: Option "features.foo" unknown. Ensure that your proto definition file imports the proto which defines the option.' },
    { 'edition = "2023";\nmessage M {\n  int32 a = 1 [features.field_presence = FIELD_PRESENCE_UNKNOWN];\n}',
      "e.proto:3:9: Feature field `field_presence` must resolve to a known value, found FIELD_PRESENCE_UNKNOWN" },
    { 'edition = "2023";\nmessage M {\n  repeated int32 a = 1 [packed = true];\n}',
      "e.proto:3:18: Field option packed is not allowed under editions.  Use the repeated_field_encoding feature to control this behavior." },
    { 'edition = "2023";\nmessage M {\n  repeated int32 a = 1 [features.field_presence = EXPLICIT];\n}',
      "e.proto:3:18: Repeated fields can't specify field presence." },
    { 'edition = "2023";\nmessage M {\n  M m = 1 [features.field_presence = IMPLICIT];\n}',
      "e.proto:3:5: Message fields can't specify implicit presence." },
    { 'edition = "2023";\nmessage M {\n  oneof o {\n    int32 a = 1 [features.field_presence = EXPLICIT];\n  }\n}',
      "e.proto:4:11: Oneof fields can't specify field presence." },
    { 'edition = "2023";\nmessage M {\n  extensions 10 to 20;\n}\nextend M {\n  int32 x = 10 [features.field_presence = LEGACY_REQUIRED];\n}',
      "e.proto:6:9: Extensions can't be required." },
    { 'edition = "2023";\nmessage M {\n  int32 a = 1 [features.repeated_field_encoding = EXPANDED];\n}',
      "e.proto:3:9: Only repeated fields can specify repeated field encoding." },
    { 'edition = "2023";\nmessage M {\n  repeated string s = 1 [features.repeated_field_encoding = PACKED];\n}',
      "e.proto:3:19: Only repeated primitive fields can specify PACKED repeated field encoding." },
    { 'edition = "2023";\nmessage M {\n  int32 a = 1 [features.utf8_validation = NONE];\n}',
      "e.proto:3:9: Only string fields can specify utf8 validation." },
    { 'edition = "2023";\nmessage M {\n  int32 a = 1 [features.message_encoding = DELIMITED];\n}',
      "e.proto:3:9: Only message fields can specify message encoding." },
    { 'edition = "2023";\nmessage M {\n  map<int32, M> m = 1 [features.message_encoding = DELIMITED];\n}',
      "e.proto:3:17: Only message fields can specify message encoding." },
    { 'edition = "2023";\noption features.field_presence = LEGACY_REQUIRED;\nmessage M {}',
      "e.proto:1:1: Required presence can't be specified by default." },
    { 'edition = "2023";\nmessage M {\n  option features.utf8_validation = NONE;\n}',
      "e.proto:3:19: Option google.protobuf.FeatureSet.utf8_validation cannot be set on an entity of type `message`." },
    { 'edition = "2023";\nmessage M {\n  int32 foo_bar = 1;\n  int32 fooBar = 2;\n}',
      'e.proto:4:9: The default JSON name of field "fooBar" ("fooBar") conflicts with the default JSON name of field "foo_bar".' },
    { 'edition = "2024";\nmessage M {\n  local int32 a = 1;\n}',
      "e.proto:3:9: 'local' and 'export' visibility modifiers are valid only on 'message' and 'enum'" },
    { 'edition = "2024";\noption java_multiple_files = true;',
      "e.proto:2:8: google.protobuf.FileOptions.java_multiple_files has been removed in edition 2024: This behavior is enabled by default in editions 2024 and above. To disable it, you can set `features.(pb.java).nest_in_file_class = YES` on individual messages, enums, or services." },
    { 'edition = "2023";\noption features.enforce_naming_style = STYLE2024;',
      "e.proto:2:17: google.protobuf.FeatureSet.enforce_naming_style wasn't introduced until edition 2024 and can't be used in edition 2023" },
    { 'edition = "2024";\nmessage Foo { string s = 1 [ctype = CORD]; }',
      "e.proto:2:15: ctype option is not allowed under edition 2024 and beyond. Use the feature string_type = VIEW|CORD|STRING|... instead." },
    { 'edition = "2024";\npackage p;\nmessage foo_bar {}',
      "e.proto:3:9: Message name foo_bar should be TitleCase (features.enforce_naming_style = STYLE_LEGACY can be used to opt out of this check)" },
    { 'edition = "2024";\nmessage M {\n  int32 fooBar = 1;\n}',
      "e.proto:3:9: Field name fooBar should be lower_snake_case (features.enforce_naming_style = STYLE_LEGACY can be used to opt out of this check)" },
    { 'edition = "2024";\nmessage M {\n  int32 f_1 = 1;\n}',
      "e.proto:3:9: Field name f_1 contains style violating underscores (features.enforce_naming_style = STYLE_LEGACY can be used to opt out of this check)" },
    { 'edition = "2024";\nenum E {\n  lower = 0;\n}',
      "e.proto:3:3: Enum value name lower should be UPPER_SNAKE_CASE (features.enforce_naming_style = STYLE_LEGACY can be used to opt out of this check)" },
    { 'edition = "2024";\npackage My.Pkg;',
      "e.proto:2:1: Package name My.Pkg should be lower_snake_case (features.enforce_naming_style = STYLE_LEGACY can be used to opt out of this check)" },
    { 'edition = "2024";\nservice s {}',
      "e.proto:2:9: Service name s should begin with a capital letter (features.enforce_naming_style = STYLE_LEGACY can be used to opt out of this check)" },
    { 'edition = "2023";\nimport option "o.proto";', "e.proto:2:8: option import is not supported before edition 2024." },
    { 'edition = "2024";\nimport option "o.proto";\nimport "o.proto";',
      "e.proto:3:8: imports should precede any option imports to ensure proto files can roundtrip." },
    { 'edition = "2024";\nimport weak "o.proto";',
      "e.proto:2:8: weak import is not supported in edition 2024 and above. Consider using option import instead." },
    { 'edition = "2023";\noption java_string_check_utf8 = true;',
      "e.proto:1:1: File option java_string_check_utf8 is not allowed under editions. Use the (pb.java).utf8_validation feature to control this behavior." },
  }
  for _, r in ipairs(rows) do
    it(r[2]:match("^e%.proto:%d+:%d+: (.*)$"):sub(1, 70), function()
      local ok, err = compile(r[1])
      assert.is_nil(ok)
      assert.equal("dynpb: compile: " .. r[2], err)
    end)
  end

  it("edition 2024: STYLE_LEGACY opts out of the naming style; 2023 does not check it", function()
    assert.is_string(compile('edition = "2024";\noption features.enforce_naming_style = STYLE_LEGACY;\nmessage foo_bar { int32 fooBar = 1; }'))
    assert.is_string(compile('edition = "2023";\nmessage foo_bar { int32 fooBar = 1; }'))
  end)

  it("edition 2024: a nested type is local unless exported, a top-level one exported unless local", function()
    local A = 'edition = "2024";\npackage p;\nmessage Outer {\n  message Inner {}\n  export message Pub {}\n}\nlocal message Hidden {}\n'
    local function use(t)
      return dynpb.compile { files = { "b.proto" }, sources = { ["a.proto"] = A,
        ["b.proto"] = 'edition = "2024";\nimport "a.proto";\nmessage B {\n  ' .. t .. ' x = 1;\n}' } }
    end
    assert.is_string(use("p.Outer"))
    assert.is_string(use("p.Outer.Pub"))
    local ok, err = use("p.Outer.Inner")
    assert.is_nil(ok)
    assert.equal('dynpb: compile: b.proto:4:3: Symbol "p.Outer.Inner", defined in "a.proto"  is not visible from "b.proto". ' ..
      "It defaulted to local from file-level 'option features.default_symbol_visibility = 'EXPORT_TOP_LEVEL'; and cannot be accessed outside its own file", err)
    ok, err = use("p.Hidden")
    assert.equal('dynpb: compile: b.proto:4:3: Symbol "p.Hidden", defined in "a.proto"  is not visible from "b.proto". ' ..
      "It is explicitly marked 'local' and cannot be accessed outside its own file", err)
    -- the same file may use its local types; export/local are written as visibility
    local S = assert(dynpb.load_proto { files = { "google/protobuf/descriptor.proto" }, paths = { T.root .. "/csrc/gen/src" } })
    local f = S:message("google.protobuf.FileDescriptorSet"):decode(assert(compile(A .. "message U { Outer.Inner i = 1; Hidden h = 2; }"))).file[1]
    assert.equal("VISIBILITY_EXPORT", f.message_type[1].nested_type[2].visibility)
    assert.equal("VISIBILITY_LOCAL", f.message_type[2].visibility)
    assert.is_nil(f.message_type[1].visibility)
  end)

  it("edition 2024: `import option` makes a file's extensions usable as options only (option_dependency, field 15)", function()
    local src = {
      ["o.proto"] = 'edition = "2024";\npackage o;\nimport "google/protobuf/descriptor.proto";\n' ..
        "extend google.protobuf.MessageOptions { int32 tag = 50000; }\nmessage Unused {}\n",
      ["e.proto"] = 'edition = "2024";\nimport option "o.proto";\nmessage M {\n  option (o.tag) = 5;\n  int32 x = 1;\n}\n' }
    local set = assert(dynpb.compile { files = { "e.proto" }, sources = src })
    local S = assert(dynpb.load(set))
    local files = S:files()
    assert.equal("o.proto", files[#files - 1].name)             -- emitted before its importer, as buf does
    local D = assert(dynpb.load_proto { files = { "google/protobuf/descriptor.proto" }, paths = { T.root .. "/csrc/gen/src" } })
    local f = D:message("google.protobuf.FileDescriptorSet"):decode(set).file
    assert.same({ "o.proto" }, f[#f].option_dependency)
    assert.is_nil(f[#f].dependency)
    assert.equal(5, S:message("M"):options()["[o.tag]"])
    -- but not for field types
    src["e.proto"] = 'edition = "2024";\nimport option "o.proto";\nmessage M {\n  o.Unused u = 1;\n}\n'
    local ok, err = dynpb.compile { files = { "e.proto" }, sources = src }
    assert.is_nil(ok)
    assert.matches('e.proto:4:3: "o.Unused" seems to be defined in "o.proto", which is not imported by "e.proto"', err, 1, true)
  end)

  it("a proto3 file cannot use a closed editions enum", function()
    local ok, err = dynpb.compile { files = { "p3.proto" }, sources = {
      ["e.proto"] = 'edition = "2023";\nenum E { option features.enum_type = CLOSED; A = 0; }',
      ["p3.proto"] = 'syntax = "proto3";\nimport "e.proto";\nmessage P {\n  E e = 1;\n}' } }
    assert.is_nil(ok)
    assert.equal('dynpb: compile: p3.proto:4:3: Enum type "E" is not an open enum, but is used in "P" which is a proto3 message type.', err)
  end)

  it("JSON name conflicts are allowed under json_format = LEGACY_BEST_EFFORT (a warning in protoc)", function()
    assert.is_string(compile('edition = "2023";\nmessage M {\n  option features.json_format = LEGACY_BEST_EFFORT;\n  int32 foo_bar = 1;\n  int32 fooBar = 2;\n}'))
  end)

  it("defaults and closed enums are fine with explicit presence; first value may be non-zero when closed", function()
    assert.is_string(compile([[edition = "2023";
enum E { option features.enum_type = CLOSED; A = 1; }
message M {
  int32 a = 1 [default = 3];
  E e = 2 [default = A];
  int32 r = 3 [features.field_presence = LEGACY_REQUIRED];
  reserved old_name, other;
}]]))
  end)
end)
