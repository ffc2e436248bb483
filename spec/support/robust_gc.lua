-- busted helper for `make gc-stress`: loads spec/helper.lua, then makes the
-- collector run all the time, so a Lua value that dynpb uses from C without
-- anchoring it (on the stack, in a uservalue, in the registry) is collected
-- and reused while still in use, and the specs or the sanitizers see it.
--
-- Pause 0 (a new cycle starts as soon as one ends) and a huge step
-- multiplier (Lua 5.4: 1000, its maximum, with the smallest step size): in
-- practice one complete collection per allocation on Lua 5.1, 5.3, 5.4 and
-- LuaJIT (measured with a self re-arming finalizer: ~2 cycles per table
-- allocated, against one per ~100-1000 allocations by default).
-- DYNPB_GC_STRESS=off loads the plain helper (to time the difference).
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec/support"
dofile(here .. "/../helper.lua")

local mode = os.getenv("DYNPB_GC_STRESS") or "on"
if mode ~= "off" then
  collectgarbage("restart")
  collectgarbage("setpause", 0)
  if _VERSION == "Lua 5.4" then
    collectgarbage("setstepmul", 1000)          -- stored in a byte (/4): 1000 is the top
    collectgarbage("incremental", 0, 0, 1)      -- 0 = unchanged; step size 2^1 bytes
  else
    collectgarbage("setstepmul", 1000000)
  end
  T.gc_stress = true
end
