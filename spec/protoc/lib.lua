-- spec/protoc/lib.lua -- shared by spec/protoc_spec.lua and spec/protoc/compare.lua:
-- run Debian's protoc and dynpb.compile on the same inputs and compare bytes.
local _M = {}

local io_open, io_popen, os_remove, os_tmpname = io.open, io.popen, os.remove, os.tmpname
local concat = table.concat

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
_M.q = q

local function read(path)
  local f = io_open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end
_M.read = read

function _M.write(path, s)
  local f = assert(io_open(path, "wb"))
  f:write(s)
  f:close()
end

-- protoc --include_imports [--include_source_info] -I... files: bytes, or nil and stderr
function _M.protoc(paths, files, source_info)
  local out = os_tmpname()
  local cmd = { "protoc --include_imports --descriptor_set_out=" .. q(out) }
  if source_info then cmd[#cmd + 1] = "--include_source_info" end
  for _, p in ipairs(paths) do cmd[#cmd + 1] = "-I" .. q(p) end
  for _, f in ipairs(files) do cmd[#cmd + 1] = q(f) end
  local p = io_popen(concat(cmd, " ") .. " 2>&1")
  local msg = p:read("*a")
  local ok = p:close()
  local s = read(out)
  os_remove(out)
  msg = msg:gsub("%[libprotobuf WARNING[^\n]*\n", "")
  -- (Lua 5.1's close() does not report the exit status; protoc writes no
  -- set when it fails, and a set is never empty)
  if not ok or not s or s == "" then return nil, msg end
  return s
end

-- a readable diff of two descriptor sets (protoc --decode), first lines only
function _M.textdiff(a, b)
  local fa, fb = os_tmpname(), os_tmpname()
  _M.write(fa, a)
  _M.write(fb, b)
  local dec = "protoc --decode=google.protobuf.FileDescriptorSet -I/usr/include google/protobuf/descriptor.proto < "
  local cmd = "bash -c " .. q("diff <(" .. dec .. q(fa) .. ") <(" .. dec .. q(fb) .. ") 2>&1 | head -20")
  local p = io_popen(cmd)
  local d = p:read("*a")
  p:close()
  os_remove(fa)
  os_remove(fb)
  return d
end

-- compares dynpb.compile with protoc; returns "same", "both-fail" (with
-- both messages), or nil and a description of the difference
function _M.compare(dynpb, paths, files, source_info)
  local ref, perr = _M.protoc(paths, files, source_info)
  local got, err = dynpb.compile { files = files, paths = paths, source_info = source_info }
  if ref and got then
    if ref == got then return "same", #got end
    return nil, ("bytes differ (dynpb %d, protoc %d bytes):\n%s"):format(#got, #ref, _M.textdiff(ref, got))
  end
  if not ref and not got then return "both-fail", err, perr end
  if not got then return nil, "dynpb failed, protoc did not: " .. tostring(err) end
  return nil, "protoc failed, dynpb did not: " .. tostring(perr)
end

-- like compare, but a failure on both sides must be the same error: dynpb's
-- message is one of protoc's error lines
function _M.compare_strict(dynpb, paths, files, source_info)
  local st, a, b = _M.compare(dynpb, paths, files, source_info)
  if st ~= "both-fail" then return st, a, b end
  local mine = tostring(a):gsub("^dynpb: compile: ", "")
  for l in b:gmatch("[^\n]+") do
    if l == mine then return st, a, b end
  end
  return nil, ("errors differ:\n  dynpb:  %s\n  protoc: %s"):format(mine, b:match("^[^\n]*") or "")
end

-- every .proto under root (relative names, sorted)
function _M.find(root, pattern)
  local p = io_popen("cd " .. q(root) .. " && find . -name " .. q(pattern or "*.proto") .. " | sort")
  local t = {}
  for l in p:lines() do t[#t + 1] = l:gsub("^%./", "") end
  p:close()
  return t
end

-- Debian's protobuf source tree (spec/protoc/fetch_src.sh), or nil and why
function _M.debian_src(specdir)
  -- (without the ASan preload of `make asan`: apt and dpkg-source are not ASan builds)
  local p = io_popen("env -u LD_PRELOAD sh " .. q(specdir .. "/protoc/fetch_src.sh") .. " 2>/dev/null")
  local dir = p:read("*l")
  p:close()
  if dir and read(dir .. "/src/google/protobuf/unittest.proto") then return dir .. "/src" end
  return nil, "could not fetch Debian's protobuf source (spec/protoc/fetch_src.sh)"
end

return _M
