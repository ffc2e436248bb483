-- Loaded by busted before the specs (make check passes --helper).
-- Points package.path/cpath at the build being tested, and provides small
-- shared utilities as the global table `T`.
local cpath = os.getenv("DYNPB_CPATH")
local lpath = os.getenv("DYNPB_LPATH")
if cpath then package.cpath = cpath .. ";" .. package.cpath end
if lpath then package.path = lpath .. ";" .. package.path end

T = {}

-- the directory of this file, so specs work from any cwd
T.specdir = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec"
T.root = T.specdir .. "/.."

function T.read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

function T.fixture(name) return T.read(T.specdir .. "/fixtures/" .. name) end

-- full collection, twice so finalizers of the first pass also release
function T.gc()
  collectgarbage("collect")
  collectgarbage("collect")
end

-- the Lua heap in KiB after a full collection
function T.heap()
  T.gc()
  return collectgarbage("count")
end

T.lua = os.getenv("DYNPB_LUA") or _VERSION
T.jit = type(rawget(_G, "jit")) == "table"

-- A tiny protobuf writer for hand-made inputs (malformed descriptor sets,
-- odd wire data). Numbers must be non-negative integers below 2^53.
local pb = {}
T.pb = pb
local char, floor = string.char, math.floor

function pb.varint(n)
  local out = {}
  repeat
    local b = n % 128
    n = floor(n / 128)
    out[#out + 1] = char(n > 0 and b + 128 or b)
  until n == 0
  return table.concat(out)
end
function pb.tag(num, wt) return pb.varint(num * 8 + wt) end
function pb.len(num, s) return pb.tag(num, 2) .. pb.varint(#s) .. s end
function pb.vint(num, v) return pb.tag(num, 0) .. pb.varint(v) end

-- descriptor pieces: file(name, opts) with opts.package, opts.syntax,
-- opts.messages (bytes of DescriptorProto), opts.deps
function pb.file(name, o)
  o = o or {}
  local parts = {pb.len(1, name)}     -- joined once: linear in the set's size
  if o.package then parts[#parts + 1] = pb.len(2, o.package) end
  for _, d in ipairs(o.deps or {}) do parts[#parts + 1] = pb.len(3, d) end
  for _, m in ipairs(o.messages or {}) do parts[#parts + 1] = pb.len(4, m) end
  for _, e in ipairs(o.enums or {}) do parts[#parts + 1] = pb.len(5, e) end
  if o.syntax then parts[#parts + 1] = pb.len(12, o.syntax) end
  return table.concat(parts)
end
-- DescriptorProto: name, fields (bytes of FieldDescriptorProto), nested
function pb.message(name, fields, nested)
  local s = pb.len(1, name)
  for _, f in ipairs(fields or {}) do s = s .. pb.len(2, f) end
  for _, n in ipairs(nested or {}) do s = s .. pb.len(3, n) end
  return s
end
-- FieldDescriptorProto: name, number, label (1..3), type (1..18), type_name
function pb.field(name, number, label, type, type_name)
  local s = pb.len(1, name) .. pb.vint(3, number) .. pb.vint(4, label or 1) .. pb.vint(5, type or 5)
  if type_name then s = s .. pb.len(6, type_name) end
  return s
end
function pb.enum(name, values)
  local s = pb.len(1, name)
  for _, v in ipairs(values) do s = s .. pb.len(2, pb.len(1, v[1]) .. pb.vint(2, v[2])) end
  return s
end
function pb.set(...)
  local s = ""
  for _, f in ipairs({...}) do s = s .. pb.len(1, f) end
  return s
end
