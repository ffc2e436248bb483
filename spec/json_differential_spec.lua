-- Random differential test of to_json / from_json against Debian's
-- python3-protobuf json_format (issue 12).
--
-- spec/support/pyjson.py makes N random messages (pydiff.py's generator, a
-- fixed seed) of the all-types proto2/proto3 schemas and of jt.Person, each
-- with Python's bytes and Python's MessageToJson. Then, both directions:
--  - to_json: dynpb prints Python's bytes; pyjson.py check requires the
--    same JSON document as Python's, and json_format.Parse of dynpb's text
--    to give the original message back;
--  - from_json: dynpb reads Python's JSON; the bytes must be exactly what
--    encode writes for the message (decode(original) encoded again).
--
-- Environment: DYNPB_DIFF_N (messages per schema, default 300),
-- DYNPB_DIFF_SEED (default 20240601), DYNPB_PYTHON (default /usr/bin/python3).
-- Pending only when that Python cannot import google.protobuf.
local dynpb = require "dynpb"

local PY = os.getenv("DYNPB_PYTHON") or "/usr/bin/python3"
local PYJSON = T.specdir .. "/support/pyjson.py"
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
local function capture(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("*a")
  p:close()
  return out
end

local have_python = run(PY .. " -c 'from google.protobuf import json_format' >/dev/null 2>&1")

local F = T.specdir .. "/fixtures/"
local SCHEMAS = {
  { label = "proto2", set = F .. "codec/alltypes2.pb", type = "reft2.TestAll", seed = SEED },
  { label = "proto3", set = F .. "codec/alltypes3.pb", type = "reft3.TestAll", seed = SEED + 1 },
  { label = "jt.Person", set = F .. "json/json3.pb", type = "jt.Person", seed = SEED + 2 },
}
-- { label, to_json options, pyjson.py's name for them, schemas (indices) }
local VARIANTS = {
  { "default options", nil, "", { 1, 2, 3 } },
  { "proto_names", { proto_names = true }, "names", { 2, 3 } },
  { "enums = \"number\"", { enums = "number" }, "enums", { 2 } },
  { "emit_defaults", { emit_defaults = true }, "defaults", { 2, 3 } },
}

local function gen(sc, pyopt)
  local file = os.tmpname()
  local out = capture(table.concat({ PY, q(PYJSON), "gen", q(sc.set), sc.type, sc.seed, N, q(file),
                                     pyopt ~= "" and pyopt or "" }, " "))
  local rows = {}
  for l in io.lines(file) do
    local hx, j = l:match("^(%x*)\t(.*)$")
    rows[#rows + 1] = { hex = hx, bin = fromhex(hx), json = j }
  end
  assert(#rows == N, "pyjson.py gen failed: " .. out)
  return file, rows
end

describe("JSON differential test against python3-protobuf json_format", function()
  if not have_python then
    pending("skipped: " .. PY .. " cannot import google.protobuf.json_format")
    return
  end

  for _, v in ipairs(VARIANTS) do
    for _, si in ipairs(v[4]) do
      local sc = SCHEMAS[si]
      it(string.format("%s, %s: %d random messages both directions", sc.label, v[1], N), function()
        local schema = assert(dynpb.load(T.read(sc.set)))
        local H = assert(schema:message(sc.type))
        local file, rows = gen(sc, v[3])
        -- to_json: the same document as Python's, parsed back equal
        local res = os.tmpname()
        local f = assert(io.open(res, "w"))
        for _, r in ipairs(rows) do
          local j, err = H:to_json(r.bin, v[2])
          if j then f:write("OK ", j, "\n") else f:write("ERR ", (tostring(err):gsub("\n", " ")), "\n") end
        end
        f:close()
        local out = capture(table.concat({ PY, q(PYJSON), "check", q(sc.set), sc.type, q(file), q(res),
                                           v[3] ~= "" and v[3] or "" }, " "))
        os.remove(res)
        os.remove(file)
        assert(out:match("^ok " .. N), string.format("%s, seed %d: %s", sc.label, sc.seed, out))
        -- from_json: Python's JSON gives the bytes encode writes
        for i, r in ipairs(rows) do
          local b, err = H:from_json(r.json)
          local want = assert(H:encode(assert(H:decode(r.bin))))
          assert(b == want, string.format("message %d (seed %d): from_json %s\n  json %s\n  input %s",
            i, sc.seed, b and "gives other bytes" or tostring(err), r.json, r.hex))
        end
      end)
    end
  end

  it("notices a difference (the harness can fail)", function()
    local sc = SCHEMAS[3]
    local file, rows = gen(sc, "")
    local res = os.tmpname()
    local f = assert(io.open(res, "w"))
    for i, r in ipairs(rows) do
      -- message 5 loses a member (or gains one when empty)
      local j = r.json
      if i == 5 then j = j == "{}" and '{"age":1}' or (j:gsub('^{"[^"]*":', '{"zzz":')) end
      f:write("OK ", j, "\n")
    end
    f:close()
    local out = capture(table.concat({ PY, q(PYJSON), "check", q(sc.set), sc.type, q(file), q(res) }, " "))
    os.remove(res)
    os.remove(file)
    assert.matches("^FAIL: 1 of " .. N .. " messages differ %(5%)", out)
  end)
end)
