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
  local gsrc = T.read(T.root .. "/lua/dynpb/resty/gateway.lua")
  local gw = {}
  for name in gsrc:gmatch("\nfunction _M%.([%w_]+)%(") do
    if name:sub(1, 1) ~= "_" then gw[#gw + 1] = name end
  end
  groups[#groups + 1] = {"gateway.", gw}

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
    assert.is_true(#gw >= 5)
  end)

  -- ---------------------------------------------------------------------
  -- Type annotations (types/library/*.lua, for lua-language-server): every
  -- exported function above, and every call shown in a README table, has a
  -- `function <receiver>.<name>(` or `function <receiver>:<name>(` there,
  -- the receiver named as in README (types/README.md). New modules extend
  -- this by adding their group above and their file under types/library/.
  local TYPES = T.root .. "/types/library"
  local files, types = {}, {}
  local find = assert(io.popen("find '" .. TYPES .. "' -name '*.lua' | sort"))
  for path in find:lines() do files[#files + 1] = path end
  find:close()
  for i, path in ipairs(files) do types[i] = T.read(path) end
  types = table.concat(types, "\n")

  local function plain(s) return types:find(s, 1, true) ~= nil end
  -- recv nil: any receiver (README rows that show a bare `name(...)`)
  local function annotated(recv, sep, name)
    if recv then return plain("\nfunction " .. recv .. sep .. name .. "(") end
    return types:find("\nfunction [%w_]+[.:]" .. name .. "%(") ~= nil
  end

  it("type annotation files load and are ---@meta files", function()
    assert.is_true(#files >= 4, "types/library has " .. #files .. " files")
    for _, path in ipairs(files) do
      assert.truthy(loadfile(path), path .. " does not load")
      assert.truthy(T.read(path):find("^%-%-%-@meta"), path .. " does not start with ---@meta")
    end
  end)

  -- what lua-language-server would warn about: ---@param names that are not
  -- the function's parameters (in order), and dynpb.* types never declared
  it("type annotations: @param names match the parameters; every dynpb.* type is declared", function()
    local declared = {}
    for name in types:gmatch("%-%-%-@class ([%w_.]+)") do declared[name] = true end
    for name in types:gmatch("%-%-%-@alias ([%w_.]+)") do declared[name] = true end
    for _, path in ipairs(files) do
      local params = {}
      for line in (T.read(path) .. "\n"):gmatch("([^\n]*)\n") do
        local p = line:match("^%-%-%-@param ([%w_]+)%??")
        if p then params[#params + 1] = p end
        local fname, args = line:match("^function ([%w_.:]+)%(([^)]*)%)")
        if fname then
          local want = {}
          for arg in args:gmatch("[%w_]+") do want[#want + 1] = arg end
          assert.same(want, params, path .. ": " .. fname .. ": @param names vs the parameters")
          params = {}
        elseif not line:match("^%-%-%-") then
          params = {}
        end
        for ty in line:gsub("`[^`]*`", ""):gmatch("dynpb%.[%a_][%w_.]*") do
          if line:match("^%-%-%-@") and not line:match("^%-%-%-@meta") and not line:match("^%-%-%-@class") then
            local base = ty:gsub("%.$", "")
            assert.is_true(declared[base] ~= nil, path .. ": type " .. base .. " is not declared (" .. line .. ")")
          end
        end
      end
    end
  end)

  -- a group's prefix names its receiver; registry's methods are reg's too
  local also = { ["registry."] = { "reg:" }, ["reg:"] = { "registry." } }
  for _, g in ipairs(groups) do
    for _, name in ipairs(g[2]) do
      it("annotation for " .. g[1] .. name, function()
        local ok = annotated(g[1]:sub(1, -2), g[1]:sub(-1), name)
        for _, p in ipairs(also[g[1]] or {}) do
          ok = ok or annotated(p:sub(1, -2), p:sub(-1), name)
        end
        assert.is_true(ok, g[1] .. name .. " has no annotation in types/library (function "
          .. g[1]:sub(1, -2) .. g[1]:sub(-1) .. name .. "(...))")
      end)
    end
  end

  -- the calls in the first column of README's tables: `x.name(`, `x:name{`, `name(`
  local calls = {}
  for line in readme:gmatch("[^\n]+") do
    local first = line:match("^|([^|]*)|")
    if first and not first:match("^%s*%-%-%-") then
      for code in first:gmatch("`([^`]+)`") do
        local recv, sep, name = code:match("^([%a_][%w_]*)([.:])([%a_][%w_]*)%s*[({]")
        if not recv then name = code:match("^([%a_][%w_]*)%s*[({]") end
        if name then calls[#calls + 1] = { recv, sep, name, code } end
      end
    end
  end
  it("found README's table calls", function() assert.is_true(#calls >= 20, #calls .. " calls") end)
  for _, c in ipairs(calls) do
    it("annotation for README's " .. c[4]:match("^[^({]*"), function()
      assert.is_true(annotated(c[1], c[2], c[3]), "README shows `" .. c[4] .. "` but types/library has no "
        .. "function " .. (c[1] and c[1] .. c[2] or "<module>.") .. c[3] .. "(...)")
    end)
  end
end)
