-- dynpb.compile / dynpb.load_proto: a .proto compiler whose output is the
-- bytes of Debian's protoc 3.21.12 --include_imports --descriptor_set_out.
-- protoc is run on the same inputs (test-time tool, apt protobuf-compiler).
local dynpb = require "dynpb"
package.path = T.specdir .. "/protoc/?.lua;" .. package.path
local lib = require "lib"
local gen = require "gen"

local SLOW = T.gc_stress or os.getenv("DYNPB_VALGRIND") ~= nil or os.getenv("DYNPB_SLOW") ~= nil

local tmpdir
local function tmp()
  if not tmpdir then
    tmpdir = os.tmpname()
    os.remove(tmpdir)
    assert(os.execute("mkdir -p " .. lib.q(tmpdir)))
  end
  return tmpdir
end
teardown(function() if tmpdir then os.execute("rm -rf " .. lib.q(tmpdir)) end end)

-- writes name = text pairs under a fresh directory, returns it
local dirs = 0
local function files_dir(t)
  dirs = dirs + 1
  local d = tmp() .. "/d" .. dirs
  for name, text in pairs(t) do
    local sub = (d .. "/" .. name):match("^(.*)/[^/]*$")
    os.execute("mkdir -p " .. lib.q(sub))
    lib.write(d .. "/" .. name, text)
  end
  return d
end

local function same_as_protoc(paths, files)
  local st, a = lib.compare(dynpb, paths, files)
  assert(st == "same", tostring(a))
end

