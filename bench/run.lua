-- bench/run.lua -- the dynpb benchmark for one Lua (issue 6). Run by `make bench`:
--   <lua> bench/run.lua <bench dir> <out.tsv> [seconds per run] [runs] [pbc_bench binary]
-- Needs dynpb and bench_floor on LUA_CPATH and cjson installed.
--
-- Every test is calibrated once to take about <seconds> of process CPU time
-- (os.clock), then run <runs> rounds; a round runs every test once, in turn
-- (protobuf-c included, as a child process), so slow drifts of a shared
-- machine hit all tests alike; a lua-protobuf test runs right before or after
-- its dynpb test (the order alternating by round). Figures are medians over
-- rounds; a ratio is the median of the per-round ratios of two tests measured
-- side by side.
local BENCH, OUT = assert(arg[1], "bench dir"), assert(arg[2], "output file")
local SECONDS = tonumber(arg[3]) or 0.2
local RUNS = tonumber(arg[4]) or 7
local PBC = arg[5] ~= "" and arg[5] or nil
package.path = BENCH .. "/?.lua;" .. package.path

local dynpb = require "dynpb"
local floor = require "bench_floor"
local cjson = require "cjson"
-- the reference library (lua-protobuf, built by `make bench` from
-- ../shared/peers/lua-protobuf into bench/work/<lua>/pb.so), when present
local has_ref, ref = pcall(require, "pb")
if not has_ref then ref = nil end
local clock = os.clock
io.stdout:setvbuf("line")
local LUA = jit and jit.version:match("^%S+"):lower() or _VERSION:gsub("Lua ", "lua")

local function readfile(name)
  local f = assert(io.open(BENCH .. "/fixtures/" .. name, "rb"))
  local s = f:read("*a"); f:close(); return s
end

local function sh(cmd)
  local p = io.popen(cmd .. " 2>/dev/null"); if not p then return "" end
  local s = p:read("*a") or ""; p:close(); return (s:gsub("%s+$", ""))
end

------------------------------------------------------------------ inputs
dynpb.configure { pin = 0 }          -- so a dropped schema really is dropped (load miss)
local schema = assert(dynpb.load(readfile("bench.pb")))
local loadset = readfile("loadset.pb")
local data = require "bench_data"
local msgs = {
  { name = "Small", h = assert(schema:message("bench.Small")), bin = readfile("small.bin"), t = data.small },
  { name = "Order", h = assert(schema:message("bench.Order")), bin = readfile("order.bin"), t = data.order },
  { name = "Large", h = assert(schema:message("bench.Large")), bin = readfile("large.bin"),
    t = require("large_data").build() },
}

-- deep equality, with a path in the error
local function check_equal(a, b, path)
  if type(a) ~= "table" or type(b) ~= "table" then
    if a ~= b and not (type(a) == "number" and type(b) == "number" and a == b) then
      error(("%s: %s ~= %s"):format(path, tostring(a), tostring(b)), 0)
    end
    return
  end
  for k, v in pairs(a) do check_equal(v, b[k], path .. "." .. tostring(k)) end
  for k in pairs(b) do
    if a[k] == nil then error(path .. "." .. tostring(k) .. ": missing", 0) end
  end
end

