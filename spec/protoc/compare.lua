-- spec/protoc/compare.lua -- dynpb.compile against Debian's protoc 3.21.12
-- (--include_imports --descriptor_set_out) on every corpus, with figures:
--   /usr/include/google/protobuf/**.proto, the project's fixtures, Debian's
--   protobuf test protos (spec/protoc/fetch_src.sh), RANDOM (default 300)
--   generated sets (spec/protoc/gen.lua), MUTATIONS (300) mutated ones that
--   must give the same bytes or the same error, and googleapis when GOOGLEAPIS
--   names a directory (npm google-proto-files; GOOGLEAPIS_EVERY=n samples).
-- Run: make protoc-compare [LUA=...] / make protoc-googleapis;
--   env RANDOM_SETS=n SOURCE_INFO=1
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec/protoc"
package.path = here .. "/?.lua;" .. package.path
local lib = require("lib")
local gen = require("gen")
local dynpb = require("dynpb")
local specdir = here .. "/.."
local root = specdir .. "/.."
local source_info = os.getenv("SOURCE_INFO") == "1"
local failed = 0

local function report(name, n, same, bad, bothfail)
  print(("%-34s %5d files  %5d identical  %d differ%s"):format(name, n, same, #bad,
    bothfail and bothfail > 0 and ("  (%d of the identical: both fail)"):format(bothfail) or ""))
  for i = 1, math.min(#bad, 10) do print("  " .. bad[i]) end
  failed = failed + #bad
end

-- each file of root on its own (imports resolved through paths)
local function corpus(name, rootdir, paths, filter)
  local files = lib.find(rootdir)
  local same, bad, n, bf = 0, {}, 0, 0
  for _, f in ipairs(files) do
    if not filter or filter(f) then
      n = n + 1
      local st, a, b = lib.compare(dynpb, paths, { f }, source_info)
      if st == "same" or st == "both-fail" then same = same + 1
      else bad[#bad + 1] = f .. ": " .. tostring(a) end
      if st == "both-fail" then bf = bf + 1 end
    end
  end
  report(name, n, same, bad, bf)
end

corpus("/usr/include/google/protobuf", "/usr/include", { "/usr/include" }, function(f)
  return f:match("^google/protobuf/")
end)
-- (google/api/*.proto, imported by some fixtures: golang-github-gogo-googleapis-dev)
corpus("spec/fixtures/proto", specdir .. "/fixtures/proto", { specdir .. "/fixtures/proto", "/usr/share/gocode/src/github.com/gogo/googleapis" })
corpus("bench/fixtures", root .. "/bench/fixtures", { root .. "/bench/fixtures" })
local src, why = lib.debian_src(specdir)
if src then
  corpus("Debian protobuf source (src/)", src, { src }, function(f) return f:match("^google/protobuf/") end)
else
  print("Debian protobuf source: " .. why); failed = failed + 1
end

-- random sets
local nrand = tonumber(os.getenv("RANDOM_SETS") or "300")
local tmp = os.tmpname()
os.remove(tmp)
os.execute("mkdir -p " .. lib.q(tmp))
local same, bad = 0, {}
for seed = 1, nrand do
  local set = gen.set(seed)
  local names = {}
  for _, f in ipairs(set) do lib.write(tmp .. "/" .. f.name, f.text); names[#names + 1] = f.name end
  local st, a, b = lib.compare(dynpb, { tmp }, { names[#names] }, source_info)
  if st == "same" then same = same + 1
  elseif st == "both-fail" then bad[#bad + 1] = ("seed %d: generator produced an invalid file: %s"):format(seed, tostring(b))
  else bad[#bad + 1] = ("seed %d: %s"):format(seed, tostring(a)) end
  for _, f in ipairs(set) do os.remove(tmp .. "/" .. f.name) end
end
os.execute("rm -rf " .. lib.q(tmp))
report("random sets (spec/protoc/gen.lua)", nrand, same, bad)

-- mutated random sets: accept/reject, bytes and errors must agree
local nmut = tonumber(os.getenv("MUTATIONS") or "300")
local tmp2 = os.tmpname()
os.remove(tmp2)
os.execute("mkdir -p " .. lib.q(tmp2))
local msame, mbad, mfail = 0, {}, 0
for seed = 1, nmut do
  local set = gen.mutate(gen.set(5000 + seed), seed)
  for _, f in ipairs(set) do lib.write(tmp2 .. "/" .. f.name, f.text) end
  local st, a = lib.compare_strict(dynpb, { tmp2 }, { set[#set].name }, source_info)
  if st then msame = msame + 1; if st == "both-fail" then mfail = mfail + 1 end
  else mbad[#mbad + 1] = ("mutation %d: %s"):format(seed, tostring(a)) end
  for _, f in ipairs(set) do os.remove(tmp2 .. "/" .. f.name) end
end
os.execute("rm -rf " .. lib.q(tmp2))
report("mutated sets (same error too)", nmut, msame, mbad, mfail)

local gapis = os.getenv("GOOGLEAPIS")
-- googleapis (npm google-proto-files): its google/protobuf is newer than
-- protoc 3.21's, so the well-known types come from /usr/include first
-- GOOGLEAPIS_EVERY=n: every n-th file only (CI samples)
if gapis then
  local every, k = tonumber(os.getenv("GOOGLEAPIS_EVERY") or "1"), 0
  corpus("googleapis" .. (source_info and " (source_info)" or "") .. (every > 1 and (" 1/" .. every) or ""),
    gapis, { "/usr/include", gapis }, function(f)
      if f:match("^google/protobuf/") then return false end
      k = k + 1
      return (k - 1) % every == 0
    end)
end
print(failed == 0 and "ALL IDENTICAL" or (failed .. " DIFFER"))
os.exit(failed == 0 and 0 or 1)