-- the fixtures that import google/api/*.proto find them in Debian's
-- golang-github-gogo-googleapis-dev (.ci/deps.sh)
local GAPI = "/usr/share/gocode/src/github.com/gogo/googleapis"

describe("dynpb.compile is byte-identical to protoc", function()
  it("on every .proto of /usr/include/google/protobuf (well-known types, plugin.proto)", function()
    local n = 0
    for _, f in ipairs(lib.find("/usr/include/google/protobuf")) do
      same_as_protoc({ "/usr/include" }, { "google/protobuf/" .. f })
      n = n + 1
    end
    assert.is_true(n >= 12)
  end)

  it("on the project's fixtures (spec/fixtures/proto, bench/fixtures)", function()
    for _, dir in ipairs({ T.specdir .. "/fixtures/proto", T.root .. "/bench/fixtures" }) do
      local all = lib.find(dir)
      assert.is_true(#all > 0)
      for _, f in ipairs(all) do same_as_protoc({ dir, GAPI }, { f }) end
      -- several files at once, shared imports once (or protoc's error too)
      local st, a = lib.compare(dynpb, { dir, GAPI }, all)
      assert(st == "same" or st == "both-fail", tostring(a))
    end
  end)

  it("on Debian's protobuf test protos (unittest*.proto, map_unittest.proto, ...)", function()
    local src = assert(lib.debian_src(T.specdir))
    local n = 0
    for i, f in ipairs(lib.find(src .. "/google/protobuf")) do
      -- (under valgrind / ASan / GC stress every 4th file)
      if not SLOW or i % 4 == 1 then
        local st, a = lib.compare(dynpb, { src }, { "google/protobuf/" .. f })
        -- a few need files from elsewhere in the tree: then both must fail
        assert(st == "same" or st == "both-fail", f .. ": " .. tostring(a))
        if st == "same" then n = n + 1 end
      end
    end
    assert.is_true(n >= (SLOW and 15 or 60), "identical files: " .. n)
  end)

  it("on random .proto sets (spec/protoc/gen.lua)", function()
    local d = tmp() .. "/rand"
    os.execute("mkdir -p " .. lib.q(d))
    for seed = 1001, SLOW and 1010 or 1060 do
      local set = gen.set(seed)
      for _, f in ipairs(set) do lib.write(d .. "/" .. f.name, f.text) end
      local st, a, b = lib.compare(dynpb, { d }, { set[#set].name })
      assert(st == "same", ("seed %d: %s %s"):format(seed, tostring(a), tostring(b)))
    end
  end)

  it("with source_info = true (--include_source_info) on the WKT, fixtures, Debian test protos", function()
    local n = 0
    for _, f in ipairs(lib.find("/usr/include/google/protobuf")) do
      local st, a = lib.compare(dynpb, { "/usr/include" }, { "google/protobuf/" .. f }, true)
      assert(st == "same", f .. ": " .. tostring(a))
      n = n + 1
    end
    for _, dir in ipairs({ T.specdir .. "/fixtures/proto", T.root .. "/bench/fixtures" }) do
      for _, f in ipairs(lib.find(dir)) do
        local st, a = lib.compare(dynpb, { dir, GAPI }, { f }, true)
        assert(st == "same", f .. ": " .. tostring(a))
        n = n + 1
      end
    end
    local src = assert(lib.debian_src(T.specdir))
    for i, f in ipairs(lib.find(src .. "/google/protobuf")) do
      if not SLOW or i % 4 == 2 then
        local st, a = lib.compare(dynpb, { src }, { "google/protobuf/" .. f }, true)
        assert(st == "same" or st == "both-fail", f .. ": " .. tostring(a))
        n = n + 1
      end
    end
    assert.is_true(n >= (SLOW and 35 or 80))
  end)

  it("with source_info = true on random sets (comments everywhere)", function()
    local d = tmp() .. "/rand_si"
    os.execute("mkdir -p " .. lib.q(d))
    for seed = 2001, SLOW and 2005 or 2030 do
      local set = gen.set(seed)
      for _, f in ipairs(set) do lib.write(d .. "/" .. f.name, f.text) end
      local st, a, b = lib.compare(dynpb, { d }, { set[#set].name }, true)
      assert(st == "same", ("seed %d: %s %s"):format(seed, tostring(a), tostring(b)))
    end
  end)

  it("on mutated random sets: the same bytes, or the same error (spec/protoc/gen.lua mutate)", function()
    local d = tmp() .. "/mut"
    os.execute("mkdir -p " .. lib.q(d))
    local fails = 0
    for seed = 1, SLOW and 10 or 60 do
      local set = gen.mutate(gen.set(7000 + seed), seed)
      for _, f in ipairs(set) do lib.write(d .. "/" .. f.name, f.text) end
      local st, a = lib.compare_strict(dynpb, { d }, { set[#set].name })
      assert(st, ("mutation %d: %s"):format(seed, tostring(a)))
      if st == "both-fail" then fails = fails + 1 end
      for _, f in ipairs(set) do os.remove(d .. "/" .. f.name) end
    end
    assert.is_true(fails > 0)    -- some mutations are errors: the error path is compared too
  end)

  it("comments: leading, trailing, detached, block comments with stars", function()
    local text = table.concat({
      '// file comment', '', 'syntax = "proto2";  // trailing syntax', '', '// detached one', '',
      '/* detached', ' * block */', '', '/**', ' * Leading of M.', ' */', 'message M {',
      '  // leading f', '  optional int32 f = 1;  // trailing f', '  /* same line */ optional int32 g = 2;',
      '  optional int32 h = 3; /* block trailing */', '  // for the enum', '', '  enum E { /* x */ A = 1; }',
      '}  // after M', '// dangling at the end', '' }, "\n")
    local d = files_dir({ ["c.proto"] = text })
    local st, a = lib.compare(dynpb, { d }, { "c.proto" }, true)
    assert(st == "same", tostring(a))
  end)

  it("without include_imports: only the named files", function()
    local src = { ["a.proto"] = 'syntax = "proto3"; message A {}',
                  ["b.proto"] = 'syntax = "proto3"; import "a.proto"; message B { A a = 1; }' }
    local d = files_dir(src)
    local all = assert(dynpb.compile { files = { "b.proto" }, paths = { d } })
    local one = assert(dynpb.compile { files = { "b.proto" }, paths = { d }, include_imports = false })
    local out = os.tmpname()
    assert(os.execute("protoc --descriptor_set_out=" .. out .. " -I" .. lib.q(d) .. " b.proto"))
    assert.are.equal(lib.read(out), one)
    os.remove(out)
    assert.is_true(#one < #all)
  end)
end)

