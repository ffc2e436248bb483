-- bench/scale.lua -- a whole company's schema: load all of googleapis (made
-- at bench time by bench/scale.sh from npm's google-proto-files with protoc
-- --include_imports) in a fresh process, and report time and memory.
--   <lua> bench/scale.lua dynpb|ref <set.pb>
-- Prints one line: "<lib>\t<ms>\t<rss growth MB>\t<stats bytes MB or ->\t<again ms>"
-- ("again": loading the same bytes a second time: a cache hit for dynpb, a
-- reload for lua-protobuf). Needs dynpb (or lua-protobuf's pb) on LUA_CPATH.
local LIB, PATH = assert(arg[1], "dynpb|ref"), assert(arg[2], "set")
local f = assert(io.open(PATH, "rb"))
local bytes = f:read("*a")
f:close()

local function rss_mb()
  for line in io.lines("/proc/self/status") do
    local kb = line:match("^VmRSS:%s*(%d+)")
    if kb then return tonumber(kb) / 1024 end
  end
end

local clock = os.clock
local load, stats
if LIB == "dynpb" then
  local dynpb = require "dynpb"
  load = function(s) return assert(dynpb.load(s)) end
  stats = function() return dynpb.stats().bytes / 1048576 end
else
  local pb = require "pb"
  load = function(s) return assert(pb.load(s)) end
end
collectgarbage(); collectgarbage()
local r0 = rss_mb()
local c = clock()
local keep = load(bytes) -- luacheck: ignore (kept alive while measuring)
local ms = (clock() - c) * 1000
collectgarbage(); collectgarbage()
local grow = rss_mb() - r0
local c2 = clock()
load(bytes)
local again = (clock() - c2) * 1000
print(("%s\t%.0f\t%.0f\t%s\t%.0f"):format(LIB, ms, grow, stats and ("%.1f"):format(stats()) or "-", again))
