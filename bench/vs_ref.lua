-- bench/vs_ref.lua -- dynpb against lua-protobuf, one operation, side by side
-- (issue 17). Run by `make bench-vs-ref`:
--   <lua> bench/vs_ref.lua <bench dir> [encode|decode] [rounds] [ms per burst] [processes]
-- Needs dynpb and lua-protobuf (pb) on LUA_CPATH.
--
-- Each round runs a short burst (about <ms> of CPU) of dynpb, then one of
-- lua-protobuf, on the same message, alternating which goes first; the
-- figure is the median over rounds of the per-round time ratio
-- (lua-protobuf / dynpb, higher is better), so load on a shared machine that
-- drifts slower than a burst hits both alike. Quartiles show the spread.
-- On a shared machine the ratio also moves between processes (seen: LuaJIT
-- Order 1.37x in one process, 1.60x in the next, each with tight quartiles),
-- so with <processes> > 1 the script runs itself that many times in turn and
-- reports the median, min and max of the per-process figures.
local BENCH = assert(arg[1], "bench dir")
local OP = arg[2] or "encode"
local ROUNDS = tonumber(arg[3]) or 61
local MS = tonumber(arg[4]) or 20
local PROCS = tonumber(arg[5]) or 1
package.path = BENCH .. "/?.lua;" .. package.path
assert(OP == "encode" or OP == "decode", "op: encode or decode")

if PROCS > 1 then
  local lua = arg[-1] or "lua"
  local per, names = {}, {}
  for i = 1, PROCS do
    local p = assert(io.popen(("%s %s/vs_ref.lua %s %s %d %d 1"):format(lua, BENCH, BENCH, OP, ROUNDS, MS)))
    for line in p:lines() do
      if i == 1 and not line:match("^%u%l+%s") then print(line) end
      local name, x = line:match("^(%u%l+)%s+%S+%s+%S+%s+([%d.]+)x")
      if name then
        if not per[name] then per[name] = {}; names[#names + 1] = name end
        table.insert(per[name], tonumber(x))
      end
    end
    assert(p:close(), "vs_ref.lua: a child process failed")
  end
  print(("%d processes: median, min and max of their medians (lua-protobuf time / dynpb time)"):format(PROCS))
  for _, name in ipairs(names) do
    local t = per[name]
    table.sort(t)
    print(("%-6s %7.2fx  (min %.2fx, max %.2fx)"):format(name, require("stats").quantile(t), t[1], t[#t]))
  end
  os.exit(0)
end

local dynpb = require "dynpb"
local ref = require "pb"
local clock = os.clock
io.stdout:setvbuf("line")
local LUA = jit and jit.version:match("^%S+"):lower() or _VERSION:gsub("Lua ", "lua")

local function readfile(name)
  local f = assert(io.open(BENCH .. "/fixtures/" .. name, "rb"))
  local s = f:read("*a"); f:close(); return s
end

local schema = assert(dynpb.load(readfile("bench.pb")))
ref.option("no_default_values")
assert(ref.load(readfile("bench.pb")), "lua-protobuf: pb.load failed")
local data = require "bench_data"
local msgs = {
  { name = "Small", full = "bench.Small", bin = readfile("small.bin"), t = data.small },
  { name = "Order", full = "bench.Order", bin = readfile("order.bin"), t = data.order },
  { name = "Large", full = "bench.Large", bin = readfile("large.bin"), t = require("large_data").build() },
}

local median = require("stats").quantile

-- fn(n) -> CPU seconds for n operations
local function runner(m, lib)
  local h, bin, t, full = schema:message(m.full), m.bin, m.t, m.full
  if lib == "dynpb" then
    assert(#assert(h:encode(t)) == #bin, m.name .. ": dynpb size")
    if OP == "encode" then
      return function(n) local c = clock(); for _ = 1, n do h:encode(t) end; return clock() - c end
    end
    return function(n) local c = clock(); for _ = 1, n do h:decode(bin) end; return clock() - c end
  end
  local enc, dec = ref.encode, ref.decode
  assert(#assert(enc(full, t)) == #bin, m.name .. ": lua-protobuf size")
  if OP == "encode" then
    return function(n) local c = clock(); for _ = 1, n do enc(full, t) end; return clock() - c end
  end
  return function(n) local c = clock(); for _ = 1, n do dec(full, bin) end; return clock() - c end
end

local function calibrate(fn)
  local n = 1
  for _ = 1, 3 do fn(n) end               -- warm up (JIT traces, caches)
  while true do
    local dt = fn(n)
    if dt >= MS / 1000 then return n end
    n = dt < 1e-4 and n * 10 or math.ceil(n * (MS / 1000) * 1.2 / dt)
  end
end

print(("%s %s vs lua-protobuf: %d rounds of ~%d ms bursts, alternating"):format(LUA, OP, ROUNDS, MS))
print(("%-6s %10s %10s %8s %8s %8s"):format("", "dynpb/s", "ref/s", "vs ref", "q1", "q3"))
local ONLY = os.getenv("VSREF_ONLY")       -- e.g. "Large": that message alone
for _, m in ipairs(msgs) do
  if not ONLY or ONLY == m.name then
    local a, b = runner(m, "dynpb"), runner(m, "ref")
    local na, nb = calibrate(a), calibrate(b)
    local ra, ta, tb = {}, {}, {}
    for r = 1, ROUNDS do
      collectgarbage(); collectgarbage()
      local x, y
      if r % 2 == 1 then x = a(na) / na; y = b(nb) / nb else y = b(nb) / nb; x = a(na) / na end
      ta[r], tb[r], ra[r] = x, y, y / x
    end
    print(("%-6s %10.0f %10.0f %7.2fx %7.2fx %7.2fx"):format(m.name, 1 / median(ta), 1 / median(tb),
      median(ra), median(ra, 0.25), median(ra, 0.75)))
  end
end
