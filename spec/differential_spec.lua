-- Random differential test against Debian's python3-protobuf.
--
-- spec/support/pydiff.py makes N random messages of the all-types proto2
-- and proto3 schemas (spec/fixtures/codec/alltypes{2,3}.pb; a fixed seed, so
-- every run sees the same messages) and writes Python's deterministic
-- serialization of each to a temporary file. dynpb decodes each one and
-- encodes the table again; Python parses dynpb's bytes and compares them with
-- the original message. Any difference fails the test, naming the first one.
-- Python's deterministic bytes and dynpb's must also be identical.
--
-- Environment: DYNPB_DIFF_N (messages per schema, default 300) and
-- DYNPB_DIFF_SEED (default 20240601) to explore other messages; DYNPB_PYTHON
-- (default /usr/bin/python3). Pending only when that Python cannot import
-- google.protobuf.
local dynpb = require "dynpb"

local PY = os.getenv("DYNPB_PYTHON") or "/usr/bin/python3"
local DIR = T.specdir .. "/fixtures/codec/"
local PYDIFF = T.specdir .. "/support/pydiff.py"
local N = tonumber(os.getenv("DYNPB_DIFF_N") or "") or 300
local SEED = tonumber(os.getenv("DYNPB_DIFF_SEED") or "") or 20240601

local function run(cmd)
  local a, _, c = os.execute(cmd)
  if type(a) == "number" then return a == 0 end
  return a == true and (c == nil or c == 0)
end

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function fromhex(h)
  return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
end
local HEX = {}
for i = 0, 255 do HEX[string.char(i)] = string.format("%02x", i) end
local function tohex(s) return (s:gsub(".", HEX)) end

local function capture(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("*a")
  p:close()
  return out
end

local function lines(path)
  local r = {}
  for l in io.lines(path) do r[#r + 1] = l end
  return r
end

local have_python = run(PY .. " -c 'import google.protobuf' >/dev/null 2>&1")

-- the schemas, and Python's messages (made once per schema, on first use)
local SCHEMAS = {
  { label = "proto2", set = DIR .. "alltypes2.pb", type = "reft2.TestAll", seed = SEED },
  { label = "proto3", set = DIR .. "alltypes3.pb", type = "reft3.TestAll", seed = SEED + 1 },
}

local function inputs(sc)
  if not sc.file then
    sc.file = os.tmpname()
    local out = capture(table.concat({ PY, q(PYDIFF), "gen", q(sc.set), sc.type, sc.seed, N,
                                       q(sc.file) }, " "))
    sc.hex = lines(sc.file)
    assert(#sc.hex == N, "pydiff.py gen failed: " .. out)
    sc.bin = {}
    for i, hx in ipairs(sc.hex) do sc.bin[i] = fromhex(hx) end
  end
  return sc.hex, sc.bin
end

-- decodes and re-encodes every input with the options given; writes the
-- results file pydiff.py check reads, and returns its path
local function roundtrip(sc, dec_opts, enc_opts, handle)
  local schema = assert(dynpb.load(T.read(sc.set)))
  local Msg = assert(schema:message(sc.type))
  if not handle then   -- the schema methods, with the type name each call
    Msg = {
      decode = function(_, b, o) return schema:decode(sc.type, b, o) end,
      encode = function(_, t, o) return schema:encode(sc.type, t, o) end,
    }
  end
  local res = os.tmpname()
  local f = assert(io.open(res, "w"))
  local _, bin = inputs(sc)
  for _, b in ipairs(bin) do
    local t, err = Msg:decode(b, dec_opts)
    local s
    if t then s, err = Msg:encode(t, enc_opts) end
    if s then
      f:write("OK ", tohex(s), "\n")
    else
      f:write("ERR ", (tostring(err):gsub("\n", " ")), "\n")
    end
  end
  f:close()
  return res
end

local function check(sc, res)
  return capture(table.concat({ PY, q(PYDIFF), "check", q(sc.set), sc.type, q(sc.file),
                                q(res) }, " "))
end

local VARIANTS = {
  { label = "default options" },
  { label = "int64 = \"string\", a message handle", dec = { int64 = "string" }, handle = true },
  { label = "enums = \"number\"", dec = { enums = "number" } },
}

describe("differential test against python3-protobuf", function()
  if not have_python then
    pending("skipped: " .. PY .. " cannot import google.protobuf (apt-get install python3-protobuf)")
    return
  end

  teardown(function()
    for _, sc in ipairs(SCHEMAS) do
      if sc.file then os.remove(sc.file) end
    end
  end)

  for _, sc in ipairs(SCHEMAS) do
    for _, v in ipairs(VARIANTS) do
      it(string.format("%s: %d random messages, %s: decoded, re-encoded, parsed back equal",
                       sc.label, N, v.label), function()
        local res = roundtrip(sc, v.dec, v.enc, v.handle)
        local out = check(sc, res)
        os.remove(res)
        assert(out:match("^ok " .. N .. " equal " .. N .. " "),
               string.format("%s, seed %d: %s", sc.label, sc.seed, out))
        -- canonical output: byte for byte what Python's deterministic
        -- serialization gives
        local same = tonumber(out:match("bytes_equal (%d+)"))
        assert(same == N, "dynpb's bytes differ from Python's for messages " ..
               tostring(out:match("bytes_differ (%S+)")) .. " of " .. N)
      end)
    end
  end

  it("notices a difference (the harness can fail)", function()
    local sc = SCHEMAS[2]
    local hx = inputs(sc)
    -- Python's own bytes pass; one altered message is reported by number
    local res = os.tmpname()
    local f = assert(io.open(res, "w"))
    for i = 1, #hx do
      if i == 7 then
        -- drop the last byte of a non-empty message, or add a field to an empty one
        f:write("OK ", #hx[i] > 0 and hx[i]:sub(1, -3) or "0801", "\n")
      else
        f:write("OK ", hx[i], "\n")
      end
    end
    f:close()
    local out = check(sc, res)
    os.remove(res)
    assert.matches("^FAIL: 1 of " .. N .. " messages differ %(7%)", out)
  end)
end)
