-- The core: loading, the fingerprint cache, enum constants, reflection.
local dynpb = require "dynpb"
local pb = T.pb

local v1 = T.read(T.root .. "/examples/schemas/domain_v1.pb")
local v2 = T.read(T.root .. "/examples/schemas/domain_v2.pb")
local shop = T.fixture("shop.pb")

-- hex SHA-256 by the system's sha256sum, to check fingerprints against
local function sha256sum(path)
  local p = assert(io.popen("sha256sum '" .. path .. "'"))
  local out = p:read("*a")
  p:close()
  return out:match("^(%x+)")
end

describe("dynpb.fingerprint", function()
  local rows = {
    -- {name, input, expected (FIPS 180-4 test vectors)}
    {"empty", "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    {"abc", "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    {"two blocks", "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    {"55 bytes (one padding block)", ("a"):rep(55),
     "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
    {"56 bytes (two padding blocks)", ("a"):rep(56),
     "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
    {"a million a", ("a"):rep(1000000),
     "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
  }
  for _, r in ipairs(rows) do
    it(r[1], function() assert.equal(r[3], dynpb.fingerprint(r[2])) end)
  end

  it("equals sha256sum of the file, and schema.fingerprint", function()
    local path = T.root .. "/examples/schemas/domain_v1.pb"
    local s = assert(dynpb.load(v1))
    assert.equal(sha256sum(path), dynpb.fingerprint(v1))
    assert.equal(sha256sum(path), s.fingerprint)
  end)

  it("raises on a non-string", function()
    assert.has_error(function() dynpb.fingerprint({}) end)
  end)
end)

describe("dynpb.load", function()
  before_each(function() dynpb.configure{pin = 4} end)

  it("gives the same object for the same bytes, with one miss then hits", function()
    T.gc()
    local bytes = v1 .. "" -- same content
    local st0 = dynpb.stats()
    local a = assert(dynpb.load(v1))
    local b = assert(dynpb.load(bytes))
    local st1 = dynpb.stats()
    assert.is_true(rawequal(a, b))
    -- v1 may already be cached (alive or pinned) from an earlier test
    assert.equal(2, (st1.hits - st0.hits) + (st1.misses - st0.misses))
    assert.is_true(st1.hits - st0.hits >= 1)
  end)

  it("counts a miss for new bytes and a hit for the same bytes again", function()
    local bytes = pb.set(pb.file("fresh_" .. tostring(os.time()) .. ".proto",
      {package = "fresh", messages = {pb.message("M", {pb.field("a", 1)})}}))
    local st0 = dynpb.stats()
    local a = assert(dynpb.load(bytes))
    local st1 = dynpb.stats()
    local b = assert(dynpb.load(bytes))
    local st2 = dynpb.stats()
    assert.equal(st0.misses + 1, st1.misses)
    assert.equal(st0.hits, st1.hits)
    assert.equal(st1.hits + 1, st2.hits)
    assert.equal(st1.misses, st2.misses)
    assert.is_true(rawequal(a, b))
    assert.equal(st0.live + 1, st1.live)
    assert.is_true(st1.bytes > st0.bytes)
  end)

  it("frees a schema nothing references: live and bytes fall", function()
    dynpb.configure{pin = 0}
    T.gc()
    local st0 = dynpb.stats()
    local s = assert(dynpb.load(pb.set(pb.file("gc_me.proto",
      {messages = {pb.message("GcMe", {pb.field("a", 1)})}}))))
    local st1 = dynpb.stats()
    assert.equal(st0.live + 1, st1.live)
    assert.is_true(st1.bytes > st0.bytes)
    s = nil
    T.gc()
    local st2 = dynpb.stats()
    assert.equal(st0.live, st2.live)
    assert.equal(st0.bytes, st2.bytes)
    assert.is_nil(s)
  end)

  it("counts the key table an encode builds on a message's first encode, and frees it with the schema", function()
    -- encode's key table is built on first use, not at load (most messages of
    -- a big set are never encoded); 300 fields give one bigger than a block
    dynpb.configure{pin = 0}
    T.gc()
    local st0 = dynpb.stats()
    local fields = {}
    for i = 1, 300 do fields[i] = pb.field("f" .. i, i) end
    local s = assert(dynpb.load(pb.set(pb.file("wide_keys.proto", {messages = {pb.message("Wide", fields)}}))))
    local st1 = dynpb.stats()
    local H = assert(s:message("Wide"))
    assert.equal("\8\7", assert(H:encode({f1 = 7})))
    local st2 = dynpb.stats()
    assert.is_true(st2.bytes > st1.bytes, "the first encode builds the key table")
    assert.equal("\136\1\9", assert(H:encode({f17 = 9})))
    assert.equal(st2.bytes, dynpb.stats().bytes, "built once")
    s, H = nil, nil
    T.gc()
    local st3 = dynpb.stats()
    assert.equal(st0.live, st3.live)
    assert.equal(st0.bytes, st3.bytes)
  end)

  it("keeps a schema alive through a message handle", function()
    dynpb.configure{pin = 0}
    T.gc()
    local st0 = dynpb.stats()
    local h = assert(assert(dynpb.load(pb.set(pb.file("h.proto",
      {messages = {pb.message("H", {pb.field("a", 1)})}})))):message("H"))
    T.gc()
    assert.equal(st0.live + 1, dynpb.stats().live)
    assert.equal("H", h.name)
    assert.equal("a", h:fields()[1].name)
    h = nil
    T.gc()
    assert.equal(st0.live, dynpb.stats().live)
  end)

  it("pins the most recently used schemas, bounded by pin", function()
    dynpb.configure{pin = 2}
    T.gc()
    local st0 = dynpb.stats()
    local sets = {}
    for i = 1, 5 do
      sets[i] = pb.set(pb.file("pin" .. i .. ".proto",
        {messages = {pb.message("P" .. i, {pb.field("a", 1)})}}))
      assert(dynpb.load(sets[i]))   -- not referenced: only the pins hold it
    end
    T.gc()
    local st = dynpb.stats()
    assert.equal(2, st.pinned)
    assert.equal(st0.live - st0.pinned + 2, st.live)
    -- the two most recent are still cached: loading them is a hit
    local h0 = st.hits
    assert(dynpb.load(sets[5]))
    assert(dynpb.load(sets[4]))
    assert.equal(h0 + 2, dynpb.stats().hits)
    -- the oldest was collected: a miss
    local m0 = dynpb.stats().misses
    assert(dynpb.load(sets[1]))
    assert.equal(m0 + 1, dynpb.stats().misses)
  end)

  it("pin = 0 keeps nothing strongly; lowering pin trims the list", function()
    dynpb.configure{pin = 3}
    for i = 1, 3 do
      assert(dynpb.load(pb.set(pb.file("trim" .. i .. ".proto",
        {messages = {pb.message("T" .. i)}}))))
    end
    assert.equal(3, dynpb.stats().pinned)
    dynpb.configure{pin = 1}
    assert.equal(1, dynpb.stats().pinned)
    dynpb.configure{pin = 0}
    assert.equal(0, dynpb.stats().pinned)
    T.gc()
    local live = dynpb.stats().live
    assert(dynpb.load(pb.set(pb.file("trim4.proto", {messages = {pb.message("T4")}}))))
    T.gc()
    assert.equal(live, dynpb.stats().live)
  end)

  it("load {pin = false} does not pin", function()
    dynpb.configure{pin = 4}
    local n0 = dynpb.stats().pinned
    local s = assert(dynpb.load(pb.set(pb.file("nopin.proto", {messages = {pb.message("N")}})),
                                {pin = false}))
    assert.equal(n0, dynpb.stats().pinned)
    assert.truthy(s.fingerprint)
  end)

  it("100,000 loads of the same set keep the heap and bytes flat", function()
    dynpb.configure{pin = 4}
    local keep = assert(dynpb.load(shop))
    local h0, b0 = T.heap(), dynpb.stats().bytes
    for _ = 1, 100000 do
      local s = dynpb.load(shop)
      if not rawequal(s, keep) then error("a different object for the same bytes") end
    end
    local h1, b1 = T.heap(), dynpb.stats().bytes
    assert.equal(b0, b1)
    assert.is_true(h1 - h0 < 64, ("heap grew by %.1f KiB"):format(h1 - h0))
  end)

  it("1,000 distinct versions loaded in turn keep bytes bounded by the pin count", function()
    dynpb.configure{pin = 4}
    T.gc()
    local base = dynpb.stats()
    local newest
    local maxlive, maxbytes = 0, 0
    for i = 1, 1000 do
      -- each version differs (a new enum value), like a registry's history
      newest = assert(dynpb.load(pb.set(pb.file("versions.proto", {package = "ver",
        enums = {pb.enum("E", {{"E_ZERO", 0}, {"E_V" .. i, i}})},
        messages = {pb.message("M", {pb.field("a", 1), pb.field("b", 2)})}}))))
      if i % 100 == 0 then
        T.gc()
        local st = dynpb.stats()
        if st.live > maxlive then maxlive = st.live end
        if st.bytes > maxbytes then maxbytes = st.bytes end
      end
    end
    T.gc()
    local st = dynpb.stats()
    -- at most the pinned 4 (the newest among them) beyond what was live before
    assert.is_true(maxlive <= base.live + 4, "live " .. maxlive)
    local per = (st.bytes - base.bytes) / math.max(1, st.live - base.live)
    assert.is_true(maxbytes <= base.bytes + 5 * per, "bytes " .. maxbytes)
    assert.equal("E_V1000", newest:enum("ver.E")[1000])
  end)

  it("load_file reads a file; a missing file is nil, err", function()
    local s = assert(dynpb.load_file(T.root .. "/examples/schemas/domain_v1.pb"))
    assert.equal(dynpb.fingerprint(v1), s.fingerprint)
    local n, err = dynpb.load_file("/nonexistent/x.pb")
    assert.is_nil(n)
    assert.matches("cannot open '/nonexistent/x.pb'", err, 1, true)
    n, err = dynpb.load_file(T.specdir)
    assert.is_nil(n)
    assert.matches("not a regular file", err, 1, true)
  end)

  it("raises on API misuse", function()
    assert.has_error(function() dynpb.load(42) end)
    assert.has_error(function() dynpb.load(nil) end)
    assert.has_error(function() dynpb.load(v1, "x") end)
    assert.has_error(function() dynpb.load(v1, {bogus = 1}) end)
    assert.has_error(function() dynpb.configure{pin = -1} end)
    assert.has_error(function() dynpb.configure{pin = 1.5} end)
    assert.has_error(function() dynpb.configure{pins = 1} end)
    assert.has_error(function() dynpb.load_file() end)
  end)
end)

describe("malformed descriptor sets", function()
  local function deep(n)
    local m = pb.message("L" .. n)
    for i = n - 1, 1, -1 do m = pb.message("L" .. i, nil, {m}) end
    return pb.set(pb.file("deep.proto", {messages = {m}}))
  end
  -- field 3 (nested_type) inside itself `levels` deep, built in linear time:
  -- the lengths are computed from the inside out, the headers joined outside in
  local function nest_bytes(levels)
    local lens, L = {}, 0
    for i = 1, levels do
      lens[i] = L
      L = 1 + #pb.varint(L) + L
    end
    local hdr = {}
    for i = levels, 1, -1 do hdr[#hdr + 1] = pb.tag(3, 2) .. pb.varint(lens[i]) end
    return pb.set(pb.file("x.proto", {messages = {table.concat(hdr)}}))
  end
  local rows = {
    -- {name, bytes, error substring}
    {"garbage", "\255\255\255\255garbage", "malformed descriptor set"},
    {"wire type 7", "\015", "invalid wire type"},
    {"truncated", v1:sub(1, #v1 - 7), "malformed descriptor set"},
    {"cut in half", v1:sub(1, 300), "malformed descriptor set"},
    {"length past the end", "\10\200\1abc", "length runs past"},
    {"empty", "", "contains no files"},
    {"missing import", T.fixture("shop_noimports.pb"),
     "imports 'common.proto', which is not in the set"},
    {"duplicate type across files", T.fixture("dup_a.pb") .. T.fixture("dup_b.pb"),
     "duplicate type name 'dup.Thing'"},
    {"the same file twice", v1 .. v1, "duplicate file"},
    {"unresolved type", pb.set(pb.file("u.proto", {messages = {
      pb.message("M", {pb.field("x", 1, 1, 11, ".nope.Missing")})}})),
     "field 'M.x': type '.nope.Missing' not found"},
    {"field number 0", pb.set(pb.file("z.proto", {messages = {
      pb.message("M", {pb.field("x", 0)})}})), "invalid field number 0"},
    {"field number too big", pb.set(pb.file("z.proto", {messages = {
      pb.message("M", {pb.field("x", 536870912)})}})), "invalid field number 536870912"},
    {"reserved field number", pb.set(pb.file("z.proto", {messages = {
      pb.message("M", {pb.field("x", 19000)})}})), "reserved"},
    {"duplicate field number", pb.set(pb.file("z.proto", {messages = {
      pb.message("M", {pb.field("x", 1), pb.field("y", 1)})}})), "duplicate field number 1"},
    {"duplicate field name", pb.set(pb.file("z.proto", {messages = {
      pb.message("M", {pb.field("x", 1), pb.field("x", 2)})}})), "duplicate field name"},
    {"bad field name", pb.set(pb.file("z.proto", {messages = {
      pb.message("M", {pb.field("x-y", 1)})}})), "invalid field name 'x-y'"},
    {"bad type name", pb.set(pb.file("z.proto", {messages = {pb.message("1M")}})),
     "invalid type name '1M'"},
    {"bad type number", pb.set(pb.file("z.proto", {messages = {
      pb.message("M", {pb.field("x", 1, 1, 19)})}})), "invalid type 19"},
    {"bad label", pb.set(pb.file("z.proto", {messages = {
      pb.message("M", {pb.field("x", 1, 4)})}})), "invalid label 4"},
    {"editions without an edition", pb.set(pb.file("e.proto", {syntax = "editions"})),
     "file 'e.proto': syntax 'editions' without an edition"},
    {"an unknown syntax", pb.set(pb.file("e.proto", {syntax = "proto4"})),
     "unsupported syntax 'proto4'"},
    {"enum with no values", pb.set(pb.file("z.proto", {enums = {pb.enum("E", {})}})),
     "enum 'E' has no values"},
    {"duplicate enum value name", pb.set(pb.file("z.proto", {enums = {
      pb.enum("E", {{"A", 0}, {"A", 1}})}})), "duplicate value name 'A'"},
    {"proto3 enum not starting at 0", pb.set(pb.file("z.proto", {syntax = "proto3",
      enums = {pb.enum("E", {{"A", 1}})}})), "must be 0"},
    {"enum used as message", pb.set(pb.file("z.proto", {
      enums = {pb.enum("E", {{"A", 0}})},
      messages = {pb.message("M", {pb.field("x", 1, 1, 11, ".E")})}})), "is not a message"},
    {"nested declarations 200 deep", deep(200), "nested deeper than 64"},
    {"100,000 nested levels", nest_bytes(100000), "malformed descriptor set"},
    {"file without a name", pb.len(1, pb.len(2, "pkg")), "has no name"},
  }
  for _, r in ipairs(rows) do
    it(r[1] .. " gives nil and a clear error", function()
      local st0 = dynpb.stats()
      local s, err = dynpb.load(r[2])
      assert.is_nil(s)
      assert.is_string(err)
      assert.matches(r[3], err, 1, true)
      assert.matches("^dynpb: load: ", err)
      -- nothing cached: the same bytes fail again, as a miss
      local s2, err2 = dynpb.load(r[2])
      assert.is_nil(s2)
      assert.equal(err, err2)
      assert.equal(st0.live, dynpb.stats().live)
    end)
  end

  it("a set 64 message levels deep is accepted", function()
    local s = assert(dynpb.load(deep(64)))
    local types = s:types()
    assert.equal(64, #types)
    assert.equal("L1.L2.L3", types[3])
  end)

  it("random corruptions of a valid set never crash", function()
    local seed = 12345
    local function rnd(n)  -- small LCG: the same cases on every Lua
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed % n
    end
    local ok, bad = 0, 0
    for _ = 1, 2000 do
      local b = {shop:byte(1, -1)}
      for _ = 1, 1 + rnd(4) do
        local i = 1 + rnd(#b)
        b[i] = rnd(256)
      end
      local s, err = dynpb.load(string.char(unpack and unpack(b) or table.unpack(b)))
      if s then ok = ok + 1 else
        bad = bad + 1
        assert.is_string(err)
      end
    end
    assert.is_true(bad > 0)
  end)
end)

describe("enums", function()
  local s1 = assert(dynpb.load(v1))

  it("is a constants table NAME -> number and number -> NAME", function()
    local C = assert(s1:enum("shop.v1.ServiceType"))
    assert.equal(1, C.GO_RIDE)
    assert.equal(2, C.GO_FOOD)
    assert.equal(0, C.SERVICE_TYPE_UNSPECIFIED)
    assert.equal("GO_RIDE", C[1])
    assert.is_nil(C.GO_SEND)
    assert.is_nil(C[3])
    assert.is_nil(C.nope)
  end)

  it("accepts a leading dot and caches the table", function()
    assert.is_true(rawequal(s1:enum("shop.v1.ServiceType"), s1:enum(".shop.v1.ServiceType")))
  end)

  it("maps an aliased number to the first declared name", function()
    local B = assert(s1:enum("shop.v1.BookingStatus"))
    assert.equal(2, B.COMPLETED)
    assert.equal(2, B.DONE)
    assert.equal("COMPLETED", B[2])
  end)

  it("is read-only", function()
    local C = s1:enum("shop.v1.ServiceType")
    assert.has_error(function() C.GO_SEND = 3 end)
    assert.has_error(function() C[9] = "X" end)
    assert.is_nil(C.GO_SEND)
  end)

  it("enum_values lists declaration order", function()
    local vals = assert(s1:enum_values("shop.v1.BookingStatus"))
    assert.same({{name = "STATUS_UNSPECIFIED", number = 0, options = {}},
                 {name = "CREATED", number = 1, options = {}},
                 {name = "COMPLETED", number = 2, options = {}},
                 {name = "DONE", number = 2, options = {}}}, vals)
  end)

  it("negative and nested enum values", function()
    local s = assert(dynpb.load(shop))
    assert.equal(-3, s:enum("shop.v1.Color").BLUE)
    assert.equal("BLUE", s:enum("shop.v1.Color")[-3])
    assert.equal(2, s:enum("shop.v1.Order.Line.Kind").SERVICE)
  end)

  it("unknown enum is nil, err", function()
    local e, err = s1:enum("shop.v1.Nope")
    assert.is_nil(e)
    assert.equal("dynpb: no enum named 'shop.v1.Nope' in schema " .. s1.fingerprint:sub(1, 12), err)
    e, err = s1:enum_values("shop.v1.Nope")
    assert.is_nil(e)
    assert.is_string(err)
  end)

  it("a new version's constant appears without restarting", function()
    local s2 = assert(dynpb.load(v2))
    assert.is_nil(s1:enum("shop.v1.ServiceType").GO_SEND)
    assert.equal(3, s2:enum("shop.v1.ServiceType").GO_SEND)
    assert.equal("GO_SEND", s2:enum("shop.v1.ServiceType")[3])
  end)
end)

describe("reflection", function()
  local s = assert(dynpb.load(shop))

  it("types() and enums() list full names without a dot", function()
    local types = s:types()
    local set = {}
    for _, t in ipairs(types) do set[t] = true end
    assert.is_true(set["shop.v1.Order"])
    assert.is_true(set["shop.v1.Item"])
    assert.is_true(set["common.Address"])
    assert.is_true(set["shop.v1.Order.Line"])
    assert.is_nil(set["shop.v1.Order.AttrsEntry"])   -- map entries are not listed
    local enums = s:enums()
    assert.same({"shop.v1.Color", "shop.v1.Order.Line.Kind"}, enums)
  end)

  it("message() gives a handle with name and fields matching the .proto", function()
    local h = assert(s:message(".shop.v1.Order"))
    assert.equal("shop.v1.Order", h.name)
    assert.is_true(rawequal(h, s:message("shop.v1.Order")))
    local by = {}
    for _, f in ipairs(h:fields()) do by[f.name] = f end
    assert.same({name = "id", number = 1, type = "int32", label = "optional", packed = false,
                 presence = "implicit", options = {}}, by.id)
    assert.equal("explicit", by.priority.presence)   -- proto3 optional
    assert.equal("explicit", by.card.presence)       -- oneof member
    assert.equal("explicit", by.address.presence)    -- message
    assert.is_nil(by.attrs.presence)                 -- map
    assert.same({name = "tags", number = 12, type = "int32", label = "repeated", packed = true,
                 options = {}}, by.tags)
    assert.is_false(by.unpacked.packed)
    assert.equal("common.Address", by.address.type_name)
    assert.equal("message", by.address.type)
    assert.equal("shop.v1.Color", by.color.type_name)
    assert.equal("payment", by.card.oneof)
    assert.equal("payment", by.wallet_id.oneof)
    assert.is_nil(by.priority.oneof)   -- proto3 optional: synthetic oneof hidden
    assert.is_true(by.attrs.map)
    assert.equal("shop.v1.Order.AttrsEntry", by.attrs.type_name)
    assert.equal(536870911, by.huge_number.number)
    -- sorted by number
    local fields = h:fields()
    for i = 2, #fields do assert.is_true(fields[i - 1].number < fields[i].number) end
  end)

  it("proto2 labels and defaults", function()
    local l = assert(dynpb.load(T.fixture("legacy.pb")))
    local by = {}
    for _, f in ipairs(l:message("legacy.Record"):fields()) do by[f.name] = f end
    assert.equal("required", by.id.label)
    assert.equal("anon", by.name.default)
    assert.equal(0.5, by.ratio.default)
    assert.equal(math.huge, by.inf.default)
    assert.equal(true, by.on.default)
    assert.equal("a\1\"b", by.raw.default)
    assert.equal("MID", by.level.default)
    assert.is_nil(by.plain_level.default)
    assert.equal("group", by.extra.type)
    assert.equal("legacy.Record.Extra", by.extra.type_name)
    assert.is_false(by.nums.packed)
    assert.is_true(by.packed_nums.packed)
    -- 64-bit defaults: exact (a decimal string when a Lua number cannot hold it)
    if math.type then
      assert.equal(-9007199254740993, by.big.default)
    else
      assert.equal("-9007199254740993", by.big.default)
    end
    assert.equal("18446744073709551615", by.ubig.default)
  end)

  it("unknown message is nil, err; objects are read-only", function()
    local h, err = s:message("shop.v1.Nope")
    assert.is_nil(h)
    assert.equal("dynpb: no message type named 'shop.v1.Nope' in schema " .. s.fingerprint:sub(1, 12), err)
    local ok, msg = pcall(s.decode, s, "shop.v1.Nope", "")
    assert.is_false(ok)
    assert.matches("dynpb: no message type named 'shop.v1.Nope' in schema " .. s.fingerprint:sub(1, 12) .. "$", msg)
    assert.has_error(function() s.extra = 1 end)
    assert.has_error(function() s:message("shop.v1.Order").extra = 1 end)
  end)

  it("methods called on the wrong object raise", function()
    assert.has_error(function() s.types({}) end)
    assert.has_error(function() s.enum(nil, "x") end)
    local h = s:message("shop.v1.Order")
    assert.has_error(function() h.fields(s) end)
    assert.has_error(function() h.fields(setmetatable({}, getmetatable(h))) end)
  end)
end)
