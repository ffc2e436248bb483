-- dynpb testee for Google's protobuf conformance_test_runner.
--
-- Protocol (conformance/conformance.proto): the runner writes a 4-byte
-- little-endian length and a ConformanceRequest to our stdin; we answer with
-- a 4-byte length and a ConformanceResponse on stdout; repeat until EOF.
-- Both envelopes are themselves decoded/encoded with dynpb.
--
-- Binary protobuf and JSON, in and out (decode/encode, from_json/to_json),
-- are attempted; text format and JSPB answer `skipped` (see `parsers` and
-- `serializers` below).
--
-- Environment (set by testee.sh):
--   DYNPB_CPATH / DYNPB_LPATH   prepended to package.cpath / package.path
--   DYNPB_CONFORMANCE_DESC      descriptor set of the test messages
--                               (default: work/conformance.pb next to this file)
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

local function read_file(path)
  local f, ferr = io.open(path, "rb")
  if not f then fatal("cannot open descriptor set: " .. tostring(ferr)) end
  local s = f:read("*a")
  f:close()
  return s
end

-- proto2, proto3 and editions (2023) test messages, with their imports
local descpath = os.getenv("DYNPB_CONFORMANCE_DESC")
if not descpath or descpath == "" then descpath = here .. "/work/conformance.pb" end

local schema, lerr = dynpb.load(read_file(descpath))
if not schema then fatal("dynpb.load: " .. tostring(lerr)) end

local Request = schema:message("conformance.ConformanceRequest")
local Response = schema:message("conformance.ConformanceResponse")

-- Payload types: every message of the set is accepted by name (handles are
-- made on first use).  conformance.FailureSet is the runner's "FindFailures"
-- probe: an empty payload answered with an empty FailureSet (we report no
-- expected failures of our own).
local handles = {}
local function handle_for(name)
  local H = handles[name]
  if H == nil then
    local ok, h = pcall(schema.message, schema, name)
    H = ok and h or false
    handles[name] = H
  end
  return H or nil
end

-- ---- formats ---------------------------------------------------------------
-- parsers[oneof member of ConformanceRequest.payload](H, payload, req)
--   -> the message as canonical protobuf bytes, or nil, err (a parse error)
-- serializers[ConformanceRequest.requested_output_format](H, bytes)
--   -> payload, or nil, err (a serialize error), and the ConformanceResponse
--   member that carries it.
-- A payload kind or output format missing here answers `skipped`.
local parsers = {
  -- decode checks the bytes; encode makes them canonical
  protobuf_payload = function(H, s)
    local t, err = H:decode(s)
    if t == nil then return nil, err end
    return H:encode(t)
  end,
  json_payload = function(H, s, req)
    local opts = req.test_category == "JSON_IGNORE_UNKNOWN_PARSING_TEST"
      and { ignore_unknown_fields = true } or nil
    return H:from_json(s, opts)
  end,
}

local serializers = {
  PROTOBUF = { field = "protobuf_payload", fn = function(_, b) return b end },
  JSON = { field = "json_payload", fn = function(H, b) return H:to_json(b) end },
}

-- text format (issue 19): spec/conformance/text_format.lua adds text_payload
-- and TEXT_FORMAT
package.path = here .. "/?.lua;" .. package.path
require("text_format").register(parsers, serializers)

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

-- DYNPB_CONFORMANCE_SKIPLOG: a file that gets one line per skipped request,
-- its reason (run.sh counts them).
local skiplog
do
  local path = os.getenv("DYNPB_CONFORMANCE_SKIPLOG")
  if path and path ~= "" then
    skiplog = io.open(path, "a")
    -- whole lines in one unbuffered write each: testees of two suites may
    -- be alive at once, appending to the same file
    if skiplog then skiplog:setvbuf("no") end
  end
end

-- ---- one request ---------------------------------------------------------
local payload_kinds = { "protobuf_payload", "json_payload", "jspb_payload", "text_payload" }

local function handle(reqbytes)
  local ok, req, err = pcall(Request.decode, Request, reqbytes)
  if not ok then return { runtime_error = ascii("testee: decode ConformanceRequest raised: " .. tostring(req)) } end
  if not req then return { runtime_error = ascii("testee: decode ConformanceRequest: " .. tostring(err)) } end

  local kind, payload
  for _, k in ipairs(payload_kinds) do
    if req[k] ~= nil then kind, payload = k, req[k] break end
  end
  if kind == nil then return { skipped = "request without a payload" } end
  local parse = parsers[kind]
  if not parse then return { skipped = kind:gsub("_payload$", "") .. " input is not supported yet" } end
  local out_fmt = req.requested_output_format
  local ser = serializers[out_fmt]
  if not ser then return { skipped = ascii(tostring(out_fmt) .. " output is not supported yet") } end

  local mt = tostring(req.message_type)
  local H = handle_for(mt)
  if not H then return { runtime_error = ascii("testee: unknown message type " .. mt) } end

  local ok1, t, derr = pcall(parse, H, payload, req)
  if not ok1 then return { runtime_error = ascii(kind .. " parse raised: " .. tostring(t)) } end
  if t == nil then return { parse_error = ascii(derr or "parse failed") } end

  local ok2, out, eerr = pcall(ser.fn, H, t, req)
  if not ok2 then return { runtime_error = ascii("serialize raised: " .. tostring(out)) } end
  if out == nil then return { serialize_error = ascii(eerr or "serialize failed") } end
  return { [ser.field] = out }
end

local function respond(reqbytes)
  local resp = handle(reqbytes)
  if skiplog and resp.skipped then
    skiplog:write((resp.skipped:gsub(" %(.*", "")) .. "\n")
  end
  return resp
end

stdout:setvbuf("full")
while true do
  local hdr = read_exact(4, "length")
  if not hdr then break end
  send(respond(read_exact(u32le_decode(hdr), "request")))
end
