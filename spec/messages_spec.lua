-- Error messages: one prefix style, "dynpb: <operation> [<type>]: ...", for
-- misuse (raised) and data errors (nil, err), in C and in Lua. Other specs
-- check the rules behind these messages; this one checks their wording.
local dynpb = require "dynpb"
local registry = require "dynpb.registry"

local schema = assert(dynpb.load(T.fixture("shop.pb")))
local Order = schema:message("shop.v1.Order")
local fp12 = schema.fingerprint:sub(1, 12)

-- the message raised by f, without the "file:line: " that error(msg, n) adds
local function raised(f)
  local ok, err = pcall(f)
  assert.is_false(ok, "expected an error")
  return (tostring(err):gsub("^[^:]*:%d+: ", ""))
end

local transport = { fetch = function() return nil, "unused" end }

describe("error messages", function()
  -- {name, a function that raises, the exact message}
  local misuse = {
    {"decode: unknown option", function() Order:decode("", { bogus = 1 }) end,
     "dynpb: decode: unknown option 'bogus'"},
    {"encode: unknown option", function() Order:encode({}, { bogus = 1 }) end,
     "dynpb: encode: unknown option 'bogus'"},
    {"decode: options not a table", function() Order:decode("", 1) end,
     "dynpb: decode: options must be a table, got number"},
    {"decode: bad choice", function() Order:decode("", { enums = "x" }) end,
     "dynpb: decode: option 'enums' must be \"name\" or \"number\""},
    {"decode: max_depth", function() Order:decode("", { max_depth = 0 }) end,
     "dynpb: decode: option 'max_depth' must be an integer from 1 to 1000"},
    {"decode: an unknown option before a bad value", function() Order:decode("", { max_depth = 0, bogus = 1 }) end,
     "dynpb: decode: unknown option 'bogus'"},
    {"encode: fields is decode's", function() Order:encode({}, { fields = {} }) end,
     "dynpb: encode: unknown option 'fields'"},
    {"decode: a number key", function() Order:decode("", { [1] = true }) end,
     "dynpb: decode: unknown option 'number'"},
    {"decode: int64", function() Order:decode("", { int64 = true }) end,
     "dynpb: decode: option 'int64' must be \"auto\" or \"string\""},
    {"decode: unknown", function() Order:decode("", { unknown = "keepit" }) end,
     "dynpb: decode: option 'unknown' must be \"keep\" or \"drop\""},
    {"encode: ignore_unknown_keys", function() Order:encode({}, { ignore_unknown_keys = 1 }) end,
     "dynpb: encode: option 'ignore_unknown_keys' must be a boolean"},
    {"decode: array_mt", function() Order:decode("", { array_mt = 1 }) end,
     "dynpb: decode: option 'array_mt' must be a table (a metatable), got number"},
    {"load: unknown option", function() dynpb.load("", { bogus = 1 }) end,
     "dynpb: load: unknown option 'bogus'"},
    {"load: pin", function() dynpb.load("", { pin = 1 }) end,
     "dynpb: load: option 'pin' must be a boolean"},
    {"configure: pin", function() dynpb.configure{ pin = -1 } end,
     "dynpb: configure: 'pin' must be an integer from 0 to 1000000"},
    {"unknown type by name", function() schema:decode("shop.v1.Nope", "") end,
     "dynpb: no message type named 'shop.v1.Nope' in schema " .. fp12},
    {"registry.new: unknown option", function() registry.new{ url = "x", transport = transport, refersh = 1 } end,
     "dynpb: registry.new: unknown option 'refersh'"},
    {"registry.new: option type", function() registry.new{ url = "x", transport = transport, timeout = "1" } end,
     "dynpb: registry.new: option 'timeout' must be a number, got string"},
  }
  for _, r in ipairs(misuse) do
    it(r[1], function() assert.equal(r[3], raised(r[2])) end)
  end

  local ok_http, http = pcall(require, "dynpb.http")
  if ok_http then
    it("http: request field", function()
      assert.equal("dynpb: http: unknown request field 'bogus'", raised(function() http.fetch{ url = "x", bogus = 1 } end))
    end)
  end

  -- {name, function returning nil, err, the exact err}
  local data = {
    {"enum not found", function() return schema:enum("shop.v1.Nope") end,
     "dynpb: no enum named 'shop.v1.Nope' in schema " .. fp12},
    {"service not found: 12 digits of the fingerprint", function() return schema:service("shop.v1.Nope") end,
     "dynpb: no service named 'shop.v1.Nope' in schema " .. fp12},
    {"method not found", function() return schema:method("/shop.v1.Nope/Get") end,
     "dynpb: no method named '/shop.v1.Nope/Get' in schema " .. fp12},
    {"enum_options: enum not found", function() return schema:enum_options("shop.v1.Nope") end,
     "dynpb: no enum named 'shop.v1.Nope' in schema " .. fp12},
    {"decode: truncation names the length, the field, the container and its end",
     function() return Order:decode(T.pb.len(11, T.pb.tag(1, 2) .. T.pb.varint(5) .. "ab")) end,
     "dynpb: decode shop.v1.Order: length 5 of field 'address.street' at byte 2 runs past the end of "
       .. "'address' (ends at byte 6)"},
    {"encode: an int32 type error shows the value", function() return Order:encode{ id = "12abc" } end,
     "dynpb: encode shop.v1.Order: field 'id': expected integer, got string '12abc'"},
    {"encode: integral floats without .0", function() return Order:encode{ id = 2 ^ 40 } end,
     "dynpb: encode shop.v1.Order: field 'id': integer 1099511627776 out of range for int32"},
    {"load_file: the path once", function() return dynpb.load_file("/nonexistent/x.pb") end,
     "dynpb: load_file: cannot open '/nonexistent/x.pb': No such file or directory"},
  }
  for _, r in ipairs(data) do
    it(r[1], function()
      local v, err = r[2]()
      assert.is_nil(v)
      assert.equal(r[3], err)
    end)
  end
end)