-- the benchmark is only meaningful if dynpb gets it right: check first
for _, m in ipairs(msgs) do
  local dec = assert(m.h:decode(m.bin))
  check_equal(dec, m.t, m.name .. " decode")
  local enc = assert(m.h:encode(m.t))
  assert(#enc == #m.bin, m.name .. ": encoded size differs from protoc's")
  check_equal(assert(m.h:decode(enc)), m.t, m.name .. " round trip")
  m.dec = dec                                   -- floor 1 copies this table
  m.shape = floor.shape(dec)
  m.plan = floor.plan(dec)
  check_equal(floor.copy(dec, m.shape), m.t, m.name .. " floor1 copy")
  check_equal(floor.build(m.plan, m.shape), m.t, m.name .. " floor1 build")
  m.json = cjson.encode(m.t)
  check_equal(cjson.decode(m.json), m.t, m.name .. " json")
  -- proto3 JSON (issue 12): to_json/from_json against the two-step paths
  -- gateways use, cjson.encode(decode(b)) and encode(cjson.decode(j))
  if m.h.to_json then
    m.pjson = assert(m.h:to_json(m.bin))
    assert(m.h:from_json(m.pjson) == enc, m.name .. ": from_json(to_json(b)) differs from encode")
    assert(m.h:encode(cjson.decode(m.json)), m.name .. ": encode(cjson.decode(j)) failed")
  end
end

-- the reference library does the same work: same bytes in, same tables out
-- (no default filling), same sizes out of encode
if ref then
  ref.option("no_default_values")
  assert(ref.load(readfile("bench.pb")), "lua-protobuf: pb.load failed")
  for _, m in ipairs(msgs) do
    m.pbname = m.h.name
    check_equal(assert(ref.decode(m.pbname, m.bin)), m.t, m.name .. " lua-protobuf decode")
    assert(#assert(ref.encode(m.pbname, m.t)) == #m.bin, m.name .. ": lua-protobuf encoded size differs")
  end
end

------------------------------------------------------------------ tests
-- a test: { id, fn = function(n) -> CPU seconds for n operations }
local tests, byid, external = {}, {}, {}
local function add(id, bytes, fn)
  local t = { id = id, bytes = bytes, fn = fn, times = {} }
  byid[id] = t
  if fn then tests[#tests + 1] = t else external[#external + 1] = t end
end

for _, m in ipairs(msgs) do
  local h, bin, t, dec, shape, plan, json = m.h, m.bin, m.t, m.dec, m.shape, m.plan, m.json
  local fcopy, fbuild, fwalk, jdec, jenc = floor.copy, floor.build, floor.walk, cjson.decode, cjson.encode
  add("dynpb.decode." .. m.name, #bin, function(n)
    local c = clock(); for _ = 1, n do h:decode(bin) end; return clock() - c
  end)
  add("floor1.decode." .. m.name, #bin, function(n)
    local c = clock(); for _ = 1, n do fcopy(dec, shape) end; return clock() - c
  end)
  add("build.decode." .. m.name, #bin, function(n)
    local c = clock(); for _ = 1, n do fbuild(plan, shape) end; return clock() - c
  end)
  add("cjson.decode." .. m.name, #json, function(n)
    local c = clock(); for _ = 1, n do jdec(json) end; return clock() - c
  end)
  add("dynpb.encode." .. m.name, #bin, function(n)
    local c = clock(); for _ = 1, n do h:encode(t) end; return clock() - c
  end)
  add("floor1.encode." .. m.name, #bin, function(n)
    local c = clock(); for _ = 1, n do fwalk(t) end; return clock() - c
  end)
  add("cjson.encode." .. m.name, #json, function(n)
    local c = clock(); for _ = 1, n do jenc(t) end; return clock() - c
  end)
  -- partial decode (issue 17): two top-level scalars of Order; Large has
  -- one top-level scalar (generated_at): picked with the notes (a repeated string)
  local pick = ({ Order = { "id", "user_id" }, Large = { "generated_at", "notes" } })[m.name]
  if pick then
    local popts = { fields = pick }
    add("pick.decode." .. m.name, #bin, function(n)
      local c = clock(); for _ = 1, n do h:decode(bin, popts) end; return clock() - c
    end)
  end
  if ref then
    local rdec, renc, pbname = ref.decode, ref.encode, m.pbname
    add("ref.decode." .. m.name, #bin, function(n)
      local c = clock(); for _ = 1, n do rdec(pbname, bin) end; return clock() - c
    end)
    add("ref.encode." .. m.name, #bin, function(n)
      local c = clock(); for _ = 1, n do renc(pbname, t) end; return clock() - c
    end)
  end
  if m.pjson then
    local pjson, enc = m.pjson, h.encode
    add("dynpb.to_json." .. m.name, #bin, function(n)
      local c = clock(); for _ = 1, n do h:to_json(bin) end; return clock() - c
    end)
    add("twostep.to_json." .. m.name, #bin, function(n)
      local c = clock(); for _ = 1, n do jenc(h:decode(bin)) end; return clock() - c
    end)
    add("dynpb.from_json." .. m.name, #pjson, function(n)
      local c = clock(); for _ = 1, n do h:from_json(pjson) end; return clock() - c
    end)
    add("twostep.from_json." .. m.name, #json, function(n)
      local c = clock(); for _ = 1, n do enc(h, jdec(json)) end; return clock() - c
    end)
  end
end

add("load.hit", #loadset, function(n)
  local held = assert(dynpb.load(loadset))     -- keeps it cached (a miss the first time)
  local h0 = dynpb.stats().hits
  local c = clock()
  for _ = 1, n do dynpb.load(loadset) end
  local dt = clock() - c
  assert(dynpb.stats().hits == h0 + n, "load.hit: not all loads were cache hits")
  held = nil -- luacheck: ignore
  return dt
end)

add("load.miss", #loadset, function(n)
  local dt, s = 0, nil
  for _ = 1, n do
    s = nil -- luacheck: ignore
    collectgarbage(); collectgarbage()          -- drop the previous compile (untimed)
    local m0 = dynpb.stats().misses
    local c = clock()
    s = dynpb.load(loadset)
    dt = dt + (clock() - c)
    assert(s and dynpb.stats().misses == m0 + 1, "load.miss: the load was not a miss")
  end
  return dt
end)

-- dynpb.compile (issue 13): ~50 KB of .proto sources in process, beside
-- protoc run as a process on the same files (its CPU time, user + sys,
-- measured by bash's `time` around a loop of runs, each round)
local PROTO_FILES = { "loadset.proto", "bench.proto", "large.proto", "google/protobuf/type.proto" }
local proto_src, proto_bytes = {}, 0
for _, f in ipairs(PROTO_FILES) do
  local path = f:match("^google/") and ("/usr/include/" .. f) or (BENCH .. "/fixtures/" .. f)
  local h = assert(io.open(path, "rb")); proto_src[f] = h:read("*a"); h:close()
  proto_bytes = proto_bytes + #proto_src[f]
end
local COMPILE = { files = PROTO_FILES, sources = proto_src }
add("compile", proto_bytes, function(n)
  local c = clock(); for _ = 1, n do dynpb.compile(COMPILE) end; return clock() - c
end)
local PROTOC_RUNS = 5
local function protoc_cpu()
  local cmd = ("bash -c 'TIMEFORMAT=\"%%U %%S\"; time (for i in $(seq %d); do protoc -I%s/fixtures -I/usr/include"
    .. " --include_imports --descriptor_set_out=/dev/null %s 2>/dev/null; done)' 2>&1"):format(
    PROTOC_RUNS, BENCH, table.concat(PROTO_FILES, " "))
  local p = assert(io.popen(cmd)); local out = p:read("*a"); p:close()
  local u, sy = out:match("([%d.]+)%s+([%d.]+)%s*$")
  return u and (tonumber(u) + tonumber(sy)) / PROTOC_RUNS
end
do
  local a = assert(dynpb.compile(COMPILE))
  local p = assert(io.popen(("protoc -I%s/fixtures -I/usr/include --include_imports --descriptor_set_out=/dev/stdout %s")
    :format(BENCH, table.concat(PROTO_FILES, " "))))
  local b = p:read("*a"); p:close()
  assert(a == b, "bench: dynpb.compile and protoc differ on the compile bench files")
end
add("protoc.compile", proto_bytes, nil)

local MB = {}
do
  local parts, x = {}, 12345
  for i = 1, 1048576 / 16 do
    local b = {}
    for j = 1, 16 do x = (x * 1103515245 + 12345) % 2147483648; b[j] = x % 256 end
    parts[i] = string.char((table.unpack or unpack)(b))
  end
  MB = table.concat(parts)
end
add("sha256", #MB, function(n)
  local fp = dynpb.fingerprint
  local c = clock(); for _ = 1, n do fp(MB) end; return clock() - c
end)

------------------------------------------------------------------ measuring
local function calibrate(t)
  local n = 1
  while true do
    collectgarbage(); collectgarbage()
    local dt = t.fn(n)
    if dt >= 0.02 then
      t.n = math.max(1, math.floor(n * SECONDS / dt + 0.5)); return
    end
    n = dt < 0.001 and n * 10 or math.ceil(n * 0.03 / dt)
  end
end

local median = require("stats").quantile

-- a reference test runs right next to its dynpb test, first in every other
-- round, so that the pair's ratio sees the same moment of a shared machine
for _, t in ipairs(tests) do
  local p = t.id:match("^ref%.(.*)$") and byid["dynpb." .. t.id:sub(5)]
  if p then p.partner, t.partner_of = t, p end
end
local function measure(t, r)
  collectgarbage(); collectgarbage()
  t.times[r] = t.fn(t.n) / t.n
end

local start = clock()
io.stderr:write(("bench %s: calibrating %d tests ..."):format(LUA, #tests))
for _, t in ipairs(tests) do calibrate(t) end
io.stderr:write(" measuring " .. RUNS .. " rounds:")
for r = 1, RUNS do
  for _, t in ipairs(tests) do
    if not t.partner_of then
      local p = t.partner
      if p and r % 2 == 0 then measure(p, r) end
      measure(t, r)
      if p and r % 2 == 1 then measure(p, r) end
    end
  end
  byid["protoc.compile"].times[r] = protoc_cpu()
  if PBC then
    local p = assert(io.popen(("%s %s/fixtures %s"):format(PBC, BENCH, SECONDS)))
    for line in p:lines() do
      local op, name, sec = line:match("^pbc\t(%w+)\t(%w+)\t(%S+)$")
      if op then
        local id = "pbc." .. op .. "." .. name
        if not byid[id] then add(id, byid["dynpb." .. op .. "." .. name].bytes, nil) end
        byid[id].times[r] = tonumber(sec)
      end
    end
    p:close()
  end
  io.stderr:write(" " .. r)
end
io.stderr:write(("  (%.0f s CPU)\n"):format(clock() - start))

------------------------------------------------------------------ results
local function med_time(id) local t = byid[id]; return t and median(t.times) end
-- median over rounds of time(a) / time(b) * scale
local function ratio(a, b, scale)
  local ta, tb = byid[a], byid[b]
  if not (ta and tb) then return nil end
  local rs = {}
  for r = 1, RUNS do
    if ta.times[r] and tb.times[r] then rs[#rs + 1] = ta.times[r] / (tb.times[r] * (scale or 1)) end
  end
  return median(rs)
end
local function spread(id)
  local t = byid[id]
  local lo, hi = math.huge, 0
  for _, x in ipairs(t.times) do lo = math.min(lo, x); hi = math.max(hi, x) end
  return (hi - lo) / median(t.times) * 50
end

local function si(x)
  if not x then return "-" end
  if x >= 1e6 then return ("%.2fM"):format(x / 1e6) end
  if x >= 1e4 then return ("%.0fk"):format(x / 1e3) end
  if x >= 10 then return ("%.0f"):format(x) end
  return ("%.2f"):format(x)
end
local function rx(x) return x and ("%.2fx"):format(x) or "-" end

local out = {}
local function tsv(...) out[#out + 1] = table.concat({ ... }, "\t") end
local rev = sh("cd " .. BENCH .. " && git describe --always --dirty")
local cpu = sh("lscpu | sed -n 's/^Model name: *//p'")
local ncpu = sh("nproc")
tsv("#", "dynpb bench", LUA, os.date("!%Y-%m-%dT%H:%M:%SZ"), "rev " .. rev, ncpu .. " cpu", cpu,
    RUNS .. " runs x " .. SECONDS .. " s")
tsv("#", "rate", "lua", "test", "bytes", "ops_per_s", "MB_per_s", "spread_pct")
for _, t in ipairs(tests) do external[#external + 1] = t end
for _, t in ipairs(external) do
  local m = median(t.times)
  if m then tsv("rate", LUA, t.id, t.bytes, ("%.1f"):format(1 / m), ("%.2f"):format(t.bytes / m / 1e6),
               ("%.1f"):format(spread(t.id))) end
end

print(("\ndynpb %s   %s   %s CPU, %s   median of %d runs x %.2g s CPU"):format(
  LUA, rev, ncpu, cpu, RUNS, SECONDS))
print(("%-14s %7s %8s %8s %4s %8s %8s %8s %8s %8s"):format(
  "", "bytes", "ops/s", "MB/s", "+-%", "floor1", "build", "protobc", "cjson", "vs ref"))
tsv("#", "ratio", "lua", "name", "value")
local function row(label, id, floors, refid)
  local m = med_time(id)
  local cols = {}
  for i, f in ipairs(floors or {}) do
    local r = f and ratio(id, f)
    cols[i] = rx(r)
    if r then tsv("ratio", LUA, id .. "/" .. f:match("^[^.]+"), ("%.3f"):format(r)) end
  end
  -- the reference column is a speedup: reference time / dynpb time
  local sp = refid and ratio(refid, id)
  if sp then tsv("speedup", LUA, id .. "/ref", ("%.3f"):format(sp)) end
  print((("%-14s %7d %8s %8.1f %4.0f %8s %8s %8s %8s %8s"):format(label, byid[id].bytes, si(1 / m),
    byid[id].bytes / m / 1e6, spread(id), cols[1] or "", cols[2] or "", cols[3] or "", cols[4] or "",
    sp and rx(sp) or ""):gsub("%s+$", "")))
end
for _, op in ipairs { "decode", "encode" } do
  for _, m in ipairs(msgs) do
    local s = op .. "." .. m.name
    row(op .. " " .. m.name, "dynpb." .. s,
      { "floor1." .. s, op == "decode" and "build." .. s or false, "pbc." .. s, "cjson." .. s },
      ref and "ref." .. s)
  end
end
local shaB = byid.sha256.bytes
local hit_sha = ratio("load.hit", "sha256", #loadset / shaB)
local miss_hit = ratio("load.miss", "load.hit")
row("load hit", "load.hit")
row("load miss", "load.miss")
row("sha256 1MB", "sha256")
row("compile", "compile")
row("protoc (proc)", "protoc.compile")
local protoc_x = ratio("protoc.compile", "compile")
tsv("ratio", LUA, "protoc.compile/compile", ("%.3f"):format(protoc_x or 0))
print(("compile %d KB of .proto: dynpb.compile in process is %s faster than running protoc (CPU, same files, same bytes; goal >= 10x)")
  :format(math.floor(proto_bytes / 1024 + 0.5), rx(protoc_x)))
tsv("ratio", LUA, "load.hit/sha256", ("%.3f"):format(hit_sha))
tsv("ratio", LUA, "load.miss/load.hit", ("%.3f"):format(miss_hit))
print(("load hit = %s the SHA-256 of the same bytes; a miss (compile) = %s a hit"):format(
  rx(hit_sha), rx(miss_hit)))
print("ratios: dynpb time / floor time (lower is better), medians of per-round ratios.  floor1: C deep copy"
  .. "\nof the decoded table (encode: C walk of the input table); build: the same tables built in C from a"
  .. "\nflat list, strings re-made (tight floor); protobc: protobuf-c unpack+free, size+pack (C, no Lua);"
  .. "\ncjson: the same table as JSON.  vs ref: lua-protobuf time / dynpb time (a speedup, higher is"
  .. "\nbetter; pb.option \"no_default_values\"), medians of per-round ratios.")

-- targets (issues 6 and 17)
print(("%-30s %7s %7s"):format("targets (issues 6, 17)", "value", "goal"))
tsv("#", "target", "lua", "name", "value", "goal", "verdict")
local function target(name, label, x, goal, ok, note)
  local v = ok and "ok" or "MISS"
  tsv("target", LUA, name, ("%.3f"):format(x), goal, v)
  print((("  %-28s %7s %7s  %-4s %s"):format(label, name:match("MBps") and ("%.0f"):format(x) or rx(x),
    goal, v, note or ""):gsub("%s+$", "")))
end
-- against the reference library, measured in the same rounds (issue 17):
-- encode at least 1.5x, decode at least 1.4x its speed
if ref then
  for _, op in ipairs { "encode", "decode" } do
    local goal = op == "encode" and 1.5 or 1.4
    for _, m in ipairs(msgs) do
      local s = op .. "." .. m.name
      local x = ratio("ref." .. s, "dynpb." .. s)
      target(s .. "/ref", s:gsub("%.", " ") .. " vs lua-protobuf", x, (">=%.1fx"):format(goal),
        x >= goal, ("(%s vs %s ops/s)"):format(si(1 / med_time("dynpb." .. s)), si(1 / med_time("ref." .. s))))
    end
  end
else
  print("  (lua-protobuf not built: no reference rows; make bench builds it from ../shared/peers/lua-protobuf)")
end
for _, s in ipairs { "decode.Order", "decode.Small" } do
  local x = ratio("dynpb." .. s, "floor1." .. s)
  target(s .. "/floor1", s:gsub("%.", " ") .. " / floor1", x, "<=1.2x", x <= 1.2)
end
-- partial decode: picking two top-level fields, against a full decode
for _, g in ipairs { { "Order", 2 }, { "Large", 5 } } do
  local x = ratio("dynpb.decode." .. g[1], "pick.decode." .. g[1])
  if x then
    target("pick." .. g[1], "decode " .. g[1] .. " pick 2 / full", x, (">=%dx"):format(g[2]), x >= g[2],
      g[1] == "Order" and "(fields id, user_id)" or "(fields generated_at, notes: 250 strings)")
  end
end
-- decode within 1.1x of the build floor on Order and Large (issue 17)
for _, s in ipairs { "decode.Order", "decode.Large" } do
  local x = ratio("dynpb." .. s, "build." .. s)
  target(s .. "/build", s:gsub("%.", " ") .. " / build", x, "<=1.1x", x <= 1.1)
end
local sha = shaB / med_time("sha256") / 1e6
target("sha256_MBps", "sha256 MB/s", sha, ">=300", sha >= 300)
target("load.hit/sha256", "load hit / sha256", hit_sha, "<=1.1x", hit_sha <= 1.1,
  "(same bytes; 1.1: noise)")


-- issue 12 / 17: proto3 JSON beside the two-step paths, in the same rounds
if byid["dynpb.to_json.Order"] then
  print(("%-30s %8s %8s %10s %10s"):format("JSON (issue 12)", "bytes", "ops/s", "vs 2-step", "vs cjson"))
  for _, d in ipairs { { "to_json", "encode" }, { "from_json", "decode" } } do
    for _, m in ipairs(msgs) do
      local id = "dynpb." .. d[1] .. "." .. m.name
      if byid[id] then
        -- speedups: the other path's time / dynpb's time (higher is better)
        local two = 1 / ratio(id, "twostep." .. d[1] .. "." .. m.name)
        local cj = 1 / ratio(id, "cjson." .. d[2] .. "." .. m.name)
        tsv("speedup", LUA, id .. "/twostep", ("%.3f"):format(two))
        tsv("speedup", LUA, id .. "/cjson." .. d[2], ("%.3f"):format(cj))
        print(("  %-28s %8d %8s %9.2fx %9.2fx"):format(d[1] .. " " .. m.name, byid[id].bytes,
          si(1 / med_time(id)), two, cj))
        if m.name ~= "Small" then
          target(d[1] .. "." .. m.name .. "/twostep", d[1] .. " " .. m.name .. " vs 2-step", two, ">=3x", two >= 3)
        end
      end
    end
  end
  print("vs 2-step: time of cjson.encode(H:decode(b)) (to_json) or H:encode(cjson.decode(j)) (from_json)"
    .. "\n/ dynpb's time; vs cjson: time of cjson.encode (to_json) or cjson.decode (from_json) of the same"
    .. "\nmessage alone / dynpb's time. Medians of per-round ratios, measured side by side.")
end

local f = assert(io.open(OUT, "w"))
f:write(table.concat(out, "\n"), "\n")
f:close()
print("(" .. OUT .. ")")
