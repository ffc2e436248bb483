-- bench/callgrind.lua -- `make bench-callgrind`: instructions per decode and
-- encode under valgrind --tool=callgrind, stable on a noisy machine; also the
-- decode floors (floor1: C deep copy of the decoded table; build: the tight
-- floor), for Small and Order.
--   lua5.4 callgrind.lua <bench dir> <work dir> <N> <cg_host>
-- Each case runs twice, with n = N and n = 0 operations after the same set-up;
-- (Ir(N) - Ir(0)) / N is the cost of one operation, set-up and exit cancelled.
-- The per-function profile is the same difference, function by function.
local BENCH, WORK, N, HOST = arg[1], arg[2], tonumber(arg[3]) or 2000, arg[4]
local OUTDIR = WORK .. "/callgrind"
os.execute("mkdir -p " .. OUTDIR)

local cases = {
  { "decode", "Small", N * 5 }, { "encode", "Small", N * 5 },
  { "decode", "Order", N }, { "encode", "Order", N },
  { "decode", "Large", math.max(5, N // 100) }, { "encode", "Large", math.max(5, N // 100) },
  { "floor1", "Small", N * 5 }, { "build", "Small", N * 5 },
  { "floor1", "Order", N }, { "build", "Order", N },
  { "walk", "Small", N * 5 }, { "walk", "Order", N },
}
-- the reference library (lua-protobuf) under the same host, when built
if package.searchpath and package.searchpath("pb", package.cpath) then
  for _, c in ipairs {
    { "refdecode", "Small", N * 5 }, { "refencode", "Small", N * 5 },
    { "refdecode", "Order", N }, { "refencode", "Order", N },
    { "refdecode", "Large", math.max(5, N // 100) }, { "refencode", "Large", math.max(5, N // 100) },
  } do cases[#cases + 1] = c end
end
-- CG_ONLY="encode.Order walk.Order": just those cases (quick comparisons)
local only = os.getenv("CG_ONLY")
if only and only ~= "" then
  local keep, want = {}, {}
  for w in only:gmatch("%S+") do want[w] = true end
  for _, c in ipairs(cases) do
    if want[c[1] .. "." .. c[2]] then keep[#keep + 1] = c end
  end
  cases = keep
end
local PROFILE = { ["decode.Order"] = true, ["encode.Order"] = true, ["encode.Large"] = true, ["encode.Small"] = true }

io.stdout:setvbuf("line")

local function run(op, msg, n)
  local out = ("%s/%s.%s.%d.out"):format(OUTDIR, op, msg, n)
  local cmd = ("valgrind --tool=callgrind --callgrind-out-file=%s %s %s/cg_case.lua %s %s %s %d"
    .. " >%s.log 2>&1"):format(out, HOST, BENCH, BENCH, op, msg, n, out)
  if not os.execute(cmd) then
    io.stderr:write("bench-callgrind: failed: " .. cmd .. "\n"); os.exit(1)
  end
  local total
  for line in io.lines(out) do
    total = total or tonumber(line:match("^totals:%s*(%d+)") or line:match("^summary:%s*(%d+)"))
  end
  return out, assert(total, "no totals in " .. out)
end

-- exclusive Ir per function (recursion levels merged), and per object
local function functions(out)
  local p = assert(io.popen("callgrind_annotate --auto=no --threshold=100 " .. out .. " 2>/dev/null"))
  local fns, objs, lines, fnobj = {}, {}, {}, {}
  for line in p:lines() do
    local ir, rest = line:match("^%s*([%d,]+)%s+%(%s*[%d.]+%%%)%s+(.-)%s*$")
    if ir and rest ~= "PROGRAM TOTALS" then
      local where, obj = rest:match("^(.-)%s+%[(.-)%]$")
      where = where or rest
      local fn = (where:match(":([^:]+)$") or where):gsub("'%d+$", "")
      obj = obj and obj:match("([^/]+)$")
      if obj == "cg_host" then obj = "lua" elseif obj and obj:match("^libc") then obj = "libc" end
      if obj then fnobj[fn] = obj end
      -- callgrind_annotate leaves the object out of some lines
      if not obj and where:match("^csrc/") then obj = "dynpb.so" end
      lines[#lines + 1] = { fn, obj, tonumber((ir:gsub(",", ""))) }
    end
  end
  for _, l in ipairs(lines) do
    local fn, obj, ir = l[1], l[2] or fnobj[l[1]] or "?", l[3]
    fns[fn] = (fns[fn] or 0) + ir
    objs[obj] = (objs[obj] or 0) + ir
  end
  p:close()
  return fns, objs
end

local p = io.popen("cd " .. BENCH .. " && git describe --always --dirty 2>/dev/null")
local rev = p and p:read("*l") or "?"
if p then p:close() end
local rows, tsv = {}, { ("#\tdynpb bench-callgrind\t%s\trev %s\tN=%d"):format(
  os.date("!%Y-%m-%dT%H:%M:%SZ"), rev, N), "#\tcase\tn\tIr_per_op\tIr_per_byte" }
io.stderr:write("bench-callgrind: ")
for _, c in ipairs(cases) do
  local op, msg, n = c[1], c[2], c[3]
  local out1, t1 = run(op, msg, n)
  local out0, t0 = run(op, msg, 0)
  local size = #assert(io.open(BENCH .. "/fixtures/" .. msg:lower() .. ".bin", "rb")):read("*a")
  local per = (t1 - t0) / n
  rows[#rows + 1] = { op .. " " .. msg, n, per, per / size, out1, out0 }
  tsv[#tsv + 1] = ("%s.%s\t%d\t%.0f\t%.1f"):format(op, msg, n, per, per / size)
  io.stderr:write(op .. " " .. msg .. ", ")
end
io.stderr:write("done\n")

print(("\ndynpb bench-callgrind   %s   Lua 5.4, instructions per operation = (Ir(n) - Ir(0)) / n"):format(rev))
print(("%-14s %7s %12s %10s"):format("", "n", "Ir/op", "Ir/byte"))
local per = {}
for _, r in ipairs(rows) do
  per[r[1]] = r[3]
  print(("%-14s %7d %12.0f %10.1f"):format(r[1], r[2], r[3], r[4]))
end
for _, m in ipairs { "Small", "Order" } do
  local d, f1, b = per["decode " .. m], per["floor1 " .. m], per["build " .. m]
  if d and f1 and b then
    print(("decode %s / floor1 = %.2fx, / build = %.2fx (instructions)"):format(m, d / f1, d / b))
    tsv[#tsv + 1] = ("decode.%s/floor1\t-\t%.3f"):format(m, d / f1)
    tsv[#tsv + 1] = ("decode.%s/build\t-\t%.3f"):format(m, d / b)
  end
  local e, w = per["encode " .. m], per["walk " .. m]
  if e and w then
    print(("encode %s / walk = %.2fx (instructions)"):format(m, e / w))
    tsv[#tsv + 1] = ("encode.%s/walk\t-\t%.3f"):format(m, e / w)
  end
end

for _, op in ipairs { "decode", "encode" } do
  for _, m in ipairs { "Small", "Order", "Large" } do
    local d, r = per[op .. " " .. m], per["ref" .. op .. " " .. m]
    if d and r then
      print(("%s %s: lua-protobuf / dynpb = %.2fx (instructions; a speedup)"):format(op, m, r / d))
      tsv[#tsv + 1] = ("%s.%s/ref\t-\t%.3f"):format(op, m, r / d)
    end
  end
end

for _, r in ipairs(rows) do
  local key = r[1]:gsub(" ", ".")
  if PROFILE[key] then
    local f1, o1 = functions(r[5])
    local f0, o0 = functions(r[6])
    local list = {}
    for fn, ir in pairs(f1) do
      local d = (ir - (f0[fn] or 0)) / r[2]
      if d > 0 then list[#list + 1] = { fn, d } end
    end
    table.sort(list, function(a, b) return a[2] > b[2] end)
    local by = {}
    for obj, ir in pairs(o1) do
      local d = (ir - (o0[obj] or 0)) / r[2]
      if d / r[3] >= 0.01 then by[#by + 1] = ("%s %.0f%%"):format(obj, d / r[3] * 100) end
    end
    table.sort(by)
    print(("\n%s: top functions, exclusive Ir/op (by object: %s)"):format(r[1], table.concat(by, ", ")))
    for i = 1, math.min(10, #list) do
      print(("  %8.0f %5.1f%%  %s"):format(list[i][2], list[i][2] / r[3] * 100, list[i][1]))
      tsv[#tsv + 1] = ("fn:%s\t%s\t%.0f"):format(key, list[i][1], list[i][2])
    end
  end
end
local f = assert(io.open(WORK .. "/callgrind.tsv", "w"))
f:write(table.concat(tsv, "\n"), "\n"); f:close()

-- CG_BASELINE=file: the regression guard (make bench-guard, run by CI).
-- Each case measured here and listed in the file ("case<TAB>Ir/op") may
-- cost at most CG_TOLERANCE (default 0.15) more instructions than listed.
-- Counts repeat within ~2% for one build (dynpb hashes some pointers, so
-- address layout moves them a little); a larger rise is a real change.
local base = os.getenv("CG_BASELINE")
if base and base ~= "" then
  local tol = tonumber(os.getenv("CG_TOLERANCE")) or 0.15
  local want = {}
  for line in io.lines(base) do
    local case, ir = line:match("^([%w%.]+)\t(%d+)")
    if case then want[case] = tonumber(ir) end
  end
  local bad, seen = 0, 0
  print(("\nguard against %s (a rise over %d%% fails)"):format(base, tol * 100))
  for _, r in ipairs(rows) do
    local case = r[1]:gsub(" ", ".")
    local w = want[case]
    if w then
      seen = seen + 1
      local change = r[3] / w - 1
      local verdict = change > tol and "FAIL" or (change < -0.1 and "better: update the baseline" or "ok")
      if change > tol then bad = bad + 1 end
      print(("  %-14s %10d %10.0f %+6.1f%%  %s"):format(r[1], w, r[3], change * 100, verdict))
    end
  end
  if seen == 0 then print("guard: no case of the baseline was measured"); os.exit(1) end
  if bad > 0 then print(("guard: %d case(s) cost more than the baseline allows"):format(bad)); os.exit(1) end
  print("guard: ok")
end
print(("\n(%s/callgrind.tsv; profiles: callgrind_annotate %s/<case>.<n>.out)"):format(WORK, OUTDIR))
