-- bench/compare.lua -- before/after of two runs' TSV files:
--   lua5.4 bench/compare.lua before.tsv after.tsv
-- Works on results-<lua>.tsv (ops/s per test, ratios) and callgrind.tsv
-- (instructions per operation). Change is in the direction of "better":
-- + means faster / fewer instructions / closer to the floor.
local function load(path)
  local rows, order, head = {}, {}, ""
  for line in io.lines(path) do
    local f = {}
    for x in (line .. "\t"):gmatch("([^\t]*)\t") do f[#f + 1] = x end
    local key, val, better
    if f[1] == "#" then
      if f[2] and f[2]:match("^dynpb") then head = line:gsub("\t", " ") end
    elseif f[1] == "rate" then key, val, better = f[3], tonumber(f[5]), 1
    elseif f[1] == "ratio" then key, val, better = f[3], tonumber(f[4]), -1
    elseif f[1]:match("^fn:") then key, val, better = f[1]:sub(4) .. " " .. f[2], tonumber(f[3]), -1
    elseif f[1] ~= "target" and tonumber(f[3]) then key, val, better = f[1], tonumber(f[3]), -1
    end
    if key and val then
      if not rows[key] then order[#order + 1] = key end
      rows[key] = { val, better }
    end
  end
  return rows, order, head
end

local a, order, ha = load(assert(arg[1], "usage: compare.lua before.tsv after.tsv"))
local b, _, hb = load(assert(arg[2], "usage: compare.lua before.tsv after.tsv"))
print("before: " .. ha .. "\nafter:  " .. hb)
print(("%-40s %12s %12s %8s"):format("", "before", "after", "better"))
for _, k in ipairs(order) do
  if b[k] then
    local x, y, better = a[k][1], b[k][1], a[k][2]
    local ch = better > 0 and (y / x - 1) or (x / y - 1)
    print(("%-40s %12.5g %12.5g %+7.1f%%"):format(k, x, y, ch * 100))
  end
end