describe("dynpb.compile sources", function()
  local text = 'syntax = "proto3"; package m; import "google/protobuf/timestamp.proto";\n' ..
               'message Event { google.protobuf.Timestamp at = 1; map<string, int32> n = 2; }\n'

  it("in memory need no files; the well-known types are built in", function()
    local d = files_dir({ ["m/event.proto"] = text })
    local ref = assert(lib.protoc({ d, "/usr/include" }, { "m/event.proto" }))
    local got = assert(dynpb.compile { files = { "m/event.proto" }, sources = { ["m/event.proto"] = text } })
    assert.are.equal(ref, got)
  end)

  it("sources come before paths, paths in order, before the built-ins", function()
    local d1 = files_dir({ ["x.proto"] = 'syntax = "proto3"; message FromD1 {}' })
    local d2 = files_dir({ ["x.proto"] = 'syntax = "proto3"; message FromD2 {}' })
    local function types(bytes) return dynpb.load(bytes):types() end
    assert.are.same({ "FromD1" }, types(assert(dynpb.compile { files = { "x.proto" }, paths = { d1, d2 } })))
    assert.are.same({ "FromD2" }, types(assert(dynpb.compile { files = { "x.proto" }, paths = { d2, d1 } })))
    assert.are.same({ "FromSrc" }, types(assert(dynpb.compile { files = { "x.proto" }, paths = { d1 },
      sources = { ["x.proto"] = 'syntax = "proto3"; message FromSrc {}' } })))
  end)

  it("an import cannot leave the include directories (no '..', '.', '//', backslash)", function()
    local d = files_dir({ ["in/a.proto"] = 'syntax = "proto3"; import "../out.proto";',
                          ["out.proto"] = 'syntax = "proto3"; message Out {}' })
    local got, err = dynpb.compile { files = { "a.proto" }, paths = { d .. "/in" } }
    assert.is_nil(got)
    assert.matches('Import "../out.proto" was not found or had errors.', err, 1, true)
    got = dynpb.compile { files = { "./a.proto" }, paths = { d .. "/in" } }
    assert.is_nil(got)
  end)

  it("a file named like a built-in overrides it", function()
    local own = 'syntax = "proto3"; package google.protobuf; message Timestamp { int64 s = 1; }'
    local bytes = assert(dynpb.compile { files = { "m/event.proto" },
      sources = { ["m/event.proto"] = text, ["google/protobuf/timestamp.proto"] = own } })
    local f = dynpb.load(bytes):message("google.protobuf.Timestamp"):fields()
    assert.are.equal("s", f[1].name)
  end)

  it("load_proto = load(compile(opts)): the same schema object, a cache hit", function()
    local opts = { files = { "m/event.proto" }, sources = { ["m/event.proto"] = text } }
    local s1 = assert(dynpb.load_proto(opts))
    local s2 = assert(dynpb.load(assert(dynpb.compile(opts))))
    assert.are.equal(s1, s2)
    local e = s1:message("m.Event")
    local back = e:decode(e:encode { at = { seconds = 5 }, n = { a = 1 } })
    assert.are.equal(5, back.at.seconds)
    local nope, err = dynpb.load_proto { files = { "nope.proto" } }
    assert.is_nil(nope)
    assert.matches("nope.proto: File not found.", err, 1, true)
  end)

  it("misuse raises", function()
    assert.has_error(function() dynpb.compile() end)
    assert.has_error(function() dynpb.compile { files = {} } end)
    assert.has_error(function() dynpb.compile { files = { 1 } } end)
    assert.has_error(function() dynpb.compile { files = { "a" }, bogus = 1 } end)
    assert.has_error(function() dynpb.compile { files = { "a" }, sources = { a = 1 } } end)
    assert.has_error(function() dynpb.compile { files = { "a" }, paths = "x" } end)
    assert.has_error(function() dynpb.compile { files = { "a" }, include_imports = 1 } end)
  end)
end)

