-- `make soak`: the memory soak of issue 5.
--   lua spec/support/robust_soak.lua [cycles] [versions]
-- Each cycle loads a descriptor set (rotating among `versions` distinct
-- versions, default 12, more than the pin count so versions are really
-- evicted and recompiled), decodes a message with it, encodes it back and
-- collects every 8 cycles; only the newest schema is referenced. The Lua heap (after a full
-- collection), dynpb.stats().bytes and the RSS are printed 20 times. After
-- warm-up (the first 10% of the cycles) none of them may grow by more than
-- the tolerance (heap 10% + 256 KiB, bytes 10% + 64 KiB, RSS 10% + 4 MiB);
-- exit status 1 when one does. Run with DYNPB_CPATH pointing at the build.
local cpath = os.getenv("DYNPB_CPATH")
if cpath then package.cpath = cpath .. ";" .. package.cpath end
local dynpb = require "dynpb"

local cycles = tonumber(arg[1]) or 1000000
local nversions = tonumber(arg[2]) or 12
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec/support"
local f = assert(io.open(here .. "/../fixtures/shop.pb", "rb"))
local SHOP = f:read("*a")
f:close()

-- version k = the shop set plus one small file with a k-specific package and
-- an enum (a FileDescriptorSet may be concatenated: the files add up)
local function len(num, s)
  local n, out = #s, {}
  repeat
    local b = n % 128
    n = (n - b) / 128
    out[#out + 1] = string.char(n > 0 and b + 128 or b)
  until n == 0
  return string.char(num * 8 + 2) .. table.concat(out) .. s
end
local versions = {}
for k = 1, nversions do
  local enum = len(1, "Rev") .. len(2, len(1, "REV_UNSPECIFIED") .. "\16\0")
    .. len(2, len(1, "REV_" .. k) .. "\16" .. string.char(k))
  local file = len(1, "rev" .. k .. ".proto") .. len(2, "rev.v" .. k) .. len(5, enum)
  versions[k] = SHOP .. len(1, file)
end

local ORDER = { id = 5, user_id = -7, user_name = "soak", token = "\0\1", verified = true,
  balance = 1.5, score = 0.25, color = "BLUE", flags = 9, delta = -3,
  address = { street = "x", zip = 1 }, tags = { 1, 2, 300 },
  items = { { id = 1, name = "a" }, { id = 2, qty = -1 } }, attrs = { b = "2", a = "1" },
  items_by_id = { [3] = { name = "c" } }, card = "visa", notes = { "x", "" },
  parent = { id = 1 }, lines = { { sku = "k", kind = "GOODS" } } }

local function rss_kib()
  local fh = io.open("/proc/self/statm", "r")
  if not fh then return 0 end
  local _, res = fh:read("*n", "*n")
  fh:close()
  return (res or 0) * 4      -- pages of 4 KiB
end

local function sample()
  collectgarbage("collect")
  collectgarbage("collect")
  return { heap = collectgarbage("count"), bytes = dynpb.stats().bytes, rss = rss_kib() }
end

local schema, Order
local bytes = nil
local report_every = math.max(1, math.floor(cycles / 20))
local warm = math.max(1, math.floor(cycles / 10))
local base, worst
local t0 = os.clock()
print(("soak: %d cycles, %d versions, pin %d, %s"):format(cycles, nversions,
  dynpb.configure{}, _VERSION .. (jit and " / " .. jit.version or "")))
print(("%10s %12s %14s %10s %8s"):format("cycle", "heap KiB", "dynpb bytes", "RSS KiB", "CPU s"))
for i = 1, cycles do
  schema = assert(dynpb.load(versions[(i - 1) % nversions + 1]))   -- only the newest is referenced
  Order = schema:message("shop.v1.Order")
  bytes = bytes or assert(Order:encode(ORDER))
  local t = assert(Order:decode(bytes))
  local out = assert(Order:encode(t))
  if out ~= bytes then error("cycle " .. i .. ": encode(decode(x)) ~= x") end
  -- a full collection every 8 cycles: dropped versions are really freed and
  -- a later load of them compiles again (misses, not only cache hits)
  if i % 8 == 0 then collectgarbage() end
  if i % report_every == 0 or i == warm then
    local s = sample()
    print(("%10d %12.1f %14d %10d %8.1f"):format(i, s.heap, s.bytes, s.rss, os.clock() - t0))
    io.stdout:flush()
    if i == warm then base = s
    elseif base then
      worst = worst or { heap = 0, bytes = 0, rss = 0 }
      for k, v in pairs(s) do if v - base[k] > worst[k] then worst[k] = v - base[k] end end
    end
  end
end
local st = dynpb.stats()
print(("stats: hits %d, misses %d, live %d, pinned %d, bytes %d"):format(st.hits, st.misses,
  st.live, st.pinned, st.bytes))
if not base or not worst then
  print("soak: too few cycles to judge growth")
  os.exit(0)
end
local tol = { heap = base.heap * 0.10 + 256, bytes = base.bytes * 0.10 + 65536, rss = base.rss * 0.10 + 4096 }
local failed = false
for _, k in ipairs{ "heap", "bytes", "rss" } do
  local ok = worst[k] <= tol[k]
  print(("soak: %-5s after warm-up %s, largest growth %+.1f (tolerance %.1f): %s"):format(k,
    k == "bytes" and "(bytes)" or "(KiB)", worst[k], tol[k], ok and "flat" or "GROWS"))
  failed = failed or not ok
end
print(failed and "soak: FAILED" or "soak: ok")
os.exit(failed and 1 or 0)
