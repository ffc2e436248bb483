-- Partial decode: H:decode(bytes, { fields = { "a", "b.c", ... } }) decodes
-- only the picked paths. Each row is checked against the full decode cut
-- down to the same paths (project below), so a row fails if the partial
-- decode keeps a field it should skip, drops one it should keep, or decodes
-- a picked value differently.
local dynpb = require "dynpb"

local schema = assert(dynpb.load(T.fixture("codec/alltypes2.pb")))
local TA = assert(schema:message("reft2.TestAll"))

-- the full decode of t, restricted to the paths in tree ({ name = true |
-- subtree }): a subtree applies to each element of a repeated message
local function project(full, tree)
  local out = {}
  for name, sub in pairs(tree) do
    local v = full[name]
    if v ~= nil then
      if sub == true then
        out[name] = v
      elseif #v > 0 and type(v[1]) == "table" then        -- repeated message
        local arr = {}
        for i, e in ipairs(v) do arr[i] = project(e, sub) end
        out[name] = arr
      else
        out[name] = project(v, sub)
      end
    end
  end
  return out
end

local function tree_of(paths)
  local root = {}
  for _, p in ipairs(paths) do
    local node = root
    local parts = {}
    for part in p:gmatch("[^.]+") do parts[#parts + 1] = part end
    for i, part in ipairs(parts) do
      if i == #parts then node[part] = true
      elseif node[part] ~= true then
        node[part] = node[part] or {}
        node = node[part]
      else break end
    end
  end
  return root
end

local function deep_equal(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then
    return a == b or (a ~= a and b ~= b)
  end
  for k, v in pairs(a) do if not deep_equal(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

local value = {
  o_int32 = -5, o_int64 = 1234567890123, o_string = "hello", o_bytes = "\0\1\2",
  o_bool = true, o_double = 2.5, o_nested = "BAR", o_color = "COLOR_GREEN",
  o_sub = { a = 1, s = "sub", r = { 1, 2, 3 }, rec = { o_int32 = 7, o_string = "deep" } },
  o_self = { o_int32 = 11, o_self = { o_int32 = 12, o_string = "twice" } },
  ogroup = { ga = 21, gs = "group", gsub = { a = 3 } },
  r_int32 = { 1, 2, 3 }, r_string = { "x", "y" },
  r_sub = { { a = 1, s = "one" }, { a = 2, r = { 9 } }, { s = "three" } },
  rgroup = { { rga = 1, rgs = { "a" } }, { rga = 2 } },
  p_int32 = { 4, 5, 6 }, p_nested = { "FOO", "BAZ" },
  m_string_string = { k1 = "v1", k2 = "v2" },
  m_string_sub = { s1 = { a = 1 }, s2 = { s = "two" } },
  m_int32_int32 = { [1] = 10, [2] = 20 },
  of_sub = { a = 42, s = "in oneof" },
}
local bytes = assert(TA:encode(value))
local full = assert(TA:decode(bytes))

-- rows: { name, paths }
local rows = {
  { "top-level scalars", { "o_int32", "o_string" } },
  { "a 64-bit, bytes, enum and bool", { "o_int64", "o_bytes", "o_nested", "o_bool" } },
  { "a path into a singular message", { "o_sub.a", "o_sub.s" } },
  { "a path two messages deep (recursive type)", { "o_self.o_self.o_string" } },
  { "a path into each element of a repeated message", { "r_sub.a" } },
  { "a group and a path into a repeated group", { "ogroup.gs", "rgroup.rga" } },
  { "repeated scalars, unpacked and packed", { "r_int32", "p_int32", "p_nested" } },
  { "maps are picked whole", { "m_string_string", "m_string_sub", "m_int32_int32" } },
  { "a oneof member, and a path inside it", { "of_sub.s" } },
  { "a field named whole wins over a path inside it", { "o_sub.a", "o_sub" } },
  { "a picked field that is absent stays absent", { "o_uint32", "r_bytes", "o_sub.rec.o_self" } },
  { "nothing picked", {} },
}

describe("partial decode (fields option)", function()
  for _, row in ipairs(rows) do
    it(row[1], function()
      local got = assert(TA:decode(bytes, { fields = row[2] }))
      local want = project(full, tree_of(row[2]))
      assert.is_true(deep_equal(got, want))
      -- the same on the schema form
      assert.is_true(deep_equal(assert(schema:decode("reft2.TestAll", bytes, { fields = row[2] })), want))
    end)
  end

  it("keeps the picked value of a field that also arrives twice (last wins, messages merge)", function()
    local twice = TA:encode { o_int32 = 1, o_sub = { a = 1 } } .. TA:encode { o_int32 = 2, o_sub = { s = "b" } }
    local got = assert(TA:decode(twice, { fields = { "o_int32", "o_sub" } }))
    assert.same({ o_int32 = 2, o_sub = { a = 1, s = "b" } }, got)
  end)

  it("applies defaults to picked fields only", function()
    local got = assert(TA:decode("", { fields = { "d_int32", "o_sub.a" }, defaults = true }))
    assert.same({ d_int32 = -123456789 }, got)
    local all = assert(TA:decode("", { defaults = true }))
    assert.is_not_nil(all.o_int32)   -- the full decode fills the others
  end)

  it("does not keep unknown fields", function()
    local extra = bytes .. T.pb.vint(9999, 5)
    assert.is_not_nil(assert(TA:decode(extra))[dynpb.UNKNOWN])
    local got = assert(TA:decode(extra, { fields = { "o_int32" } }))
    assert.same({ o_int32 = -5 }, got)
  end)

  it("still checks the wire structure of skipped fields", function()
    -- o_string (14) with a length past the end, after the picked o_int32
    local bad = T.pb.vint(1, 3) .. T.pb.tag(14, 2) .. T.pb.varint(50) .. "short"
    local t, err = TA:decode(bad, { fields = { "o_int32" } })
    assert.is_nil(t)
    assert.matches("at byte 2", err)
    -- a truncated varint in a skipped field
    t, err = TA:decode(T.pb.vint(1, 3) .. T.pb.tag(2, 0) .. "\255", { fields = { "o_int32" } })
    assert.is_nil(t)
    assert.matches("truncated", err)
    -- an unmatched end-group tag
    t, err = TA:decode(T.pb.tag(5, 4), { fields = { "o_int32" } })
    assert.is_nil(t)
    assert.is_string(err)
  end)

  it("does not check UTF-8 in skipped strings", function()
    local s3 = assert(dynpb.load(T.fixture("codec/alltypes3.pb")))
    local H3 = assert(s3:message("reft3.TestAll"))
    local bad = T.pb.vint(1, 7) .. T.pb.len(14, "\255\254")   -- s_int32, s_string
    assert.is_nil(H3:decode(bad))
    assert.same({ s_int32 = 7 }, assert(H3:decode(bad, { fields = { "s_int32" } })))
  end)

  it("leaves the size hints of full decodes alone", function()
    for _ = 1, 3 do TA:decode(bytes, { fields = { "o_int32" } }) end
    assert.is_true(deep_equal(assert(TA:decode(bytes)), full))
  end)

  -- misuse raises, naming the path and the message
  local bad = {
    { { "nope" }, "'nope' is not a field of reft2.TestAll" },
    { { "o_sub.nope" }, "'nope' is not a field of reft2.TestAll.Sub" },
    { { "o_int32.x" }, "field 'o_int32' of reft2.TestAll is int32, not a message" },
    { { "m_string_sub.a" }, "is map, not a message" },
    { { 1 }, "entry 1 is not a string" },
  }
  for _, b in ipairs(bad) do
    it("raises for " .. tostring(b[1][1]), function()
      local ok, err = pcall(TA.decode, TA, bytes, { fields = b[1] })
      assert.is_false(ok)
      assert.matches(b[2], err, 1, true)
    end)
  end
  it("raises when fields is not a table, and encode does not take it", function()
    assert.has_error(function() TA:decode(bytes, { fields = "o_int32" }) end)
    local ok, err = pcall(TA.encode, TA, value, { fields = { "o_int32" } })
    assert.is_false(ok)
    assert.matches("unknown option 'fields'", err, 1, true)
  end)
end)