-- {what, files (name = text; the first row name is compiled), expected message}
-- Each is also given to protoc: dynpb's error must be protoc's first error line.
local P3 = 'syntax = "proto3";\n'
local P2 = 'syntax = "proto2";\n'
local error_rows = {
  {"syntax error", { ["a.proto"] = P3 .. "message A { int32 x = 1 }\n" }, 'a.proto:2:25: Expected ";".'},
  {"unknown syntax", { ["a.proto"] = 'syntax = "proto4";\n' },
   'a.proto:1:10: Unrecognized syntax identifier "proto4".  This parser only recognizes "proto2" and "proto3".'},
  {"unterminated string", { ["a.proto"] = P3 .. 'option java_package = "x\n;' }, "String literals cannot cross line boundaries."},
  {"unknown type", { ["a.proto"] = P3 .. "message A { Missing x = 1; }\n" }, 'a.proto:2:13: "Missing" is not defined.'},
  {"scoped name resolved in the innermost scope",
   { ["a.proto"] = P3 .. "package p; message B { message C {} } message A { message B {} B.C x = 1; }\n" },
   '"B.C" is resolved to "p.A.B.C", which is not defined.'},
  {"duplicate message", { ["a.proto"] = P3 .. "message A {}\nmessage A {}\n" }, 'a.proto:3:9: "A" is already defined.'},
  {"duplicate field name", { ["a.proto"] = P3 .. "package p; message A { int32 x = 1; int32 x = 2; }\n" },
   '"x" is already defined in "p.A".'},
  {"duplicate field number", { ["a.proto"] = P3 .. "message A { int32 x = 1; int32 y = 1; }\n" },
   'Field number 1 has already been used in "A" by field "x".'},
  {"reserved number", { ["a.proto"] = P3 .. "message A { reserved 2 to 4; int32 x = 3; }\n" },
   'Field "x" uses reserved number 3.'},
  {"reserved name", { ["a.proto"] = P3 .. 'message A { reserved "x"; int32 x = 3; }\n' }, 'Field name "x" is reserved.'},
  {"field number 0", { ["a.proto"] = P3 .. "message A { int32 x = 0; }\n" }, "Field numbers must be positive integers."},
  {"field number in 19000-19999", { ["a.proto"] = P3 .. "message A { int32 x = 19500; }\n" },
   "Field numbers 19000 through 19999 are reserved for the protocol buffer library implementation."},
  {"invalid map key", { ["a.proto"] = P3 .. "message A { map<double, int32> m = 1; }\n" },
   "Key in map fields cannot be float/double, bytes or message types."},
  {"proto3 required", { ["a.proto"] = P3 .. "message A { required int32 x = 1; }\n" },
   "Required fields are not allowed in proto3."},
  {"proto3 default", { ["a.proto"] = P3 .. "message A { int32 x = 1 [default = 5]; }\n" },
   "Explicit default values are not allowed in proto3."},
  {"proto3 group", { ["a.proto"] = P3 .. "message A { optional group G = 1 { } }\n" },
   "Groups are not supported in proto3 syntax."},
  {"proto3 first enum value", { ["a.proto"] = P3 .. "enum E { ONE = 1; }\n" },
   "The first enum value must be zero in proto3."},
  {"enum value names are siblings", { ["a.proto"] = P3 .. "package p; enum E { X = 0; } enum F { X = 0; }\n" },
   'a.proto:2:39: "X" is already defined in "p".'},
  {"enum alias without allow_alias", { ["a.proto"] = P2 .. "enum E { A = 1; B = 1; }\n" },
   '"B" uses the same enum value as "A".'},
  {"unknown option", { ["a.proto"] = P3 .. "option java_pakage = \"x\";\n" },
   'Option "java_pakage" unknown. Ensure that your proto definition file imports the proto which defines the option.'},
  {"bad option value type", { ["a.proto"] = P3 .. "option java_multiple_files = 3;\n" },
   'Value must be identifier for boolean option "google.protobuf.FileOptions.java_multiple_files".'},
  {"bad enum option value", { ["a.proto"] = P3 .. "option optimize_for = FAST;\n" },
   'Enum type "google.protobuf.FileOptions.OptimizeMode" has no value named "FAST" for option'},
  {"option set twice", { ["a.proto"] = P3 .. 'option java_package = "a";\noption java_package = "b";\n' },
   'Option "java_package" was already set.'},
  {"unknown custom option", { ["a.proto"] = P3 .. "message A { option (nope) = 1; }\n" }, 'Option "(nope)" unknown.'},
  {"missing import", { ["a.proto"] = P3 .. 'import "missing.proto";\n' },
   'a.proto:2:1: Import "missing.proto" was not found or had errors.'},
  {"symbol from a file not imported",
   { ["a.proto"] = P3 .. 'import "b.proto";\nmessage A { C c = 1; }\n',
     ["b.proto"] = P3 .. 'import "c.proto";\n', ["c.proto"] = P3 .. "message C {}\n" },
   '"C" seems to be defined in "c.proto", which is not imported by "a.proto".'},
  {"import cycle", { ["a.proto"] = P3 .. 'import "b.proto";\n', ["b.proto"] = P3 .. 'import "a.proto";\n' },
   "File recursively imports itself: a.proto -> b.proto -> a.proto"},
  {"json_name conflict (proto3)", { ["a.proto"] = P3 .. "message A { int32 foo_bar = 1; int32 fooBar = 2; }\n" },
   'The JSON camel-case name of field "fooBar" conflicts with field "foo_bar". This is not allowed in proto3.'},
  {"json_name on an extension", { ["a.proto"] = P2 .. 'message A { extensions 10 to 20; }\nextend A { optional int32 x = 10 [json_name = "y"]; }\n' },
   "option json_name is not allowed on extension fields."},
  {"extension number outside the ranges", { ["a.proto"] = P2 .. "message A { extensions 10 to 20; }\nextend A { optional int32 x = 30; }\n" },
   '"A" does not declare 30 as an extension number.'},
  {"default of the wrong type", { ["a.proto"] = P2 .. "message A { optional int32 x = 1 [default = \"s\"]; }\n" },
   "Expected integer for field default value."},
  {"enum default not a value", { ["a.proto"] = P2 .. "enum E { A = 1; }\nmessage M { optional E e = 1 [default = B]; }\n" },
   'Enum type "E" has no value named "B".'},
  {"group name lower case", { ["a.proto"] = P2 .. "message A { optional group g = 1 {} }\n" },
   "Group names must start with a capital letter."},
  {"negative identifier in an option", { ["a.proto"] = P2 .. "option java_package = -x;\n" },
   "Invalid '-' symbol before identifier."},
  {"unsigned default negative", { ["a.proto"] = P2 .. "message A { optional uint32 x = 1 [default = -1]; }\n" },
   "Unsigned field can't have negative default value."},
  {"missing closing brace", { ["a.proto"] = P3 .. "message A {\n" },
   "Reached end of input in message definition (missing '}')."},
}

