-- Every function a user can reach is documented in README.md.
local dynpb = require "dynpb"

local readme = T.read(T.root .. "/README.md")

-- is `name` shown as a call or a field in the README (x.name, x:name, name(, name{)?
local function documented(prefix, name)
  local plain = function(s) return readme:find(s, 1, true) ~= nil end
  return plain(prefix .. name) or plain("." .. name .. "(") or plain(":" .. name .. "(")
      or plain("." .. name .. "{") or plain(name .. "(")
end

local function public(t)
  local out = {}
  for k, v in pairs(t) do
    if type(k) == "string" and type(v) == "function" and k:sub(1, 1) ~= "_" then out[#out + 1] = k end
  end
  table.sort(out)
  return out
end

describe("README documents", function()
  local schema = assert(dynpb.load(T.fixture("shop.pb")))
  local handle = schema:message("shop.v1.Order")
  local groups = {
    {"dynpb.", public(dynpb)},
    {"schema:", public(getmetatable(schema).__index)},
    {"handle:", public(getmetatable(handle).__index)},
    {"handle:", public(handle)},   -- its own decode/encode closures
  }
  local ok, registry = pcall(require, "dynpb.registry")
  if ok then
    groups[#groups + 1] = {"registry.", public(registry)}
    local path = T.root .. "/examples/schemas/domain_v1.pb"
    if path:sub(1, 1) ~= "/" then path = assert(os.getenv("PWD")) .. "/" .. path end
    local reg = assert(registry.new{url = "file://" .. path})
    groups[#groups + 1] = {"reg:", public(getmetatable(reg).__index or reg)}
    reg:close()
  end
  local ok2, http = pcall(require, "dynpb.http")
  if ok2 then groups[#groups + 1] = {"http.", public(http)} end
  local ok3, grpc = pcall(require, "dynpb.grpc")
  if ok3 then
    groups[#groups + 1] = {"grpc.", public(grpc)}
    local c = grpc.client{ url = "http://127.0.0.1:1" }
    groups[#groups + 1] = {"c:", public(getmetatable(c).__index)}
    groups[#groups + 1] = {"job:", public(getmetatable(c:start({ path = "/x/y", input = true,
      output = true, raw = true }, "")).__index)}
    c:close()
  end
  -- dynpb.resty needs nginx: its exported functions are read from the source
  local src = T.read(T.root .. "/lua/dynpb/resty.lua")
  local resty = {}
  for name in src:gmatch("\nfunction _M%.([%w_]+)%(") do
    if name:sub(1, 1) ~= "_" then resty[#resty + 1] = name end
  end
  groups[#groups + 1] = {"resty.", resty}

  for _, g in ipairs(groups) do
    for _, name in ipairs(g[2]) do
      it(g[1] .. name, function()
        assert.is_true(documented(g[1], name), g[1] .. name .. " is not in README.md")
      end)
    end
  end

  it("found the functions to check", function()
    assert.is_true(#groups[1][2] >= 5)
    assert.is_true(#resty >= 3)
  end)
end)
