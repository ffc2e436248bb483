-- dynpb testee for Google's protobuf conformance_test_runner.
--
-- Protocol (conformance/conformance.proto): the runner writes a 4-byte
-- little-endian length and a ConformanceRequest to our stdin; we answer with
-- a 4-byte length and a ConformanceResponse on stdout; repeat until EOF.
-- Both envelopes are themselves decoded/encoded with dynpb.
--
-- Binary protobuf and JSON, in and out (to_json/from_json), are attempted;
-- text format and JSPB answer `skipped`.
--
-- Environment (set by testee.sh):
--   DYNPB_CPATH / DYNPB_LPATH   prepended to package.cpath / package.path
--   DYNPB_CONFORMANCE_DESC      descriptor set (default: work/conformance.pb
--                               next to this file)
-- Runs on Lua 5.1 (LuaJIT), 5.3 and 5.4: no string.pack, no integer ops.

local cpath = os.getenv("DYNPB_CPATH")
local lpath = os.getenv("DYNPB_LPATH")
if cpath and cpath ~= "" then package.cpath = cpath .. ";" .. package.cpath end
if lpath and lpath ~= "" then package.path = lpath .. ";" .. package.path end

local dynpb = require "dynpb"

local stdin, stdout, stderr = io.stdin, io.stdout, io.stderr
local byte, char, floor = string.byte, string.char, math.floor

local function fatal(msg)
  stderr:write("dynpb testee: ", msg, "\n")
  os.exit(1)
end

-- ---- descriptor set ------------------------------------------------------
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local descpath = os.getenv("DYNPB_CONFORMANCE_DESC")
if not descpath or descpath == "" then descpath = here .. "/work/conformance.pb" end

local f, ferr = io.open(descpath, "rb")
if not f then fatal("cannot open descriptor set: " .. tostring(ferr)) end
local descbytes = f:read("*a")
f:close()

local schema, lerr = dynpb.load(descbytes)
if not schema then fatal("dynpb.load: " .. tostring(lerr)) end

local Request = schema:message("conformance.ConformanceRequest")
local Response = schema:message("conformance.ConformanceResponse")

-- The payload types we handle.  conformance.FailureSet is the runner's
-- "FindFailures" probe: an empty payload answered with an empty FailureSet
-- (we report no expected failures of our own).
local handles = {}
for _, name in ipairs {
  "protobuf_test_messages.proto3.TestAllTypesProto3",
  "protobuf_test_messages.proto2.TestAllTypesProto2",
  "conformance.FailureSet",
} do
  handles[name] = schema:message(name)
end

-- ---- framing -------------------------------------------------------------
local function u32le_decode(s)
  local b1, b2, b3, b4 = byte(s, 1, 4)
  return b1 + b2 * 0x100 + b3 * 0x10000 + b4 * 0x1000000
end

local function u32le_encode(n)
  return char(n % 0x100, floor(n / 0x100) % 0x100,
              floor(n / 0x10000) % 0x100, floor(n / 0x1000000) % 0x100)
end

-- read exactly n bytes; nil at a clean EOF before the first byte
local function read_exact(n, what)
  if n == 0 then return "" end
  local parts, got = {}, 0
  while got < n do
    local s = stdin:read(n - got)
    if not s or #s == 0 then
      if got == 0 and what == "length" then return nil end
      fatal("unexpected EOF reading " .. what)
    end
    parts[#parts + 1] = s
    got = got + #s
  end
  return table.concat(parts)
end

-- Last resort when dynpb cannot encode the response itself: a hand-made
-- ConformanceResponse{runtime_error = msg} (field 2, wire type 2).
local function varint(n)
  local out = {}
  while n >= 0x80 do
    out[#out + 1] = char(n % 0x80 + 0x80)
    n = floor(n / 0x80)
  end
  out[#out + 1] = char(n)
  return table.concat(out)
end

-- error strings go into proto3 `string` fields: keep them ASCII (valid UTF-8)
local function ascii(s)
  s = tostring(s)
  s = s:gsub("[^\32-\126]", "?")
  if #s > 2000 then s = s:sub(1, 2000) .. "..." end
  return s
end

local function send(resp)
  local ok, out, err = pcall(Response.encode, Response, resp)
  if not ok or not out then
    local msg = ascii("testee: cannot encode ConformanceResponse: " .. tostring(ok and err or out))
    out = "\18" .. varint(#msg) .. msg
  end
  stdout:write(u32le_encode(#out), out)
  stdout:flush()
end

-- ---- one request ---------------------------------------------------------
local function handle(reqbytes)
  local ok, req, err = pcall(Request.decode, Request, reqbytes)
  if not ok then return { runtime_error = ascii("testee: decode ConformanceRequest raised: " .. tostring(req)) } end
  if not req then return { runtime_error = ascii("testee: decode ConformanceRequest: " .. tostring(err)) } end

  local fmt = req.requested_output_format
  if fmt ~= "PROTOBUF" and fmt ~= "JSON" then
    return { skipped = "only protobuf and JSON output are supported" }
  end
  local H = handles[req.message_type]
  if not H then
    return { skipped = ascii("unsupported message type " .. tostring(req.message_type)) }
  end

  -- the input, as canonical protobuf bytes
  local bytes
  if req.protobuf_payload ~= nil then
    local ok1, t, derr = pcall(H.decode, H, req.protobuf_payload)
    if not ok1 then return { runtime_error = ascii("decode raised: " .. tostring(t)) } end
    if t == nil then return { parse_error = ascii(derr or "decode failed") } end
    local ok2, out, eerr = pcall(H.encode, H, t)
    if not ok2 then return { runtime_error = ascii("encode raised: " .. tostring(out)) } end
    if out == nil then return { serialize_error = ascii(eerr or "encode failed") } end
    bytes = out
  elseif req.json_payload ~= nil then
    local opts = req.test_category == "JSON_IGNORE_UNKNOWN_PARSING_TEST"
      and { ignore_unknown_fields = true } or nil
    local ok1, out, jerr = pcall(H.from_json, H, req.json_payload, opts)
    if not ok1 then return { runtime_error = ascii("from_json raised: " .. tostring(out)) } end
    if out == nil then return { parse_error = ascii(jerr or "from_json failed") } end
    bytes = out
  else
    return { skipped = "only protobuf and JSON input are supported" }
  end

  if fmt == "PROTOBUF" then return { protobuf_payload = bytes } end
  local ok3, j, terr = pcall(H.to_json, H, bytes)
  if not ok3 then return { runtime_error = ascii("to_json raised: " .. tostring(j)) } end
  if j == nil then return { serialize_error = ascii(terr or "to_json failed") } end
  return { json_payload = j }
end

stdout:setvbuf("full")
while true do
  local hdr = read_exact(4, "length")
  if not hdr then break end
  send(handle(read_exact(u32le_decode(hdr), "request")))
end
