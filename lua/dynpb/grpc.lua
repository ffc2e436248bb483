-- dynpb.grpc -- gRPC from Lua without generated code.
--
--   Wire pieces (pure functions; frame/reader/status/timeout need no C):
--     grpc.frame(msg [, compressed])      5-byte length-prefixed message (compressed: gzip it, flag 1)
--     grpc.reader([max_len | opts])       incremental de-framer: r:feed(chunk) --> { msgs } | nil, err
--     grpc.web_frame, grpc.web_trailers, grpc.web_text_encode, grpc.web_text_decoder
--     grpc.status(code_or_name), grpc.percent_decode/encode, grpc.status_details(bytes [, schema])
--     grpc.timeout(seconds | "100m"), grpc.http_to_code(http_status), grpc.content_type(...)
--   The client (HTTP/2 over libcurl, dynpb.grpc_core):
--     grpc.client{ url =, schema = | registry =, ... } --> c
--     c:call(method, req [, opts])   --> res, meta | nil, err, st
--     c:stream(method, req [, opts]) --> iterator, st
--     c:start(method, req [, opts])  --> job: job:poll() --> nil (running) | res, meta | false, err, st
--   Server reflection:
--     grpc.reflect{ url =, services = } --> descriptor-set bytes | nil, err
--
-- Policy lives here; dynpb.grpc_core (csrc/grpc.c) has the mechanisms
-- (zlib, base64, a libcurl multi handle per client).

local _M = { _VERSION = "0.1.0" }

local type, pairs, ipairs, tostring, tonumber, error, pcall, select, setmetatable, require =
      type, pairs, ipairs, tostring, tonumber, error, pcall, select, setmetatable, require
local floor, huge = math.floor, math.huge
local str_byte, str_char, str_sub, str_format, str_find, str_gsub, str_match, str_lower,
      str_upper, str_rep, str_gmatch =
      string.byte, string.char, string.sub, string.format, string.find, string.gsub,
      string.match, string.lower, string.upper, string.rep, string.gmatch
local concat, tsort, unpack = table.concat, table.sort, table.unpack or unpack
local co_create, co_resume, co_yield, co_status =
      coroutine.create, coroutine.resume, coroutine.yield, coroutine.status

local MAX_LEN = 4 * 1024 * 1024
_M.MAX_LEN = MAX_LEN

local core_mod
local function core()
  if core_mod == nil then
    local ok, m = pcall(require, "dynpb.grpc_core")
    if not ok then error("dynpb: grpc: dynpb.grpc_core is not available: " .. tostring(m), 3) end
    core_mod = m
  end
  return core_mod
end

-- ------------------------------------------------------------------ status

local NAMES = {
  [0] = "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
  "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
  "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
}
local CODES = {}
for i = 0, 16 do CODES[NAMES[i]] = i end
_M.codes = CODES

-- grpc.status(5) --> "NOT_FOUND"; grpc.status("NOT_FOUND") --> 5 (any case);
-- nil, err for anything else
function _M.status(x)
  if type(x) == "number" then
    local n = NAMES[x]
    if n then return n end
    return nil, str_format("dynpb: grpc status: no status code %s", tostring(x))
  elseif type(x) == "string" then
    local c = CODES[str_upper(x)]
    if c then return c end
    return nil, str_format("dynpb: grpc status: no status named '%s'", x)
  end
  error("dynpb: grpc.status: expected a number or a string, got " .. type(x), 2)
end

-- the gRPC spec's mapping for responses without a grpc-status
local HTTP_CODES = { [400] = 13, [401] = 16, [403] = 7, [404] = 12, [429] = 14, [502] = 14,
                     [503] = 14, [504] = 14 }
function _M.http_to_code(http_status)
  if type(http_status) ~= "number" then
    error("dynpb: grpc.http_to_code: expected a number, got " .. type(http_status), 2)
  end
  return HTTP_CODES[http_status] or 2
end

-- grpc-message: percent-decoding; a malformed %-sequence stays as it is (spec)
function _M.percent_decode(s)
  return (str_gsub(s, "%%(%x%x)", function(h) return str_char(tonumber(h, 16)) end))
end
function _M.percent_encode(s)
  return (str_gsub(s, "[^\32-\36\38-\126]", function(c) return str_format("%%%02X", str_byte(c)) end))
end

-- ------------------------------------------------------------- timeouts

local UNITS = { { "H", 3600 }, { "M", 60 }, { "S", 1 }, { "m", 1e-3 }, { "u", 1e-6 }, { "n", 1e-9 } }
local UNIT_SECONDS = {}
for _, u in ipairs(UNITS) do UNIT_SECONDS[u[1]] = u[2] end

-- grpc.timeout(seconds) --> the grpc-timeout value (the coarsest unit that
-- is exact, else the finest unit that fits 8 digits, rounded up);
-- grpc.timeout("100m") --> 0.1; nil, err for a malformed header
function _M.timeout(x)
  if type(x) == "number" then
    if not (x > 0) or x == huge then error("dynpb: grpc.timeout: seconds must be > 0", 2) end
    for _, u in ipairs(UNITS) do
      local v = x / u[2]
      local r = floor(v + 0.5)
      if r >= 1 and r <= 99999999 and (v - r) * (v - r) < 1e-18 * r * r + 1e-20 then
        return str_format("%d%s", r, u[1])
      end
    end
    for i = #UNITS, 1, -1 do
      local v = x / UNITS[i][2]
      if v <= 99999999 then return str_format("%d%s", math.ceil(v - 1e-9), UNITS[i][1]) end
    end
    return "99999999H"
  elseif type(x) == "string" then
    local d, u = str_match(x, "^(%d+)([HMSmun])$")
    if not d or #d > 8 then return nil, str_format("dynpb: grpc timeout: malformed grpc-timeout '%s'", x) end
    return tonumber(d) * UNIT_SECONDS[u]
  end
  error("dynpb: grpc.timeout: expected seconds or a grpc-timeout string, got " .. type(x), 2)