describe("dynpb.compile errors are protoc's", function()
  for _, row in ipairs(error_rows) do
    it(row[1], function()
      local got, err = dynpb.compile { files = { "a.proto" }, sources = row[2] }
      assert.is_nil(got)
      assert.matches(row[3], err, 1, true)
      assert.matches("^dynpb: compile: ", err)
      -- protoc says the same: one of its error lines (the first, but for
      -- a missing import, where protoc first says "x: File not found.")
      local d = files_dir(row[2])
      local ref, perr = lib.protoc({ d }, { "a.proto" })
      assert.is_nil(ref)
      local mine, lines = err:sub(#"dynpb: compile: " + 1), {}
      for l in perr:gmatch("[^\n]+") do lines[#lines + 1] = l end
      if row[1] == "missing import" then
        assert.are.equal("missing.proto: File not found.", lines[1])
        assert.are.equal(mine, lines[2])
      else
        assert.are.equal(lines[1], mine)
      end
    end)
  end
end)

describe("dynpb.compile limits", function()
  it("a 100k-member enum compiles (bounded time: hashing, not pairwise checks)", function()
    local n = SLOW and 5000 or 100000
    local t = { P3, "enum Big {\n" }
    for i = 0, n - 1 do t[#t + 1] = ("  V%d = %d;\n"):format(i, i) end
    t[#t + 1] = "}\n"
    local bytes = assert(dynpb.compile { files = { "big.proto" }, sources = { ["big.proto"] = table.concat(t) } })
    assert.are.equal(n, #dynpb.load(bytes):enum_values("Big"))
  end)

  -- (60k: dynpb.load takes up to 65534 fields a message)
  it("a 60k-field message (proto3 optional: 60k synthetic oneofs) and 30k reserved ranges compile", function()
    local n = SLOW and 3000 or 60000
    local t = { P3, "message M {\n" }
    for i = 1, n do t[#t + 1] = ("  optional int32 f%d = %d;\n"):format(i, i < 19000 and i or i + 1000) end
    for i = 1, math.floor(n / 2) do t[#t + 1] = ("  reserved %d;\n"):format(300000 + 2 * i) end
    t[#t + 1] = "}\n"
    local bytes = assert(dynpb.compile { files = { "m.proto" }, sources = { ["m.proto"] = table.concat(t) } })
    assert.are.equal(n, #assert(dynpb.load(bytes)):message("M"):fields())
  end)

  it("nesting past the depth limit is an error, not a crash", function()
    local deep = P3 .. ("message M {"):rep(200) .. ("}"):rep(200)
    local got, err = dynpb.compile { files = { "d.proto" }, sources = { ["d.proto"] = deep } }
    assert.is_nil(got)
    assert.matches("Nesting too deep", err)
    local agg = P2 .. 'import "google/protobuf/descriptor.proto";\n' ..
      "message R { optional R r = 1; }\nextend google.protobuf.FileOptions { optional R ro = 5000; }\n" ..
      "option (ro) = " .. ("{ r "):rep(300) .. ("}"):rep(300) .. ";\n"
    got, err = dynpb.compile { files = { "g.proto" }, sources = { ["g.proto"] = agg } }
    assert.is_nil(got)
    assert.matches("nested too deep", err)
  end)

  it("a source over the size limit is an error", function()
    local big = P3 .. "//" .. ("x"):rep(64 * 1024 * 1024) .. "\n"
    local got, err = dynpb.compile { files = { "b.proto" }, sources = { ["b.proto"] = big } }
    assert.is_nil(got)
    assert.matches("larger than the limit", err)
  end)

  it("garbage is an error with a position", function()
    for _, s in ipairs({ "\0\1\2", "message", "message A { int32 x = 99999999999999999999; }", "enum E { A = 0x; }",
                         "message A { option (a.b = 1; }", '"\\', "/* open" }) do
      local got, err = dynpb.compile { files = { "x.proto" }, sources = { ["x.proto"] = s } }
      assert.is_nil(got)
      assert.matches("^dynpb: compile: x%.proto:%d+:%d+: ", err)
    end
  end)
end)
