-- decode's fast paths (issue 17, csrc/decode.c) against the general ones:
-- the same bytes in the form encoders write (one-byte tags, map entries as
-- key then value, each message once) and in every other form the wire
-- allows (two-byte tags, entries out of order or with extra fields, a
-- message or a repeated field met again after other fields, oneofs, long
-- varints at the end of the input) decode to the same tables.
local dynpb = require "dynpb"
local pb = T.pb

local shop = assert(dynpb.load(T.fixture("shop.pb")))
local Order = assert(shop:message("shop.v1.Order"))

-- a tag written in two bytes (a redundant varint: 0x80 | low, then 0x00)
local function long_tag(num, wt)
  local t = num * 8 + wt
  assert(t < 0x80)
  return string.char(0x80 + t, 0)
end

describe("decode fast paths", function()
  it("a map entry out of the usual form decodes as the usual one", function()
    local usual = pb.len(14, pb.len(1, "k") .. pb.len(2, "v"))
    local want = {attrs = {k = "v"}}
    assert.same(want, Order:decode(usual))
    -- value before key
    assert.same(want, Order:decode(pb.len(14, pb.len(2, "v") .. pb.len(1, "k"))))
    -- an unknown field inside the entry, before and after
    assert.same(want, Order:decode(pb.len(14, pb.vint(3, 1) .. pb.len(1, "k") .. pb.len(2, "v"))))
    assert.same(want, Order:decode(pb.len(14, pb.len(1, "k") .. pb.len(2, "v") .. pb.vint(3, 1))))
    -- key or value given twice: the last wins
    assert.same(want, Order:decode(pb.len(14, pb.len(1, "x") .. pb.len(1, "k") .. pb.len(2, "v"))))
    assert.same(want, Order:decode(pb.len(14, pb.len(1, "k") .. pb.len(2, "w") .. pb.len(2, "v"))))
    -- two-byte tags inside the entry
    assert.same(want, Order:decode(pb.len(14, long_tag(1, 2) .. "\1k" .. long_tag(2, 2) .. "\1v")))
    -- missing key, missing value
    assert.same({attrs = {[""] = "v"}}, Order:decode(pb.len(14, pb.len(2, "v"))))
    assert.same({attrs = {k = ""}}, Order:decode(pb.len(14, pb.len(1, "k"))))
  end)

  it("a map entry whose value is a message: usual form, value twice (merged), bad value", function()
    local item = pb.vint(1, 5) .. pb.len(2, "n")
    assert.same({items_by_id = {[3] = {id = 5, name = "n"}}},
      Order:decode(pb.len(15, pb.vint(1, 3) .. pb.len(2, item))))
    -- the value message given in two parts merges, as a message field does
    assert.same({items_by_id = {[3] = {id = 5, name = "n"}}},
      Order:decode(pb.len(15, pb.vint(1, 3) .. pb.len(2, pb.vint(1, 5)) .. pb.len(2, pb.len(2, "n")))))
    -- a value message with a bad string names its path, in both forms
    local bad = pb.len(2, "\255")
    local t, err = Order:decode(pb.len(15, pb.vint(1, 3) .. pb.len(2, bad)))
    assert.is_nil(t)
    assert.matches("invalid UTF%-8 in string in field 'items_by_id%.name'", err)
    local t2, err2 = Order:decode(pb.len(15, pb.len(2, bad) .. pb.vint(1, 3)))
    assert.is_nil(t2)
    assert.matches("invalid UTF%-8 in string in field 'items_by_id%.name'", err2)
  end)

  it("a message field met again after other fields merges into its first table", function()
    local t = Order:decode(pb.len(11, pb.len(1, "s")) .. pb.vint(1, 7) .. pb.len(11, pb.vint(3, 9))
      .. pb.len(28, pb.vint(1, 1)) .. pb.len(3, "u") .. pb.len(28, pb.len(3, "p")))
    assert.same({id = 7, user_name = "u", address = {street = "s", zip = 9},
                 parent = {id = 1, user_name = "p"}}, t)
  end)

  it("a repeated field met again after other fields appends to its first array", function()
    local item = function(id) return pb.len(13, pb.vint(1, id)) end
    local t = Order:decode(item(1) .. pb.vint(19, 4) .. pb.len(12, pb.varint(1) .. pb.varint(2))
      .. item(2) .. pb.len(14, pb.len(1, "a") .. pb.len(2, "b")) .. pb.vint(19, 5)
      .. pb.vint(12, 3) .. item(3) .. pb.len(14, pb.len(1, "c") .. pb.len(2, "d"))
      .. pb.len(12, pb.varint(4)) .. pb.len(26, "x") .. pb.len(26, "y"))
    assert.same({{id = 1}, {id = 2}, {id = 3}}, t.items)
    assert.same({4, 5}, t.unpacked)
    assert.same({1, 2, 3, 4}, t.tags)
    assert.same({a = "b", c = "d"}, t.attrs)
    assert.same({"x", "y"}, t.notes)
  end)

  it("two-byte tags of fields 1 to 15 decode as the one-byte ones", function()
    local want = {id = 7, user_name = "u", address = {street = "s"}, tags = {1, 2}}
    assert.same(want, Order:decode(pb.vint(1, 7) .. pb.len(3, "u") .. pb.len(11, pb.len(1, "s"))
      .. pb.len(12, "\1\2")))
    assert.same(want, Order:decode(long_tag(1, 0) .. "\7" .. long_tag(3, 2) .. "\1u"
      .. long_tag(11, 2) .. "\4" .. long_tag(1, 2) .. "\1s" .. long_tag(12, 2) .. "\2\1\2"))
  end)

  it("oneof members in a new table: only the last one is present", function()
    assert.same({wallet_id = 9}, Order:decode(pb.len(16, "visa") .. pb.vint(1, 0) .. pb.vint(17, 9)))
    assert.same({card = "c"}, Order:decode(pb.vint(17, 9) .. pb.len(16, "c")))
    assert.same({parent = {card = "c"}},
      Order:decode(pb.len(28, pb.vint(17, 9)) .. pb.len(28, pb.len(16, "c"))))
  end)

  it("unknown fields of a nested message without repeated fields are kept", function()
    local t = Order:decode(pb.len(11, pb.len(1, "s") .. pb.vint(7, 1)) .. pb.vint(99, 2))
    assert.equal("s", t.address.street)
    assert.equal(pb.vint(7, 1), t.address[dynpb.UNKNOWN])
    assert.equal(pb.vint(99, 2), t[dynpb.UNKNOWN])
  end)

  it("varints of every length with more input after them, canonical or padded with zero groups", function()
    -- 7-bit groups that all differ, so a group put in the wrong place shows
    local function groups(n)
      local g = {}
      for i = 1, n do g[i] = (i * 37 + 11) % 128 end
      return g
    end
    local function bytes(g)
      local t = {}
      for i = 1, #g do t[i] = string.char(g[i] + (i < #g and 128 or 0)) end
      return table.concat(t)
    end
    local tail = pb.vint(1, 3) .. pb.len(3, "12345678")   -- 8 or more bytes follow
    for n = 1, 10 do
      local g = groups(n)
      if n == 10 then g[10] = 1 end                       -- bit 63: the last group holds one bit
      local t = assert(Order:decode(pb.tag(2, 0) .. bytes(g) .. tail), "n=" .. n)
      assert.equal(3, t.id)
      assert.equal("12345678", t.user_name)
      if math.type then                                   -- 64-bit integers (they wrap): every length
        local v = 0
        for i = n, 1, -1 do v = v * 128 + g[i] end
        assert.equal(v, t.user_id, "n=" .. n)
      elseif n <= 7 then
        local v = 0
        for i = n, 1, -1 do v = v * 128 + g[i] end
        assert.equal(v, t.user_id, "n=" .. n)
      end
      -- padded: the same value with zero groups after it, to 8 bytes or
      -- to n + 1 past that
      if n < 10 then
        local len = math.max(n + 1, 8)
        local pad = bytes(g):sub(1, n - 1) .. string.char(g[n] + 128) .. string.rep("\128", len - n - 1) .. "\0"
        local u = assert(Order:decode(pb.tag(2, 0) .. pad .. tail), "padded n=" .. n)
        assert.equal(t.user_id, u.user_id, "padded n=" .. n)
      end
    end
  end)

  it("varints of every length, last in the input and cut short", function()
    for n = 1, 10 do
      local v = string.rep("\255", n - 1) .. "\1"
      local t = assert(Order:decode(pb.vint(1, 3) .. pb.tag(2, 0) .. v))
      assert.equal(3, t.id)
      if n == 10 then
        assert.equal(-1, t.user_id)                  -- all 64 bits set
      elseif n <= 7 then
        assert.equal(2 ^ (7 * n - 6) - 1, t.user_id) -- n - 1 bytes of 7 ones, then a 1
      end
      local cut, err = Order:decode(pb.tag(2, 0) .. v:sub(1, n - 1))
      assert.is_nil(cut)
      assert.equal(("dynpb: decode shop.v1.Order: truncated varint in field 'user_id' at byte 0 "
        .. "(the input ends at byte %d)"):format(n), err)
    end
    local t, err = Order:decode(pb.tag(2, 0) .. string.rep("\255", 10) .. "\1")
    assert.is_nil(t)
    assert.equal("dynpb: decode shop.v1.Order: varint longer than 10 bytes in field 'user_id' at byte 0", err)
  end)
end)
