-- Domain constants that change at run time.
--
-- Loads version 1 of the shop's domain schema, prints its constants, then
-- loads version 2 (one more ServiceType, one more Booking field) into the
-- same running program and shows the new constant, and what the cache did.
--
-- Run from this directory after `make`:
--   LUA_CPATH="../build/lua5.4/?.so;;" lua5.4 domain_constants.lua
local dynpb = require "dynpb"

local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local function path(name) return here .. "/schemas/" .. name end

local v1 = assert(dynpb.load_file(path("domain_v1.pb")))
print("schema v1 " .. v1.fingerprint:sub(1, 16) .. "...")

local function show(schema, enum)
  local values = assert(schema:enum_values(enum))
  local C = schema:enum(enum)
  for _, v in ipairs(values) do
    print(("  %-44s = %d   (C[%d] = %s)"):format(enum .. "." .. v.name, C[v.name], v.number,
                                                C[v.number]))
  end
end
show(v1, "shop.v1.ServiceType")

-- Loading the same bytes again is a cache hit: the same object, no compile.
local again = assert(dynpb.load_file(path("domain_v1.pb")))
print("v1 loaded again, same object: " .. tostring(rawequal(v1, again)))

-- A new version arrives (here from a file; see live_constants.lua for a
-- registry). No restart: load it and use it.
local v2 = assert(dynpb.load_file(path("domain_v2.pb")))
print("schema v2 " .. v2.fingerprint:sub(1, 16) .. "...")
show(v2, "shop.v1.ServiceType")
local ST = v2:enum("shop.v1.ServiceType")
print("new constant: GO_SEND = " .. tostring(ST.GO_SEND) .. " (v1 has " ..
      tostring(v1:enum("shop.v1.ServiceType").GO_SEND) .. ")")

local fields = {}
for _, f in ipairs(v2:message("shop.v1.Booking"):fields()) do fields[#fields + 1] = f.name end
print("shop.v1.Booking fields in v2: " .. table.concat(fields, ", "))

local st = dynpb.stats()
print(("cache: %d misses, %d hits, %d live schemas, %d pinned, %d bytes of compiled tables")
      :format(st.misses, st.hits, st.live, st.pinned, st.bytes))
