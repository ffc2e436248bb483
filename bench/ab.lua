-- bench/ab.lua -- two or more builds of dynpb side by side in one process, to
-- decide whether a change moved the time of one operation. Run by `make
-- bench-ab AB_SO="old/dynpb.so new/dynpb.so"`:
--   <lua> bench/ab.lua <bench dir> encode|decode Small|Order|Large <rounds> <so>...
-- Each <so> is opened with package.loadlib (dynpb keeps nothing in the
-- registry or in C globals, so two copies of the library in one state are
-- two independent modules). Every round times a burst of each build (and of
-- lua-protobuf when pb is on LUA_CPATH) in a fresh random order; the figures
-- are medians over rounds of per-round time ratios, so a machine's drift
-- hits all alike. Across processes the reference moves by some 5% (its own
-- memory layout), the builds of dynpb much less: the ratio first/this is the
-- figure to judge a change by, not lua-protobuf/this.
local BENCH, OP, WHICH = assert(arg[1], "bench dir"), arg[2], arg[3]
local ROUNDS = tonumber(arg[4]) or 41
assert(OP == "encode" or OP == "decode", "op: encode or decode")
assert(WHICH == "Small" or WHICH == "Order" or WHICH == "Large", "message: Small, Order or Large")
assert(arg[5], "give one or more paths of dynpb.so")
package.path = BENCH .. "/?.lua;" .. package.path

local function readfile(name)
  local f = assert(io.open(BENCH .. "/fixtures/" .. name, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local set = readfile("bench.pb")
local data = require "bench_data"
local t = WHICH == "Large" and require("large_data").build() or (WHICH == "Order" and data.order or data.small)
local bin = readfile(WHICH:lower() .. ".bin")
local full = "bench." .. WHICH

local fns, names = {}, {}
for i = 5, #arg do
  local open = assert(package.loadlib(arg[i], "luaopen_dynpb"))
  local h = assert(assert(open().load(set)):message(full))
  fns[#fns + 1] = OP == "encode" and function() return h:encode(t) end or function() return h:decode(bin) end
  names[#names + 1] = arg[i]
end
local nbuilds = #fns
local okref, pb = pcall(require, "pb")
if okref then
  pb.option("no_default_values")
  assert(pb.load(set), "lua-protobuf: pb.load failed")
  fns[#fns + 1] = OP == "encode" and function() return pb.encode(full, t) end
                  or function() return pb.decode(full, bin) end
end
if OP == "encode" then                      -- every build writes the same bytes
  for i = 1, #fns do assert(#fns[i]() == #bin, "encode size") end
end

local clock = os.clock
local function burst(f, n)
  local c = clock()
  for _ = 1, n do f() end
  return clock() - c
end
local n = 1
for _ = 1, 3 do burst(fns[1], 1) end
while burst(fns[1], n) < 0.005 do n = n * 2 end

local times = {}
for i = 1, #fns do times[i] = {} end
for r = 1, ROUNDS do
  collectgarbage()
  local order = {}
  for i = 1, #fns do order[i] = i end
  for i = #order, 2, -1 do
    local j = math.random(i)
    order[i], order[j] = order[j], order[i]
  end
  for _, i in ipairs(order) do times[i][r] = burst(fns[i], n) / n end
end

local median = require("stats").quantile
local function ratio(a, b)
  local rs = {}
  for r = 1, ROUNDS do rs[r] = a[r] / b[r] end
  return median(rs)
end

print(("%s %s %s: %d rounds of %d operations, builds in a random order each round"):format(
  jit and jit.version or _VERSION, OP, WHICH, ROUNDS, n))
print(("%-40s %10s %12s %14s"):format("build", "us/op", "first/this", "lua-pb/this"))
for i = 1, nbuilds do
  print(("%-40s %10.2f %11.3fx %13s"):format(names[i], median(times[i]) * 1e6, ratio(times[1], times[i]),
    okref and ("%.3fx"):format(ratio(times[#fns], times[i])) or "-"))
end