end

-- --------------------------------------------------------------- framing

local function be32(n)
  return str_char(floor(n / 16777216) % 256, floor(n / 65536) % 256, floor(n / 256) % 256, n % 256)
end

-- grpc.frame(msg [, compressed]) --> flag byte, 4-byte big-endian length, msg.
-- compressed = true gzips msg and sets flag 1 (send grpc-encoding: gzip).
function _M.frame(msg, compressed)
  if type(msg) ~= "string" then error("dynpb: grpc.frame: expected a string, got " .. type(msg), 2) end
  if compressed then msg = core().gzip(msg) end
  return (compressed and "\1" or "\0") .. be32(#msg) .. msg
end
_M.web_frame = _M.frame

-- the gRPC-Web trailer frame (flag 0x80) of a trailers table
-- { ["grpc-status"] = 0, ["grpc-message"] = "..." , ... }, keys sorted
function _M.web_trailers(t)
  if type(t) ~= "table" then error("dynpb: grpc.web_trailers: expected a table", 2) end
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = str_lower(k) end
  tsort(keys)
  local lines = {}
  for _, k in ipairs(keys) do
    local v = t[k]
    if v == nil then
      for k2, v2 in pairs(t) do if str_lower(k2) == k then v = v2 end end
    end
    v = tostring(v)
    if k == "grpc-message" then v = _M.percent_encode(v) end
    if str_find(k, "[^%w%-_.]") or str_find(v, "[\r\n%z]") then
      error("dynpb: grpc.web_trailers: invalid trailer '" .. k .. "'", 2)
    end
    lines[#lines + 1] = k .. ": " .. v .. "\r\n"
  end
  local block = concat(lines)
  return "\128" .. be32(#block) .. block
end

-- "name: value\r\n" lines --> { name = value } (names lowercased; repeats
-- joined with ", "; -bin values base64-decoded when decode_bin)
local function parse_lines(block, decode_bin)
  local h = {}
  for line in str_gmatch(block, "[^\r\n]+") do
    local k, v = str_match(line, "^([^:]+):[ \t]*(.-)[ \t]*$")
    if k then
      k = str_lower(k)
      if decode_bin and str_sub(k, -4) == "-bin" then
        local d = _M.b64decode(v)
        if d then v = d end
      end
      if h[k] then h[k] = h[k] .. ", " .. v else h[k] = v end
    end
  end
  return h
end
_M._parse_header_lines = parse_lines

local READER = {}
READER.__index = READER

-- grpc.reader([max_len | { max_len =, encoding =, web = }]) --> r.
-- encoding: the stream's grpc-encoding ("identity", "gzip", or another name,
-- which fails only when a compressed message arrives). web = true accepts
-- gRPC-Web trailer frames (flag 0x80); they land in r.trailers.
function _M.reader(o)
  local max_len, encoding, web = MAX_LEN, nil, false
  if type(o) == "number" then
    max_len = o
  elseif type(o) == "table" then
    max_len = o.max_len or MAX_LEN
    encoding = o.encoding
    web = o.web and true or false
  elseif o ~= nil then
    error("dynpb: grpc.reader: expected max_len or an options table, got " .. type(o), 2)
  end
  if type(max_len) ~= "number" or max_len < 0 or max_len ~= floor(max_len) then
    error("dynpb: grpc.reader: max_len must be a non-negative integer", 2)
  end
  return setmetatable({ parts = {}, have = 0, need = 5, pos = 0, max_len = max_len,
                        encoding = encoding, web = web, trailers = nil, err = nil }, READER)
end

-- r:feed(chunk) --> array of the messages completed by chunk (possibly
-- empty) | nil, err. After an error every feed returns it again. Chunks
-- are kept as they come until the frame they complete is whole, so a large
-- message split into many chunks costs linear time.
function READER.feed(self, chunk)
  if self.err then return nil, self.err end
  if type(chunk) ~= "string" then error("dynpb: grpc reader:feed: expected a string", 2) end
  local out = {}
  if #chunk == 0 then return out end
  local parts = self.parts
  parts[#parts + 1] = chunk
  self.have = self.have + #chunk
  if self.have < self.need then return out end
  local buf = #parts == 1 and parts[1] or concat(parts)
  local i, n = 1, #buf
  local need = 5
  while n - i + 1 >= 5 do
    local flag, b1, b2, b3, b4 = str_byte(buf, i, i + 4)
    local len = ((b1 * 256 + b2) * 256 + b3) * 256 + b4
    local at = self.pos + i - 1
    local trailer = flag >= 128
    if flag ~= 0 and flag ~= 1 and not (self.web and (flag == 128 or flag == 129)) then
      self.err = str_format("dynpb: grpc reader: bad flag byte 0x%02x at byte %d", flag, at)
      return nil, self.err
    end
    if self.trailers then
      self.err = str_format("dynpb: grpc reader: frame after the trailers at byte %d", at)
      return nil, self.err
    end
    if len > self.max_len then
      self.err = str_format("dynpb: grpc reader: message of %d bytes at byte %d is larger than max_len (%d)",
                            len, at, self.max_len)
      return nil, self.err
    end
    if n - i + 1 < 5 + len then
      need = 5 + len
      break
    end
    local msg = str_sub(buf, i + 5, i + 4 + len)
    if flag % 2 == 1 then
      local enc = self.encoding
      if enc == nil or enc == "identity" then
        self.err = str_format("dynpb: grpc reader: compressed message at byte %d but grpc-encoding is %s", at,
                              enc or "not set")
        return nil, self.err
      elseif enc ~= "gzip" then
        self.err = str_format("dynpb: grpc reader: unsupported grpc-encoding '%s' (gzip and identity are)", enc)
        return nil, self.err
      end
      local d, err = core().gunzip(msg, self.max_len)
      if not d then
        self.err = str_format("dynpb: grpc reader: message at byte %d: %s", at, err)
        return nil, self.err
      end
      msg = d
    end
    if trailer then
      self.trailers = parse_lines(msg, true)
    else
      out[#out + 1] = msg
    end
    i = i + 5 + len
  end
  self.pos = self.pos + i - 1
  local rest = i > n and "" or str_sub(buf, i)
  self.parts = rest == "" and {} or { rest }
  self.have = #rest
  self.need = need
  return out
end

-- r:finish() --> true | nil, err when the stream ended inside a frame
function READER.finish(self)
  if self.err then return nil, self.err end
  if self.have > 0 then
    local buf = concat(self.parts)
    local need = "?"
    if #buf >= 5 then
      local _, b1, b2, b3, b4 = str_byte(buf, 1, 5)
      need = tostring(((b1 * 256 + b2) * 256 + b3) * 256 + b4 + 5)
    end
    return nil, str_format("dynpb: grpc reader: stream ended inside a frame at byte %d (%d of %s bytes)",
                           self.pos, #buf, need)
  end
  return true
end

-- ------------------------------------------------------- base64, web-text

function _M.b64encode(s) return core().b64encode(s) end
-- accepts unpadded input (as -bin metadata is often sent)
function _M.b64decode(s)
  local r = #s % 4
  if r == 1 then return nil, "dynpb: grpc: invalid base64 length" end
  if r > 0 then s = s .. str_rep("=", 4 - r) end
  local d, err = core().b64decode(s)
  if not d then return nil, "dynpb: grpc: " .. err end
  return d
end

_M.web_text_encode = _M.b64encode

local DECODER = {}
DECODER.__index = DECODER

-- incremental decoder of application/grpc-web-text bodies: d:feed(chunk)
-- --> bytes decoded so far (any chunking; padded pieces may be concatenated)
-- | nil, err; d:finish() --> true | nil, err (a partial quad left)
function _M.web_text_decoder()
  return setmetatable({ rest = "", pos = 0 }, DECODER)
end
function DECODER.feed(self, chunk)
  if self.err then return nil, self.err end
  local s = self.rest .. str_gsub(chunk, "[\r\n]", "")
  local cut = #s - #s % 4
  self.rest = str_sub(s, cut + 1)
  local d, err = core().b64decode(str_sub(s, 1, cut))
  if not d then
    local at = tonumber(str_match(err, "byte (%d+)"))
    self.err = "dynpb: grpc web-text: " .. (at and str_format("invalid base64 at byte %d", self.pos + at) or err)
    return nil, self.err
  end
  self.pos = self.pos + cut
  return d
end
function DECODER.finish(self)
  if self.err then return nil, self.err end
  if #self.rest > 0 then
    return nil, str_format("dynpb: grpc web-text: stream ended inside a base64 quad at byte %d", self.pos)
  end
  return true
end

-- ---------------------------------------------------------- content types

local CT = {
  grpc = "application/grpc", web = "application/grpc-web", ["web-text"] = "application/grpc-web-text",
}
-- grpc.content_type(kind [, codec]) --> "application/grpc-web+json" ...;
-- kind: "grpc" | "web" | "web-text"; codec: nil | "proto" | "json"
function _M.content_type(kind, codec)
  local base = CT[kind or "grpc"]
  if not base then error("dynpb: grpc.content_type: kind must be grpc, web or web-text", 2) end
  if codec == nil then return base end
  if codec ~= "proto" and codec ~= "json" then
    error("dynpb: grpc.content_type: codec must be proto or json", 2)
  end
  return base .. "+" .. codec
end
-- grpc.parse_content_type(ct) --> kind, codec ("proto" when not given) | nil, err
function _M.parse_content_type(ct)
  local s = str_lower(str_match(ct or "", "^%s*([^;%s]+)") or "")
  local base, codec = str_match(s, "^(application/grpc[%-%a]*)%+(.+)$")
  if not base then base, codec = s, "proto" end
  for kind, b in pairs(CT) do
    if b == base then return kind, codec end
  end
  return nil, str_format("dynpb: grpc: not a gRPC content-type: '%s'", tostring(ct))
end

-- ----------------------------------------------------- google.rpc.Status

-- a minimal protobuf reader for the fixed wire contracts decoded by hand
-- (google.rpc.Status, google.protobuf.Any, the reflection messages)
local function varint(s, i)
  local n, mul = 0, 1
  for k = i, i + 9 do
    local b = str_byte(s, k)
    if not b then return nil end
    if k < i + 7 then             -- 49 bits: exact in doubles; enough for
      n = n + (b % 128) * mul     -- lengths and for the low 32 bits of int32s
      mul = mul * 128
    end
    if b < 128 then return n, k + 1 end
  end
  return nil
end

-- pb_fields(s) --> array of { num, wire, value } | nil, err
local function pb_fields(s, what)
  local out, i, n = {}, 1, #s
  while i <= n do
    local key, j = varint(s, i)
    if not key then return nil, str_format("%s: truncated key at byte %d", what, i - 1) end
    local num, wt = floor(key / 8), key % 8
    local v
    if wt == 0 then
      v, j = varint(s, j)
      if not v then return nil, str_format("%s: truncated varint at byte %d", what, i - 1) end
    elseif wt == 2 then
      local len
      len, j = varint(s, j)
      if not len or j + len - 1 > n then
        return nil, str_format("%s: truncated length-delimited field %d at byte %d", what, num, i - 1)
      end
      v = str_sub(s, j, j + len - 1)
      j = j + len
    elseif wt == 1 then
      j = j + 8
    elseif wt == 5 then
      j = j + 4
    else
      return nil, str_format("%s: bad wire type %d at byte %d", what, wt, i - 1)
    end
    if j - 1 > n then return nil, str_format("%s: truncated field %d at byte %d", what, num, i - 1) end
    out[#out + 1] = { num, wt, v }
    i = j
  end
  return out
end
_M._pb_fields = pb_fields

local function pb_varint(n)
  local out = {}
  repeat
    local b = n % 128
    n = floor(n / 128)
    out[#out + 1] = str_char(n > 0 and b + 128 or b)
  until n == 0
  return concat(out)
end
local function pb_len(num, s) return pb_varint(num * 8 + 2) .. pb_varint(#s) .. s end
_M._pb_len = pb_len

-- grpc.status_details(bytes [, schema]) --> { code =, name =, message =,
-- details = { ... } } | nil, err. bytes: the (base64-decoded)
-- grpc-status-details-bin value, a google.rpc.Status. Each detail is decoded
-- through schema when its type is in it (the table gets ["@type"] = type_url),
-- else kept as { type_url =, value = }.
function _M.status_details(bytes, schema)
  if type(bytes) ~= "string" then error("dynpb: grpc.status_details: expected bytes", 2) end
  local f, err = pb_fields(bytes, "dynpb: grpc status details")
  if not f then return nil, err end
  local st = { code = 0, message = "", details = {} }
  for _, x in ipairs(f) do
    if x[1] == 1 and x[2] == 0 then
      local c = x[3] % 4294967296
      if c >= 2147483648 then c = c - 4294967296 end
      st.code = c
    elseif x[1] == 2 and x[2] == 2 then
      st.message = x[3]
    elseif x[1] == 3 and x[2] == 2 then
      local a, aerr = pb_fields(x[3], "dynpb: grpc status details: details[" .. (#st.details + 1) .. "]")
      if not a then return nil, aerr end
      local any = { type_url = "", value = "" }
      for _, y in ipairs(a) do
        if y[1] == 1 and y[2] == 2 then any.type_url = y[3]
        elseif y[1] == 2 and y[2] == 2 then any.value = y[3] end
      end
      local d = any
      local tname = str_match(any.type_url, "([^/]+)$")
      if schema and tname then
        local ok, h = pcall(schema.message, schema, tname)
        if ok and h then
          local t = h:decode(any.value)
          if t then
            t["@type"] = any.type_url
            d = t
          end
        end
      end
      st.details[#st.details + 1] = d
    end
  end
  st.name = NAMES[st.code] or "UNKNOWN"
  return st
end

-- ------------------------------------------------------------- the client

local CLIENT = {}
CLIENT.__index = CLIENT

local CLIENT_OPTIONS = {
  url = "string", schema = "userdata", registry = "table", timeout = "number",
  connect_timeout = "number", metadata = "table", max_len = "number", compress = "boolean",
  user_agent = "string", json = "boolean",
  cafile = "string", capath = "string", cert = "string", key = "string", key_password = "string",
}
local TLS = { "cafile", "capath", "cert", "key", "key_password" }
local CALL_OPTIONS = { timeout = "number", metadata = "table", compress = "boolean", max_len = "number",
                       json = "boolean" }

local function check_opts(o, types, what, level)
  if o == nil then return {} end
  if type(o) ~= "table" then error(str_format("dynpb: %s: options must be a table", what), level + 1) end
  for k, v in pairs(o) do
    local t = types[k]
    if not t then error(str_format("dynpb: %s: unknown option '%s'", what, tostring(k)), level + 1) end
    if type(v) ~= t and not (t == "userdata" and type(v) == "table") then
      error(str_format("dynpb: %s: option '%s' must be a %s, got %s", what, k, t, type(v)), level + 1)
    end
  end
  return o
end

local function shown(url) return (str_gsub(url, "^([%a][%w+.-]*://)[^/?#@]*@", "%1")) end

-- grpc:// -> http://, grpcs:// -> https://
local function http_url(url)
  local scheme, rest = str_match(url, "^(%a[%w+.-]*)://(.+)$")
  scheme = scheme and str_lower(scheme)
  if scheme == "grpc" or scheme == "h2c" then scheme = "http"
  elseif scheme == "grpcs" then scheme = "https" end
  if scheme ~= "http" and scheme ~= "https" then return nil end
  return scheme .. "://" .. str_gsub(rest, "/+$", ""), scheme == "http"
end

-- grpc.client{ url =, schema = | registry =, timeout =, connect_timeout = 10,
-- metadata =, max_len = 4 MiB, compress = false, cafile = ... } --> client.
-- Raises on misuse (unknown options, a bad URL).
function _M.client(o)
  check_opts(o, CLIENT_OPTIONS, "grpc.client", 2)
  if type(o.url) ~= "string" then error("dynpb: grpc.client: option 'url' is required", 2) end
  local base, h2c = http_url(o.url)
  if not base then
    error("dynpb: grpc.client: url must be http://, https://, grpc:// or grpcs://, got " .. o.url, 2)
  end
  if o.timeout and not (o.timeout > 0) then error("dynpb: grpc.client: timeout must be > 0", 2) end
  local C = core()
  return setmetatable({ opts = o, base = base, h2c = h2c, shown = shown(o.url), conn = C.conn() }, CLIENT)
end

function CLIENT.close(self)
  self.conn:close()
end
-- { connects = new connections opened, transfers = calls finished }
function CLIENT.stats(self)
  return self.conn:stats()
end

-- method (name or a method table) --> method table | nil, err
local function resolve(self, method)
  if type(method) == "table" then
    if type(method.path) ~= "string" or not method.input or not method.output then
      error("dynpb: grpc: a method table needs path, input and output", 3)
    end
    return method
  end
  if type(method) ~= "string" then error("dynpb: grpc: method must be a string, got " .. type(method), 3) end
  local o = self.opts
  local schema = o.schema
  if o.registry then schema = o.registry:schema() end
  if not schema then return nil, "no schema (give the client schema = or registry =)" end
  if not schema.method then return nil, "this dynpb's schema has no services (schema:method)" end
  local m, err = schema:method(method)
  if not m then return nil, err or ("method '" .. method .. "' not in the schema") end
  return m
end

local MD_RESERVED = { ["content-type"] = true, te = true, ["user-agent"] = true, ["grpc-timeout"] = true,
                      ["grpc-encoding"] = true, ["grpc-accept-encoding"] = true }

local function add_metadata(lines, md, level)
  if not md then return end
  for k, v in pairs(md) do
    if type(k) ~= "string" or not str_find(k, "^[%w%-_.]+$") then
      error("dynpb: grpc: metadata key '" .. tostring(k) .. "' is not a valid header name", level + 1)
    end
    local lk = str_lower(k)
    if MD_RESERVED[lk] or str_sub(lk, 1, 1) == ":" then
      error("dynpb: grpc: metadata key '" .. k .. "' is reserved", level + 1)
    end
    local vals = type(v) == "table" and v or { v }
    for _, x in ipairs(vals) do
      if type(x) ~= "string" then error("dynpb: grpc: metadata '" .. k .. "' must be a string", level + 1) end
      if str_sub(lk, -4) == "-bin" then
        x = str_gsub(core().b64encode(x), "=+$", "")
      elseif str_find(x, "[^\32-\126]") then
        error("dynpb: grpc: metadata '" .. k .. "' has a non-printable byte (use a -bin key)", level + 1)
      end
      lines[#lines + 1] = lk .. ": " .. x
    end
  end
end

-- builds and starts the transfer of one call; returns the call state or
-- nil, err, st (a local failure: no method, encode error)
local function begin(self, method, req, co, level)
  co = check_opts(co, CALL_OPTIONS, "grpc call", level + 1)
  local m, merr = resolve(self, method)
  local mname = type(method) == "string" and method or (m and m.path) or "?"
  local function local_fail(code, msg)
    local err = str_format("dynpb: grpc %s at %s: %s: %s", mname, self.shown, NAMES[code], msg)
    return nil, err, { code = code, name = NAMES[code], message = msg, details = {}, metadata = {} }
  end
  if not m then return local_fail(12, merr) end
  mname = m.path
  if m.client_streaming then
    if type(req) ~= "table" then
      error("dynpb: grpc " .. mname .. ": a client-streaming method takes an array of requests", level + 1)
    end
  elseif type(req) ~= "table" and type(req) ~= "string" then
    error("dynpb: grpc " .. mname .. ": request must be a table, got " .. type(req), level + 1)
  end
  local o = self.opts
  local compress = co.compress
  if compress == nil then compress = o.compress end
  local json = co.json
  if json == nil then json = o.json end
  json = json and not m.raw
  if json and not (m.output.to_json and m.input.from_json) then
    error("dynpb: grpc " .. mname .. ": json = true needs handle:to_json/from_json (a dynpb with JSON)", level + 1)
  end
  local reqs = m.client_streaming and req or { req }
  local parts = {}
  for i, r in ipairs(reqs) do
    local bytes, err
    if type(r) == "string" and m.raw then
      bytes = r
    elseif type(r) == "string" and json then
      bytes, err = m.input:from_json(r)
      if not bytes then return local_fail(13, "request" .. (m.client_streaming and " " .. i or "") .. ": " .. err) end
    else
      if type(r) ~= "table" then
        error(str_format("dynpb: grpc %s: request %d must be a table, got %s", mname, i, type(r)), level + 1)
      end
      bytes, err = m.input:encode(r)
      if not bytes then return local_fail(13, "request" .. (m.client_streaming and " " .. i or "") .. ": " .. err) end
    end
    parts[#parts + 1] = _M.frame(bytes, compress)
  end
  local timeout = co.timeout or o.timeout
  if timeout and not (timeout > 0) then error("dynpb: grpc call: timeout must be > 0", level + 1) end
  local lines = { "content-type: application/grpc", "te: trailers", "grpc-accept-encoding: gzip",
                  "user-agent: " .. (o.user_agent or "dynpb-grpc/" .. _M._VERSION), "Expect:", "Accept:" }
  if compress then lines[#lines + 1] = "grpc-encoding: gzip" end
  if timeout then lines[#lines + 1] = "grpc-timeout: " .. _M.timeout(timeout) end
  add_metadata(lines, o.metadata, level + 1)
  add_metadata(lines, co.metadata, level + 1)
  local tr = { url = self.base .. m.path, headers = lines, body = concat(parts),
               prior_knowledge = self.h2c,
               connect_timeout_ms = floor((o.connect_timeout or 10) * 1000 + 0.5) }
  if timeout then tr.timeout_ms = math.max(1, floor(timeout * 1000 + 0.5)) end
  for _, k in ipairs(TLS) do tr[k] = o[k] end
  local x = self.conn:start(tr)
  return {
    client = self, m = m, x = x, tr = tr, tries = 0, name = mname, json = json, reader = nil, queue = {}, qi = 1,
    max_len = co.max_len or o.max_len or MAX_LEN, done = false, st = nil,
  }
end

local function fail_msg(call, st)
  return str_format("dynpb: grpc %s at %s: %s%s", call.name, call.client.shown, st.name,
                    st.message ~= "" and ": " .. st.message or "")
end

-- the status of a finished transfer: st (code 0 = OK), with headers/trailers
local function final_status(call, res, extra)
  local hdr = parse_lines(res.headers, true)
  local trl = parse_lines(res.trailers, true)
  local st = { details = {}, headers = hdr, trailers = trl }
  local src = trl["grpc-status"] and trl or (hdr["grpc-status"] and hdr) or nil
  st.metadata = src or trl
  if res.error then
    local cls = res.error_class
    local code = res.error == "cancelled" and 1 or cls == "timeout" and 4 or 14
    -- a stream the server closed with a status before the transport failed
    -- (libcurl 7.88: a trailers-only answer, then a reset while the request
    -- was still being sent): the server's status, as from a normal end
    if src and code ~= 4 and code ~= 1 then
      code = nil
    else
      st.code, st.message = code, res.error
    end
  end
  if not st.code then
    if src then
      local c = tonumber(src["grpc-status"])
      st.code = c and NAMES[c] and c or 2
      st.message = _M.percent_decode(src["grpc-message"] or "")
      local bin = src["grpc-status-details-bin"]
      if bin then
        local co = call.client.opts
        local schema = co.registry and co.registry:schema() or co.schema
        local d = _M.status_details(bin, schema)
        if d then st.details = d.details end
      end
    elseif res.status ~= 200 then
      st.code = _M.http_to_code(res.status)
      st.message = "HTTP " .. res.status .. " without a grpc-status"
    else
      st.code, st.message = 13, "the response has no grpc-status"
    end
  end
  if st.code == 0 and extra then st.code, st.message = 13, extra end
  if st.code == 0 and res.status ~= 200 then
    st.code, st.message = _M.http_to_code(res.status), "HTTP " .. res.status
  end
  st.name = NAMES[st.code]
  return st
end

-- decodes one response message of call; nil, err on a decode failure
local function decode_response(call, bytes)
  if call.m.raw then return bytes end
  if call.json then return call.m.output:to_json(bytes) end
  local t, err = call.m.output:decode(bytes)
  if not t then return nil, err end
  return t
end

-- drives call one step: appends decoded responses to call.queue. Returns
-- true while running, false when the transfer ended (call.st set).
local function pump(call, wait_ms)
  if call.done then return false end
  local data, done = call.x:step(wait_ms)
  if not call.reader and (#data > 0 or done) then
    local h = parse_lines(call.x:headers() or "")
    call.reader = _M.reader{ max_len = call.max_len, encoding = h["grpc-encoding"] }
    -- a body that is not gRPC (an HTML error page) is not parsed: the HTTP
    -- status decides (final_status)
    call.not_grpc = not str_find(str_lower(h["content-type"] or ""), "^application/grpc")
  end
  local problem
  if #data > 0 and not call.not_grpc then
    local msgs, err = call.reader:feed(data)
    if not msgs then
      problem = err
      call.x:cancel()
      done = true
    else
      for _, b in ipairs(msgs) do
        local t, derr = decode_response(call, b)
        if t == nil then
          problem = "response: " .. tostring(derr)
          call.x:cancel()
          done = true
          break
        end
        call.queue[#call.queue + 1] = t
      end
    end
  end
  if done then
    local res = call.x:result()
    -- a server that answered (a trailers-only status) before the request
    -- was sent and reset the stream: libcurl 7.88 fails the transfer with
    -- CURLE_HTTP2_STREAM (92). When it read the answer before the reset it
    -- passed the headers on first, and final_status takes their status;
    -- when it read both at once it dropped them (no header at all). With
    -- one request message the server cannot have run the method then (it
    -- needs the whole message), so a call without any header is sent again,
    -- twice at most, on a fresh connection.
    if not problem and res.curl_code == 92 and res.headers == "" and not call.m.client_streaming
       and call.tries < 2 and #call.queue == 0 then
      call.tries = call.tries + 1
      call.x = call.client.conn:start(call.tr)
      call.reader = nil
      return true
    end
    call.done = true
    if problem then res.error = nil end
    if not problem and call.reader and not call.not_grpc then
      local ok, ferr = call.reader:finish()
      if not ok then problem = ferr end
    end
    if call.not_grpc and not problem and res.status == 200 and not res.error then
      local ct = parse_lines(res.headers)["content-type"]
      problem = "content-type " .. (ct and "'" .. ct .. "'" or "missing") .. " is not gRPC"
    end
    call.st = final_status(call, res, problem)
    if problem then
      -- a message over max_len is RESOURCE_EXHAUSTED (as gRPC clients report it)
      local code = str_find(problem, "larger than max_len", 1, true) and 8 or 13
      call.st.code, call.st.name, call.st.message = code, NAMES[code], problem
    end
    return false
  end
  return true
end

local function headers_meta(st) return { headers = st.headers, trailers = st.trailers } end

-- the outcome of a finished unary / client-streaming call
local function call_outcome(call)
  local st = call.st
  if st.code == 0 then
    local n = #call.queue
    if n ~= 1 then
      st.code, st.name = 13, NAMES[13]
      st.message = n == 0 and "no response message" or str_format("%d response messages to a unary call", n)
    end
  end
  if st.code ~= 0 then return nil, fail_msg(call, st), st end
  return call.queue[1], headers_meta(st)
end

-- c:call(method, req [, opts]) --> res, meta | nil, err, st
function CLIENT.call(self, method, req, opts)
  local call, err, st = begin(self, method, req, opts, 2)
  if not call then return nil, err, st end
  if call.m.server_streaming then
    error("dynpb: grpc " .. call.name .. ": a server-streaming method needs c:stream", 2)
  end
  while pump(call, 1000) do end
  return call_outcome(call)
end

-- c:stream(method, req [, opts]) --> iterator, st. The iterator yields each
-- response as it arrives; a failure ends with one iteration of false, err, st
-- (false: a nil would end the loop unseen). st is filled at the end.
function CLIENT.stream(self, method, req, opts)
  local call, err, st0 = begin(self, method, req, opts, 2)
  local st = {}
  if not call then
    local given = false
    for k, v in pairs(st0) do st[k] = v end
    return function()
      if given then return nil end
      given = true
      return false, err, st
    end, st
  end
  if not call.m.server_streaming then
    error("dynpb: grpc " .. call.name .. ": a unary or client-streaming method needs c:call", 2)
  end
  local finished = false
  return function()
    if finished then return nil end
    while true do
      local q = call.queue
      if call.qi <= #q then
        local t = q[call.qi]
        call.qi = call.qi + 1
        if call.qi > 64 and call.qi > #q then   -- drop what was consumed
          call.queue, call.qi = {}, 1
        end
        return t
      end
      if not pump(call, 1000) and call.qi > #call.queue then
        finished = true
        for k, v in pairs(call.st) do st[k] = v end
        if call.st.code ~= 0 then return false, fail_msg(call, call.st), st end
        return nil
      end
    end
  end, st
end

local JOB = {}
JOB.__index = JOB

-- c:start(method, req [, opts]) --> job (never blocks). job:poll() --> nil
-- while running; then once: res, meta (a streaming method: the array of
-- responses, meta) | false, err, st. job:cancel() aborts (poll then gives
-- CANCELLED).
function CLIENT.start(self, method, req, opts)
  local call, err, st = begin(self, method, req, opts, 2)
  return setmetatable({ call = call, err = err, st = st }, JOB)
end
function JOB.poll(self)
  if self.taken then error("dynpb: grpc job:poll: the result was already taken", 2) end
  local call = self.call
  if not call then
    self.taken = true
    return false, self.err, self.st
  end
  if pump(call, 0) then return nil end
  self.taken = true
  if call.m.server_streaming then
    if call.st.code ~= 0 then return false, fail_msg(call, call.st), call.st end
    return call.queue, headers_meta(call.st)
  end
  local res, e, st = call_outcome(call)
  if res == nil then return false, e, st end
  return res, e
end
-- blocks until the job ends; returns what poll would
function JOB.wait(self)
  if self.call then while pump(self.call, 1000) do end end
  return self:poll()
end
function JOB.cancel(self)
  if self.call and not self.call.done then self.call.x:cancel() end
end

-- ------------------------------------------------------------- reflection

local REFLECT = {
  v1 = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
  v1alpha = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
}

-- a raw bidi method table (requests and responses are bytes)
local function raw_method(path)
  return { path = path, input = true, output = true, raw = true,
           client_streaming = true, server_streaming = true }
end

-- one batched reflection exchange: requests (bytes) --> array of parsed
-- responses | nil, err, st. `run(job)` waits for a job (blocking or yielding).
local function reflect_round(c, version, reqs, opts, run)
  local res, err, st
  for _ = 1, 3 do
    res, err, st = run(c:start(raw_method(REFLECT[version]), reqs, opts))
    -- libcurl 7.88 loses the status of a server that answers (UNIMPLEMENTED)
    -- and resets the stream before the request was sent completely; the
    -- reflection requests are read-only, so they are sent again
    if res or not (st and st.code == 14 and str_find(st.message or "", "Stream error", 1, true)) then break end
  end
  if not res then return nil, err, st end
  local out = {}
  for i, b in ipairs(res) do
    local f, perr = pb_fields(b, "dynpb: grpc reflect: response " .. i)
    if not f then return nil, perr end
    local r = { files = {}, services = {} }
    for _, x in ipairs(f) do
      if x[1] == 4 and x[2] == 2 then
        local ff = pb_fields(x[3], "file_descriptor_response") or {}
        for _, y in ipairs(ff) do
          if y[1] == 1 and y[2] == 2 then r.files[#r.files + 1] = y[3] end
        end
      elseif x[1] == 6 and x[2] == 2 then
        for _, y in ipairs(pb_fields(x[3], "list_services_response") or {}) do
          if y[1] == 1 and y[2] == 2 then
            for _, z in ipairs(pb_fields(y[3], "service") or {}) do
              if z[1] == 1 and z[2] == 2 then r.services[#r.services + 1] = z[3] end
            end
          end
        end
      elseif x[1] == 7 and x[2] == 2 then
        local code, msg = 2, ""
        for _, y in ipairs(pb_fields(x[3], "error_response") or {}) do
          if y[1] == 1 and y[2] == 0 then code = y[3] elseif y[1] == 2 and y[2] == 2 then msg = y[3] end
        end
        r.error = str_format("%s: %s", NAMES[code] or tostring(code), msg)
      end
    end
    out[i] = r
  end
  if #out ~= #reqs then
    return nil, str_format("dynpb: grpc reflect: %d responses to %d requests", #out, #reqs)
  end
  return out
end

-- FileDescriptorProto bytes --> name, { dependencies }
local function file_info(bytes)
  local f, err = pb_fields(bytes, "dynpb: grpc reflect: FileDescriptorProto")
  if not f then return nil, err end
  local name, deps = nil, {}
  for _, x in ipairs(f) do
    if x[1] == 1 and x[2] == 2 then name = x[3]
    elseif x[1] == 3 and x[2] == 2 then deps[#deps + 1] = x[3] end
  end
  if not name then return nil, "dynpb: grpc reflect: a FileDescriptorProto without a name" end
  return name, deps
end

local function reflect_run(o, run)
  local c = o.client
  local opts = { timeout = o.timeout, metadata = o.metadata }
  local version = "v1"
  local where = str_format("dynpb: grpc reflect %s", c.shown)
  -- which services
  local services = o.services
  local function round(reqs)
    local out, err, st = reflect_round(c, version, reqs, opts, run)
    if not out and st and st.code == 12 and version == "v1" then
      version = "v1alpha"
      out, err, st = reflect_round(c, version, reqs, opts, run)
    end
    return out, err, st
  end
  if not services then
    local out, err = round({ pb_len(7, "*") })
    if not out then return nil, err end
    if out[1].error then return nil, where .. ": list_services: " .. out[1].error end
    services = {}
    for _, s in ipairs(out[1].services) do
      if not str_find(s, "^grpc%.reflection%.") then services[#services + 1] = s end
    end
    tsort(services)
    if #services == 0 then return nil, where .. ": the server lists no services" end
  end
  local files, order = {}, {}
  local function add(bytes)
    local name, deps = file_info(bytes)
    if not name then return nil, deps end
    if not files[name] then
      files[name] = { bytes = bytes, deps = deps }
      order[#order + 1] = name
    end
    return true
  end
  local reqs = {}
  for _, s in ipairs(services) do reqs[#reqs + 1] = pb_len(4, s) end
  local out, err = round(reqs)
  if not out then return nil, err end
  for i, r in ipairs(out) do
    if r.error then return nil, str_format("%s: file_containing_symbol '%s': %s", where, services[i], r.error) end
    for _, b in ipairs(r.files) do
      local ok, aerr = add(b)
      if not ok then return nil, aerr end
    end
  end
  -- every dependency by file_by_filename, once each
  local asked = {}
  while true do
    local missing = {}
    for _, name in ipairs(order) do
      for _, d in ipairs(files[name].deps) do
        if not files[d] and not asked[d] then
          asked[d] = true
          missing[#missing + 1] = d
        end
      end
    end
    if #missing == 0 then break end
    tsort(missing)
    reqs = {}
    for _, d in ipairs(missing) do reqs[#reqs + 1] = pb_len(3, d) end
    out, err = round(reqs)
    if not out then return nil, err end
    for i, r in ipairs(out) do
      if r.error then return nil, str_format("%s: file_by_filename '%s': %s", where, missing[i], r.error) end
      for _, b in ipairs(r.files) do
        local ok, aerr = add(b)
        if not ok then return nil, aerr end
      end
    end
  end
  -- deterministic order: dependencies first, otherwise by name
  local names = {}
  for name in pairs(files) do names[#names + 1] = name end
  tsort(names)
  local done, parts = {}, {}
  local function visit(name, depth)
    if done[name] then return true end
    if depth > 200 then return nil end
    local f = files[name]
    if not f then return nil, str_format("%s: dependency '%s' missing", where, name) end
    local deps = {}
    for _, d in ipairs(f.deps) do deps[#deps + 1] = d end
    tsort(deps)
    for _, d in ipairs(deps) do
      local ok, verr = visit(d, depth + 1)
      if not ok then return nil, verr or str_format("%s: import cycle at '%s'", where, name) end
    end
    done[name] = true
    parts[#parts + 1] = pb_len(1, f.bytes)
    return true
  end
  for _, name in ipairs(names) do
    local ok, verr = visit(name, 0)
    if not ok then return nil, verr end
  end
  return concat(parts)
end

local REFLECT_OPTIONS = {
  url = "string", services = "table", timeout = "number", connect_timeout = "number",
  metadata = "table", cafile = "string", capath = "string", cert = "string", key = "string",
  key_password = "string", max_len = "number",
}

local function reflect_setup(o, level)
  check_opts(o, REFLECT_OPTIONS, "grpc.reflect", level + 1)
  if type(o.url) ~= "string" then error("dynpb: grpc.reflect: option 'url' is required", level + 1) end
  local co = { url = o.url, connect_timeout = o.connect_timeout, max_len = o.max_len or 64 * 1024 * 1024 }
  for _, k in ipairs(TLS) do co[k] = o[k] end
  return { client = _M.client(co), services = o.services, timeout = o.timeout or 10, metadata = o.metadata }
end

local function run_blocking(job) return job:wait() end

-- grpc.reflect{ url =, services = { ... } (default: every listed service but
-- the reflection service), timeout = 10, metadata =, TLS options }
-- --> FileDescriptorSet bytes (files in a deterministic order) | nil, err
function _M.reflect(o)
  local r = reflect_setup(o, 2)
  local bytes, err = reflect_run(r, run_blocking)
  r.client:close()
  return bytes, err
end

-- The registry's transport for strategy = "reflection": req.url is the
-- grpc:// URL; res.body the assembled descriptor set. start() runs the same
-- exchanges without blocking (job:poll() drives them).
function _M.reflection_transport(services)
  local function setup(req)
    local md
    if req.headers then
      md = {}
      for k, v in pairs(req.headers) do md[str_lower(k)] = v end
    end
    local o = { url = req.url, services = services, timeout = req.timeout,
                connect_timeout = req.connect_timeout, metadata = md, max_len = req.max_bytes }
    for _, k in ipairs(TLS) do o[k] = req[k] end
    return reflect_setup(o, 3)
  end
  local function result(bytes, err)
    if not bytes then return nil, err end
    return { status = 200, body = bytes, headers = {} }
  end
  local t = { name = "grpc-reflection", now = function() return core().now() end }
  function t.fetch(req)
    local r = setup(req)
    local bytes, err = reflect_run(r, run_blocking)
    r.client:close()
    return result(bytes, err)
  end
  function t.start(req)
    local r = setup(req)
    local co = co_create(function()
      return reflect_run(r, function(job)
        while true do
          local a, b, c = job:poll()
          if a ~= nil then return a, b, c end
          co_yield(job)
        end
      end)
    end)
    local job = { current = nil }
    function job.poll()
      if job.outcome then error("dynpb: grpc reflection job: the result was already taken", 2) end
      local ok, a, b = co_resume(co)
      if not ok then
        job.outcome = true
        return false, "dynpb: grpc reflect: " .. tostring(a)
      end
      if co_status(co) ~= "dead" then
        job.current = a
        return nil
      end
      job.outcome = true
      r.client:close()
      local res, err = result(a, b)
      if not res then return false, err end
      return res
    end
    function job.cancel()
      if job.current then job.current:cancel() end
    end
    return job
  end
  return t
end

return _M
