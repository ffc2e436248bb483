-- Differential test of the editions codec against protobuf-es (npm
-- @bufbuild/protobuf, which passes Google's conformance suite): random
-- messages of the editions fixture set are encoded by dynpb, read and
-- written again by protobuf-es, and decoded by dynpb: both decodes must be
-- equal, and protobuf-es must read every payload dynpb writes, with nothing
-- left over as unknown fields.
--
-- Run by `make es-diff` (installs the npm package into build/es-npm and sets
-- DYNPB_ES_DIR); pending elsewhere.
local dynpb = require "dynpb"

local ES_DIR = os.getenv("DYNPB_ES_DIR")
local SET_PATH = T.specdir .. "/fixtures/editions/all.binpb"
local set = assert(dynpb.load(T.fixture("editions/all.binpb")))

local function hex(s)
  return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end
local function unhex(h)
  return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
end

-- a small deterministic PRNG (the same cases on every Lua)
local seed = 12345
local function rnd(n)
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed % n
end

local gen
local function scalar(f)
  local t = f.type
  if t == "bool" then return rnd(2) == 1 end
  if t == "string" then
    local s = {}
    for i = 1, rnd(4) do s[i] = ({"a", "z", "\195\169", "\226\130\172", " "})[rnd(5) + 1] end
    return table.concat(s)
  end
  if t == "bytes" then
    local s = {}
    for i = 1, rnd(4) do s[i] = string.char(rnd(256)) end
    return table.concat(s)
  end
  if t == "double" or t == "float" then return ({0, 1.5, -2.25, 1e10, -0.5})[rnd(5) + 1] end
  if t == "enum" then
    local names = set:enum_values(f.type_name)
    return names[rnd(#names) + 1].name
  end
  local small = ({0, 1, 2, 127, 128, 300, 65535})[rnd(7) + 1]
  if t:match("^u") or t:match("^fixed") then return small end
  return rnd(2) == 0 and small or -small
end

local function value(f, depth)
  if f.type == "message" or f.type == "group" then
    return gen(f.type_name, depth + 1)
  end
  return scalar(f)
end

function gen(type_name, depth)
  local H = set:message(type_name)
  local t, oneofs, order = {}, {}, {}
  local only_required = depth > 3   -- deep enough: what protobuf-es needs to write it
  for _, f in ipairs(H:fields()) do
    if only_required and f.label ~= "required" then -- luacheck: ignore
    elseif f.oneof then
      if not oneofs[f.oneof] then
        oneofs[f.oneof] = {}
        order[#order + 1] = f.oneof
      end
      table.insert(oneofs[f.oneof], f)
    elseif f.label == "required" then
      t[f.name] = value(f, depth)
    elseif f.map then
      if rnd(2) == 0 then
        local entry = set:message(f.type_name):fields()
        local kf, vf = entry[1], entry[2]
        local m = {}
        for _ = 1, rnd(3) do m[scalar(kf)] = value(vf, depth) end
        t[f.name] = m
      end
    elseif f.label == "repeated" then
      if rnd(2) == 0 then
        local a = {}
        for i = 1, rnd(3) + 1 do a[i] = value(f, depth) end
        t[f.name] = a
      end
    elseif rnd(3) == 0 then
      t[f.name] = value(f, depth)
    end
  end
  for _, name in ipairs(order) do
    local members = oneofs[name]
    if not only_required and rnd(2) == 0 then
      local f = members[rnd(#members) + 1]
      t[f.name] = value(f, depth)
    end
  end
  return t
end

describe("editions codec against protobuf-es", function()
  local types = {"ed.v1.Features", "ed.v1.FileDefaults", "ed.v2.Msg", "mix.v1.Plain",
                 "mix.v1.Old", "ed.v1.LegacyJson"}
  for _, type_name in ipairs(types) do
    it(type_name .. ": 200 random messages", function()
      if not ES_DIR or ES_DIR == "" then
        pending("DYNPB_ES_DIR not set (run make es-diff)")
        return
      end
      local H = set:message(type_name)
      local payloads = {}
      for i = 1, 200 do
        payloads[i] = assert(H:encode(gen(type_name, 1)))
      end
      local tmp = os.tmpname()
      local f = assert(io.open(tmp, "wb"))
      for i = 1, #payloads do
        f:write(#payloads[i] > 0 and hex(payloads[i]) or "-", "\n")
      end
      f:close()
      local p = io.popen(("env -u LD_PRELOAD node %q %q %q < %q"):format(
        ES_DIR .. "/es_roundtrip.mjs", SET_PATH, type_name, tmp))
      local out = p:read("*a")
      p:close()
      os.remove(tmp)
      local lines = {}
      for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
      assert.equal(#payloads, #lines, "protobuf-es answered " .. #lines .. " lines: " .. out:sub(1, 300))
      local nonempty = 0
      for i = 1, #payloads do
        assert.is_nil(lines[i]:match("^ERR"), "protobuf-es rejects " .. hex(payloads[i]) .. ": " .. lines[i])
        assert.is_nil(lines[i]:match("^UNK"), "protobuf-es reads part of " .. hex(payloads[i]) ..
                      " as unknown fields: " .. lines[i])
        local back = lines[i] == "-" and "" or unhex(lines[i])
        if #back > 0 then nonempty = nonempty + 1 end
        assert.same(assert(H:decode(payloads[i])), assert(H:decode(back)),
                    "payload " .. hex(payloads[i]) .. " came back as " .. lines[i])
      end
      assert.is_true(nonempty > 100, "too few non-empty cases")
    end)
  end
end)
