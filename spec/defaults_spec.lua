-- decode options defaults = "all" (empty tables for absent repeated and map
-- fields) and array_mt (a metatable for decoded arrays, e.g. to print empty
-- arrays as JSON arrays).
local dynpb = require "dynpb"
local pb = T.pb

local schema = assert(dynpb.load(T.fixture("shop.pb")))
local Order = schema:message("shop.v1.Order")

-- a tiny JSON writer that, like OpenResty's cjson with cjson.array_mt, writes
-- a table whose metatable is `array_mt` as an array even when it is empty
local function json(v, array_mt)
  local t = type(v)
  if t == "table" then
    local parts = {}
    if getmetatable(v) == array_mt or #v > 0 then
      for i = 1, #v do parts[i] = json(v[i], array_mt) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = tostring(k) end
    table.sort(keys)
    for i, k in ipairs(keys) do parts[i] = string.format("%q:%s", k, json(v[k], array_mt)) end
    return "{" .. table.concat(parts, ",") .. "}"
  elseif t == "string" then
    return string.format("%q", v)
  end
  return tostring(v)
end

describe("defaults = \"all\"", function()
  local REPEATED = {"tags", "items", "unpacked", "notes", "colors", "lines"}
  local MAPS = {"attrs", "items_by_id"}

  it("gives empty tables for absent repeated and map fields, defaults for scalars", function()
    local t = assert(Order:decode("", {defaults = "all"}))
    for _, k in ipairs(REPEATED) do
      assert.same({}, t[k], k)
      assert.is_nil(getmetatable(t[k]), k)
    end
    for _, k in ipairs(MAPS) do assert.same({}, t[k], k) end
    assert.equal(0, t.id)
    assert.equal("", t.user_name)
    assert.equal("COLOR_UNSPECIFIED", t.color)
    -- absent messages stay absent: Order.parent is an Order (recursive)
    assert.is_nil(t.parent)
    assert.is_nil(t.address)
    -- and oneof members
    assert.is_nil(t.card)
    assert.is_nil(t.wallet_id)
  end)

  it("keeps what is present and fills nested messages and array elements too", function()
    local bytes = pb.len(13, pb.vint(1, 7)) .. pb.len(28, pb.vint(1, 2)) .. pb.vint(12, 5)
    local t = assert(Order:decode(bytes, {defaults = "all"}))
    assert.same({5}, t.tags)
    assert.equal(7, t.items[1].id)
    assert.equal("", t.items[1].name)
    assert.equal(2, t.parent.id)
    assert.same({}, t.parent.tags)
    assert.same({}, t.parent.attrs)
    assert.is_nil(t.parent.parent)
  end)

  it("defaults = true still leaves repeated and map fields absent", function()
    local t = assert(Order:decode("", {defaults = true}))
    assert.equal(0, t.id)
    for _, k in ipairs(REPEATED) do assert.is_nil(t[k], k) end
    for _, k in ipairs(MAPS) do assert.is_nil(t[k], k) end
  end)

  it("the empty tables encode to nothing", function()
    local all = assert(Order:decode(pb.vint(1, 3), {defaults = "all"}))
    local some = assert(Order:decode(pb.vint(1, 3), {defaults = true}))
    assert.equal(assert(Order:encode(some)), assert(Order:encode(all)))
    for _, k in ipairs(REPEATED) do some[k] = {} end
    assert.equal(assert(Order:encode(some)), assert(Order:encode(all)))
  end)

  it("rejects other values", function()
    assert.has_error(function() Order:decode("", {defaults = "some"}) end,
      "dynpb: decode: option 'defaults' must be a boolean or \"all\"")
    assert.has_error(function() Order:decode("", {defaults = 1}) end,
      "dynpb: decode: option 'defaults' must be a boolean or \"all\"")
  end)
end)

describe("array_mt", function()
  local array_mt = {}

  it("is set on every decoded array, not on maps or messages", function()
    local bytes = pb.vint(12, 1) .. pb.len(12, pb.varint(2) .. pb.varint(3)) .. pb.vint(19, 4)
      .. pb.len(13, pb.vint(1, 1)) .. pb.len(14, pb.len(1, "k") .. pb.len(2, "v"))
    local t = assert(Order:decode(bytes, {array_mt = array_mt}))
    assert.same({1, 2, 3}, t.tags)
    assert.equal(array_mt, getmetatable(t.tags))
    assert.equal(array_mt, getmetatable(t.unpacked))
    assert.equal(array_mt, getmetatable(t.items))
    assert.is_nil(getmetatable(t.items[1]))
    assert.is_nil(getmetatable(t.attrs))
    assert.is_nil(getmetatable(t))
  end)

  it("with defaults = \"all\", empty arrays print as JSON arrays and maps as objects", function()
    local t = assert(Order:decode(pb.vint(1, 9), {defaults = "all", array_mt = array_mt}))
    local s = json({tags = t.tags, items = t.items, attrs = t.attrs, id = t.id}, array_mt)
    assert.equal('{"attrs":{},"id":9,"items":[],"tags":[]}', s)
    -- without array_mt, an empty array cannot be told from an empty object
    t = assert(Order:decode(pb.vint(1, 9), {defaults = "all"}))
    assert.equal('{"attrs":{},"id":9,"items":{},"tags":{}}',
      json({tags = t.tags, items = t.items, attrs = t.attrs, id = t.id}, array_mt))
  end)

  it("arrays with a metatable encode as before (metatables are not consulted)", function()
    local t = assert(Order:decode(pb.len(12, pb.varint(2) .. pb.varint(3)), {array_mt = array_mt}))
    assert.equal(pb.len(12, pb.varint(2) .. pb.varint(3)), assert(Order:encode(t)))
  end)

  it("must be a table", function()
    assert.has_error(function() Order:decode("", {array_mt = true}) end,
      "dynpb: decode: option 'array_mt' must be a table (a metatable), got boolean")
  end)

  it("works through schema:decode as through a handle", function()
    local t = assert(schema:decode("shop.v1.Order", "", {defaults = "all", array_mt = array_mt}))
    assert.equal(array_mt, getmetatable(t.tags))
  end)
end)
