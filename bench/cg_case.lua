-- bench/cg_case.lua -- one measured case of `make bench-callgrind`:
--   cg_host cg_case.lua <bench dir> decode|encode|refdecode|refencode|floor1|build|walk Small|Order|Large <n>
-- (floor1 and build: the decode floors of bench_floor, see floor.c; walk:
-- the encode floor, a C walk of the input table)
-- Sets up, runs the operation once (warm-up: lazy caches, first allocations),
-- then n times. callgrind.lua subtracts the n = 0 run, so only the n
-- operations remain.
local BENCH, OP, MSG, N = arg[1], arg[2], arg[3], tonumber(arg[4])
package.path = BENCH .. "/?.lua;" .. package.path
local dynpb = require "dynpb"
local function readfile(name)
  local f = assert(io.open(BENCH .. "/fixtures/" .. name, "rb"))
  local s = f:read("*a"); f:close(); return s
end
local schema = assert(dynpb.load(readfile("bench.pb")))
local h = assert(schema:message("bench." .. MSG))
local bin = readfile(MSG:lower() .. ".bin")
local t = MSG == "Large" and require("large_data").build() or require("bench_data")[MSG:lower()]
if OP == "walk" then
  local floor = require "bench_floor"
  floor.walk(t)
  for _ = 1, N do floor.walk(t) end
elseif OP == "floor1" or OP == "build" then
  local floor = require "bench_floor"
  local dec = assert(h:decode(bin))
  local shape, plan = floor.shape(dec), floor.plan(dec)
  if OP == "floor1" then
    floor.copy(dec, shape)
    for _ = 1, N do floor.copy(dec, shape) end
  else
    floor.build(plan, shape)
    for _ = 1, N do floor.build(plan, shape) end
  end
elseif OP == "refdecode" or OP == "refencode" then
  -- the reference library (lua-protobuf, bench/work/lua5.4/pb.so), same work
  local pb = require "pb"
  pb.option("no_default_values")
  assert(pb.load(readfile("bench.pb")))
  local name = "bench." .. MSG
  if OP == "refdecode" then
    assert(pb.decode(name, bin))
    for _ = 1, N do pb.decode(name, bin) end
  else
    assert(pb.encode(name, t))
    for _ = 1, N do pb.encode(name, t) end
  end
elseif OP == "decode" then
  assert(h:decode(bin))
  for _ = 1, N do h:decode(bin) end
else
  assert(h:encode(t))
  for _ = 1, N do h:encode(t) end
end
