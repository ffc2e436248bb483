-- live_constants.lua -- follow a schema registry and see a new constant
-- arrive without restarting.
--
--   cd examples && LUA_CPATH="../build/lua5.4/?.so;;" LUA_PATH="../lua/?.lua;;" \
--     lua5.4 live_constants.lua [URL [SECONDS]]
--
-- Without a URL it needs no server: it copies schemas/domain_v1.pb to a temp
-- file, follows that file through a file:// URL, then "publishes" v2 by
-- replacing the file, and shows shop.v1.ServiceType.GO_SEND appear.
-- With a URL (http://, https:// or file://) it follows that registry for
-- SECONDS (default 60) and prints the enums each time the schema changes.
local registry = require "dynpb.registry"
local http = require "dynpb.http"

local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

-- writes a sibling file then renames it over path: readers see old or new, never half
local function publish(path, bytes)
  local f = assert(io.open(path .. ".new", "wb"))
  f:write(bytes)
  f:close()
  assert(os.rename(path .. ".new", path))
end

local function print_enums(schema)
  for _, name in ipairs(schema:enums()) do
    print("  " .. name)
    local C = schema:enum(name)
    for _, v in ipairs(schema:enum_values(name)) do
      print(string.format("    %-26s = %d", v.name, C[v.name]))
    end
  end
end

local function short(schema) return schema and schema.fingerprint:sub(1, 12) or "(none)" end

local function on_update(schema, previous)
  print(string.format("on_update: schema %s -> %s", short(previous), short(schema)))
end
local function on_error(err) print("on_error: " .. err) end

local url, seconds = arg and arg[1], tonumber(arg and arg[2]) or 60

if url then
  local reg = assert(registry.new{ url = url, refresh = 5, on_update = on_update,
                                   on_error = on_error })
  print_enums(reg:schema())
  local stop = http.now() + seconds
  while http.now() < stop do
    if reg:poll() then print_enums(reg:schema()) end
    http.sleep(0.1)
  end
  reg:close()
  return
end

-- the demo: a registry that is a file
local file = os.tmpname()
publish(file, read(here .. "/schemas/domain_v1.pb"))
local reg = assert(registry.new{ url = "file://" .. file, refresh = 0.1, jitter = 0,
                                 on_update = on_update, on_error = on_error })
print("following file://" .. file)
print_enums(reg:schema())
print("ServiceType.GO_SEND = " .. tostring(reg:enum("shop.v1.ServiceType").GO_SEND))

print("\nthe registry publishes v2 ...")
publish(file, read(here .. "/schemas/domain_v2.pb"))
local polls, stop = 0, http.now() + 5
repeat
  polls = polls + 1
  local changed = reg:poll()         -- the service's own loop calls this; it never restarts
  if not changed then http.sleep(0.02) end
until changed or http.now() > stop
print(string.format("picked up after %d polls, no restart", polls))
print_enums(reg:schema())
local GO_SEND = reg:enum("shop.v1.ServiceType").GO_SEND
print("ServiceType.GO_SEND = " .. tostring(GO_SEND))

local st = reg:stats()
print(string.format("\nstats: fetches=%d not_modified=%d changes=%d errors=%d fingerprint=%s",
  st.fetches, st.not_modified, st.changes, st.errors, short(reg:schema())))
reg:close()
os.remove(file)
assert(GO_SEND == 3, "GO_SEND was not picked up")
