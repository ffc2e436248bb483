-- dynpb.registry -- follow a schema registry: fetch FileDescriptorSets,
-- refresh them, and never lose the last good one.
--
--   local registry = require "dynpb.registry"
--   local reg, err = registry.new{ url = ..., refresh = 30, snapshot = ..., ... }
--   reg:schema(); reg:refresh(); reg:poll(); reg:enum(name); reg:stats(); reg:close()
--
-- Layout: the refresh *policy* (strategies, validators, 304, Retry-After,
-- backoff, snapshot, change detection) is plain Lua in this file; the
-- *transport* is a small table, by default the libcurl one in dynpb.http:
--
--   transport.fetch(req) --> res | nil, err     one GET; may block or yield (cosockets)
--   transport.start(req) --> job | nil, err     same GET without blocking (background = true);
--       job:poll() --> nil while running, then res | false, err ; job:cancel()
--   transport.now()      --> monotonic seconds (optional; os.time otherwise)
--   transport.save(path, bytes) --> true | nil, err   writes the snapshot (optional;
--       dynpb.write_durable otherwise); may yield (dynpb.resty runs it on a thread)
--
--   req = { url=, headers = {Name = value}, timeout=, connect_timeout=, max_bytes=,
--           cafile=, capath=, cert=, key=, key_password=,   (TLS fields only when set)
--           forward_headers = true }   (only when set: headers also go to a redirect's
--                                       other scheme/host/port; otherwise they must not)
--   res = { status = number, body = string,
--           headers = { etag=, ["last-modified"]=, ["retry-after"]= } }  -- lowercase names
--
-- A transport returns every completed HTTP exchange as `res` whatever its
-- status, and nil, err (err naming the URL) when no response was received
-- completely. An OpenResty transport (cosockets in fetch, ngx.timer behind
-- start) plugs in through `registry.new{ transport = t }`.
--
-- Errors: expected failures give nil, err; misuse (unknown option, wrong
-- type) raises at the caller's level.

local _M = { _VERSION = "0.1.0" }

local dynpb = require "dynpb"

local type, pairs, tostring, tonumber, error, pcall, require, setmetatable =
      type, pairs, tostring, tonumber, error, pcall, require, setmetatable
local floor, min, max = math.floor, math.min, math.max
local str_format, str_find, str_sub, str_byte, str_char, str_match, str_lower, str_gsub =
      string.format, string.find, string.sub, string.byte, string.char, string.match,
      string.lower, string.gsub
local co_create, co_resume, co_yield, co_status =
      coroutine.create, coroutine.resume, coroutine.yield, coroutine.status
local io_open, os_time = io.open, os.time
local dp_load, dp_write_durable = dynpb.load, dynpb.write_durable

local mt = { __index = _M }

local DEFAULTS = {
  timeout = 5, connect_timeout = 2, refresh = 30, jitter = 0.1,
  strategy = "latest", max_bytes = 64 * 1024 * 1024, background = false,
}
local MAX_RETRY_AFTER = 3600       -- seconds; a Retry-After beyond this is clamped
local BACKOFF_BASE = 1             -- first retry delay (seconds), doubled per failure

-- option name -> expected Lua type
local OPTION_TYPES = {
  url = "string", headers = "table", timeout = "number", connect_timeout = "number",
  refresh = "number", jitter = "number", strategy = "string", snapshot = "string",
  max_bytes = "number", background = "boolean", on_update = "function",
  on_error = "function", transport = "table", services = "table",
  cafile = "string", capath = "string", cert = "string", key = "string",
  key_password = "string", forward_headers = "boolean",
}
local TLS_OPTIONS = { "cafile", "capath", "cert", "key", "key_password" }

-- ---------------------------------------------------------------- helpers

-- url without "user:password@", for messages
local function shown(url)
  return (str_gsub(url, "^([%a][%w+.-]*://)[^/?#@]*@", "%1"))
end

-- the default transport, or nil, err when dynpb.http cannot be loaded
local function curl_transport()
  local ok, http = pcall(require, "dynpb.http")
  if not ok then return nil, "dynpb: registry: dynpb.http is not available: " .. tostring(http) end
  return { name = "curl", fetch = http.fetch, start = http.start, now = http.now }
end
_M.curl_transport = curl_transport

-- uniform in [0, 1): Park-Miller, exact in doubles and in 5.3+ integers
local function rand(self)
  self.seed = (self.seed * 16807) % 2147483647
  return self.seed / 2147483647
end

-- ------------------------------------------------------------------- JSON

-- Minimal JSON reader, enough for {"versions":[1,2,...]}: objects, arrays,
-- strings (with escapes), numbers, true/false/null; nesting bounded.
local json_value

local function skip_ws(s, i)
  return str_find(s, "[^ \t\r\n]", i) or #s + 1
end

local ESCAPES = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f",
                  n = "\n", r = "\r", t = "\t" }

local function utf8_char(c)
  if c < 0x80 then return str_char(c) end
  if c < 0x800 then return str_char(0xC0 + floor(c / 64), 0x80 + c % 64) end
  return str_char(0xE0 + floor(c / 4096), 0x80 + floor(c / 64) % 64, 0x80 + c % 64)
end

local function json_string(s, i)           -- s[i] == '"'; returns string, next index
  local out, n, j = {}, 0, i + 1
  while true do
    local k = str_find(s, '["\\%c]', j)
    if not k then return nil, "unterminated string" end
    n = n + 1; out[n] = str_sub(s, j, k - 1)
    local c = str_sub(s, k, k)
    if c == '"' then return table.concat(out), k + 1 end
    if c ~= "\\" then return nil, "control character in string" end
    local e = str_sub(s, k + 1, k + 1)
    if e == "u" then
      local hex = str_match(s, "^%x%x%x%x", k + 2)
      if not hex then return nil, "bad \\u escape" end
      n = n + 1; out[n] = utf8_char(tonumber(hex, 16))
      j = k + 6
    elseif ESCAPES[e] then
      n = n + 1; out[n] = ESCAPES[e]
      j = k + 2
    else
      return nil, "bad escape"
    end
  end
end

json_value = function(s, i, depth)
  if depth > 32 then return nil, "nesting too deep" end
  i = skip_ws(s, i)
  local c = str_sub(s, i, i)
  if c == "{" or c == "[" then
    local obj, close, n = {}, c == "{" and "}" or "]", 0
    i = skip_ws(s, i + 1)
    if str_sub(s, i, i) == close then return obj, i + 1 end
    while true do
      local key
      if close == "}" then
        i = skip_ws(s, i)
        if str_sub(s, i, i) ~= '"' then return nil, "expected a key" end
        key, i = json_string(s, i)
        if not key then return nil, i end
        i = skip_ws(s, i)
        if str_sub(s, i, i) ~= ":" then return nil, "expected ':'" end
        i = i + 1
      end
      local v
      v, i = json_value(s, i, depth + 1)
      if v == nil then return nil, i end
      if key then obj[key] = v else n = n + 1; obj[n] = v end
      i = skip_ws(s, i)
      local d = str_sub(s, i, i)
      if d == close then return obj, i + 1 end
      if d ~= "," then return nil, "expected ',' or '" .. close .. "'" end
      i = i + 1
    end
  elseif c == '"' then
    return json_string(s, i)
  end
  local num = str_match(s, "^-?%d+%.?%d*[eE]?[-+]?%d*", i)
  if num then
    local v = tonumber(num)
    if not v then return nil, "bad number" end
    return v, i + #num
  end
  for word, v in pairs({ ["true"] = true, ["false"] = false, null = false }) do
    if str_sub(s, i, i + #word - 1) == word then return v, i + #word end
  end
  return nil, "unexpected " .. (c == "" and "end of input" or "'" .. c .. "'")
end

-- {"versions":[...]} -> the largest version number, or nil, err
local function newest_version(body)
  local v, i = json_value(body, 1, 0)
  if v ~= nil and skip_ws(body, i) <= #body then v, i = nil, "trailing data" end
  if v == nil then return nil, "bad JSON: " .. i end
  local list = type(v) == "table" and v.versions
  if type(list) ~= "table" then return nil, "no \"versions\" array" end
  local best
  for k = 1, #list do
    local n = tonumber(list[k])     -- numbers, or numeric strings (int64 in protojson)
    if not n or n < 0 or n ~= floor(n) then return nil, "bad version " .. tostring(list[k]) end
    if not best or n > best then best = n end
  end
  if not best then return nil, "no versions" end
  return best
end
_M._newest_version = newest_version    -- exposed for the specs

-- ------------------------------------------------------------ Retry-After

local MONTHS = { jan = 1, feb = 2, mar = 3, apr = 4, may = 5, jun = 6,
                 jul = 7, aug = 8, sep = 9, oct = 10, nov = 11, dec = 12 }

-- days since 1970-01-01 of a proleptic Gregorian date
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

-- Retry-After value -> seconds to wait (>= 0), or nil when unparsable.
-- Accepts delta-seconds and the IMF-fixdate form of HTTP-date.
local function retry_after_seconds(v, wall_now)
  if type(v) ~= "string" then return nil end
  local secs = str_match(v, "^%s*(%d+)%s*$")
  if secs then return min(tonumber(secs), MAX_RETRY_AFTER) end
  local d, mon, y, hh, mm, ss = str_match(v, "^%a+, (%d%d?) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT")
  local m = mon and MONTHS[str_lower(mon)]
  if not m then return nil end
  local t = days_from_civil(tonumber(y), m, tonumber(d)) * 86400
            + tonumber(hh) * 3600 + tonumber(mm) * 60 + tonumber(ss)
  return max(0, min(t - (wall_now or os_time()), MAX_RETRY_AFTER))
end
_M._retry_after_seconds = retry_after_seconds   -- exposed for the specs

-- ---------------------------------------------------------------- options

local function check_options(opts)
  if type(opts) ~= "table" then
    error("dynpb: registry.new: options must be a table, got " .. type(opts), 3)
  end
  local o = {}
  for k, v in pairs(opts) do
    local want = OPTION_TYPES[k]
    if not want then error("dynpb: registry.new: unknown option '" .. tostring(k) .. "'", 3) end
    if type(v) ~= want then
      error(str_format("dynpb: registry.new: option '%s' must be a %s, got %s", k, want, type(v)), 3)
    end
    o[k] = v
  end
  if not o.url or o.url == "" then error("dynpb: registry.new: option 'url' is required", 3) end
  for k, v in pairs(DEFAULTS) do
    if o[k] == nil then o[k] = v end
  end
  for _, k in pairs({ "timeout", "connect_timeout", "refresh" }) do
    if not (o[k] > 0) or o[k] > 86400 * 365 then
      error("dynpb: registry.new: option '" .. k .. "' must be > 0 seconds", 3)
    end
  end
  if not (o.jitter >= 0 and o.jitter < 1) then
    error("dynpb: registry.new: option 'jitter' must be in [0, 1)", 3)
  end
  if not (o.max_bytes >= 1) or o.max_bytes ~= floor(o.max_bytes) then
    error("dynpb: registry.new: option 'max_bytes' must be a positive integer", 3)
  end
  if o.strategy ~= "latest" and o.strategy ~= "versions" and o.strategy ~= "reflection" then
    error("dynpb: registry.new: option 'strategy' must be \"latest\", \"versions\" or \"reflection\"", 3)
  end
  if o.services and o.strategy ~= "reflection" then
    error("dynpb: registry.new: option 'services' needs strategy = \"reflection\"", 3)
  end
  if o.headers then
    local h = {}
    for k, v in pairs(o.headers) do
      if type(k) ~= "string" or type(v) ~= "string" then
        error("dynpb: registry.new: option 'headers' must map strings to strings", 3)
      end
      h[k] = v
    end
    o.headers = h
  end
  local t = o.transport
  if t then
    if type(t.fetch) ~= "function" then
      error("dynpb: registry.new: transport needs a fetch(req) function", 3)
    end
    if o.background and type(t.start) ~= "function" then
      error("dynpb: registry.new: background = true needs a transport with start(req)", 3)
    end
    if t.save ~= nil and type(t.save) ~= "function" then
      error("dynpb: registry.new: transport.save must be a function(path, bytes)", 3)
    end
  end
  return o
end

-- ------------------------------------------------------------------ policy

-- the request for url; conditional: add validators remembered for url
local function request(self, url, conditional)
  local o = self.opts
  local headers, have = {}, {}
  if o.headers then
    for k, v in pairs(o.headers) do headers[k] = v; have[str_lower(k)] = true end
  end
  local val = conditional and self.current and self.validators[url]
  if val then
    if val.etag and not have["if-none-match"] then headers["If-None-Match"] = val.etag end
    if val.last_modified and not have["if-modified-since"] then
      headers["If-Modified-Since"] = val.last_modified
    end
  end
  local req = { url = url, headers = headers, timeout = o.timeout,
                connect_timeout = o.connect_timeout, max_bytes = o.max_bytes }
  for _, k in pairs(TLS_OPTIONS) do req[k] = o[k] end
  if o.forward_headers then req.forward_headers = true end
  return req, val ~= nil and val ~= false
end

-- One response -> an outcome: { err=, retry_after= } | { not_modified = true }
-- | { body=, url=, validators= }
local function classify(self, url, res, conditional)
  local status = tonumber(res.status) or 0
  local h = type(res.headers) == "table" and res.headers or {}
  if status == 304 then
    if conditional then return { not_modified = true } end
    return { err = str_format("GET %s: HTTP 304 to an unconditional request", shown(url)) }
  end
  if status < 200 or status > 299 then
    local o = { err = str_format("GET %s: HTTP %d", shown(url), status) }
    if status == 429 or status == 503 then
      o.retry_after = retry_after_seconds(h["retry-after"])
      if o.retry_after then o.err = o.err .. str_format(" (retry after %ds)", o.retry_after) end
    end
    return o
  end
  local body = res.body
  if type(body) ~= "string" then
    return { err = str_format("GET %s: the transport returned no body", shown(url)) }
  end
  if #body > self.opts.max_bytes then
    return { err = str_format("GET %s: response body larger than max_bytes (%d bytes)",
                              shown(url), self.opts.max_bytes) }
  end
  local val
  if h.etag or h["last-modified"] then val = { etag = h.etag, last_modified = h["last-modified"] } end
  return { body = body, url = url, validators = { [url] = val or false } }
end

-- One refresh attempt: the requests it makes go through get(req) -> res |
-- nil, err, which is transport.fetch (blocking) or coroutine.yield
-- (background). Returns an outcome for finish(); calls no user callback.
local function attempt(self, get)
  local url = self.url
  if self.opts.strategy ~= "versions" then      -- "latest", "reflection"
    local req, cond = request(self, url, true)
    local res, err = get(req)
    if not res then return { err = err or "GET " .. shown(url) .. ": failed" } end
    return classify(self, url, res, cond)
  end
  -- Stencil's version-based refresh
  local list_url = url .. "/versions"
  local req, cond = request(self, list_url, true)
  local res, err = get(req)
  if not res then return { err = err or "GET " .. shown(list_url) .. ": failed" } end
  local listing = classify(self, list_url, res, cond)
  if listing.err then return listing end
  if listing.not_modified then
    return self.version and listing or { err = "GET " .. shown(list_url) .. ": HTTP 304 before any version" }
  end
  local newest, perr = newest_version(listing.body)
  if not newest then
    return { err = str_format("GET %s: bad versions listing: %s", shown(list_url), perr) }
  end
  if self.version and newest <= self.version and self.current then
    return { not_modified = true, validators = listing.validators }
  end
  local vurl = str_format("%s/%d", list_url, newest)
  res, err = get((request(self, vurl, false)))
  if not res then return { err = err or "GET " .. shown(vurl) .. ": failed" } end
  local o = classify(self, vurl, res, false)
  if o.body then
    o.version = newest
    o.validators[list_url] = listing.validators[list_url]
  end
  return o
end

-- counts an error and tells on_error; no scheduling
local function report(self, msg)
  local st = self.st
  st.errors = st.errors + 1
  st.last_error = msg
  if self.opts.on_error then self.opts.on_error(msg) end
end

local function schedule_ok(self)
  local o = self.opts
  self.failures = 0
  self.next_at = self.now() + o.refresh * (1 + o.jitter * (2 * rand(self) - 1))
end

-- a failed attempt: backoff min(refresh, 1 s * 2^(n-1)), jittered downwards,
-- and not before a Retry-After
local function fail(self, msg, retry_after)
  local o = self.opts
  self.failures = self.failures + 1
  local delay = min(o.refresh, min(BACKOFF_BASE, o.refresh) * 2 ^ min(self.failures - 1, 30))
  delay = delay * (1 - o.jitter * rand(self))
  if retry_after then delay = max(delay, retry_after) end
  self.next_at = self.now() + delay
  report(self, msg)
  return nil, msg
end

-- an io/os error without the "path: " that Lua puts before it (messages
-- name the path once)
local function io_reason(err, path)
  err = tostring(err)
  if err:sub(1, #path + 2) == path .. ": " then return err:sub(#path + 3) end
  return err
end

-- writes bytes to opts.snapshot durably: transport.save(path, bytes) when
-- the transport has one (dynpb.resty runs it on a thread), else
-- dynpb.write_durable (temp file, fsync, rename, fsync of the directory)
local function write_snapshot(self, bytes, fp)
  local path = self.opts.snapshot
  local ok, err = (self.transport.save or dp_write_durable)(path, bytes)
  if not ok then
    -- the caller names the path: drop write_durable's own "<op> <path>: "
    err = tostring(err)
    local p = "dynpb: write_durable " .. path .. ": "
    if err:sub(1, #p) == p then err = err:sub(#p + 1) end
    return nil, err
  end
  self.snapshot_fp = fp
  return true
end

-- makes schema current; bytes (if given) go to the snapshot
local function adopt(self, schema, bytes)
  local previous = self.current
  self.current = schema
  self.st.changes = self.st.changes + 1
  if bytes and self.opts.snapshot and self.snapshot_fp ~= schema.fingerprint then
    local ok, err = write_snapshot(self, bytes, schema.fingerprint)
    if not ok then report(self, "dynpb: registry: cannot write snapshot '" .. self.opts.snapshot .. "': " .. tostring(err)) end
  end
  if self.opts.on_update then self.opts.on_update(schema, previous) end
end

-- Applies an attempt's outcome: true (changed) | false (unchanged) | nil, err.
-- State is complete before any user callback runs.
local function finish(self, o)
  self.st.fetches = self.st.fetches + 1
  if o.err then return fail(self, o.err, o.retry_after) end
  local function keep_validators()
    for u, v in pairs(o.validators or {}) do self.validators[u] = v or nil end
  end
  if o.not_modified then
    self.st.not_modified = self.st.not_modified + 1
    keep_validators()
    self.st.last_ok_time = os_time()
    schedule_ok(self)
    return false
  end
  local schema, err = dp_load(o.body)
  if not schema then
    return fail(self, str_format("GET %s: not a valid descriptor set: %s", shown(o.url), tostring(err)))
  end
  keep_validators()
  if o.version then self.version = o.version end
  self.st.last_ok_time = os_time()
  schedule_ok(self)
  if self.current and self.current.fingerprint == schema.fingerprint then
    if self.opts.snapshot and self.snapshot_fp ~= schema.fingerprint then
      local ok, werr = write_snapshot(self, o.body, schema.fingerprint)
      if not ok then report(self, "dynpb: registry: cannot write snapshot '" .. self.opts.snapshot .. "': " .. tostring(werr)) end
    end
    return false
  end
  adopt(self, schema, o.body)
  return true
end

-- the snapshot's schema, or nil, err, missing (missing: no file at all)
local function read_snapshot(self)
  local path = self.opts.snapshot
  local f, err = io_open(path, "rb")
  if not f then return nil, "dynpb: registry: cannot read snapshot '" .. path .. "': " .. io_reason(err, path), true end
  local bytes = f:read("*a") or ""
  f:close()
  if #bytes > self.opts.max_bytes then
    return nil, str_format("dynpb: registry: snapshot '%s' ignored: %d bytes, larger than max_bytes (%d)", path, #bytes, self.opts.max_bytes)
  end
  local schema, lerr = dp_load(bytes)
  if not schema then
    return nil, "dynpb: registry: snapshot '" .. path .. "' ignored: not a valid descriptor set: " .. tostring(lerr)
  end
  self.snapshot_fp = schema.fingerprint
  return schema
end

-- drops an in-flight background attempt
local function abandon(self)
  if self.job then self.job:cancel() end
  self.job, self.co = nil, nil
end

-- Advances the background attempt: polls its job, feeds the result to the
-- coroutine, starts the next request. Returns like finish(), or false while
-- a request is in flight.
local function step(self)
  local ok, r, e
  if self.job then
    local res, err = self.job:poll()
    if res == nil then return false end
    self.job = nil
    if res then ok, r, e = co_resume(self.co, res)
    else ok, r, e = co_resume(self.co, nil, err) end
  else
    ok, r, e = co_resume(self.co, self, co_yield)
  end
  while true do
    if not ok then
      self.co = nil
      return finish(self, { err = "dynpb: registry: internal error: " .. tostring(r) })
    end
    if co_status(self.co) == "dead" then
      self.co = nil
      return finish(self, r)
    end
    local job, err = self.transport.start(r)            -- r: the next request
    if job then
      self.job = job
      return false
    end
    ok, r, e = co_resume(self.co, nil, err)
  end
end

-- ------------------------------------------------------------------- API

-- registry.new(opts) --> reg | nil, err. Makes the first fetch now (bounded
-- by timeout); falls back to the snapshot; fails only when neither gives a
-- schema. Raises on unknown options and wrong types.
function _M.new(opts)
  local o = check_options(opts)
  local transport = o.transport
  if not transport and o.strategy == "reflection" then
    -- server reflection over gRPC (dynpb.grpc): the transport's "GET" is
    -- the reflection exchange, its body the assembled descriptor set
    local ok, grpc = pcall(require, "dynpb.grpc")
    if not ok then return nil, "dynpb: registry: dynpb.grpc is not available: " .. tostring(grpc) end
    transport = grpc.reflection_transport(o.services)
  end
  if not transport then
    local err
    transport, err = curl_transport()
    if not transport then return nil, err end
  end
  local now = transport.now
  if type(now) ~= "function" then now = os_time end
  local seed = (os_time() + floor((now() % 1) * 1e6)
                + (tonumber(str_match(tostring({}), "0x(%x+)") or "0", 16) or 0)) % 2147483646 + 1
  local self = setmetatable({
    opts = o,
    url = o.strategy == "versions" and (str_gsub(o.url, "/+$", "")) or o.url,
    transport = transport,
    now = now,
    background = o.background,
    current = nil,             -- the current schema
    validators = {},            -- url -> { etag=, last_modified= }
    version = nil,              -- strategy "versions": the version adopted
    failures = 0,
    next_at = 0,
    seed = floor(seed),
    snapshot_fp = nil,
    job = nil, co = nil,
    closed = false,
    st = { fetches = 0, not_modified = 0, changes = 0, errors = 0 },
  }, mt)
  local _, err = finish(self, attempt(self, transport.fetch))
  if self.current then return self end
  if o.snapshot then
    local schema, serr, missing = read_snapshot(self)
    if schema then
      adopt(self, schema, nil)
      return self
    end
    if not missing then report(self, serr) end
    err = tostring(err) .. "; " .. (str_gsub(serr, "^dynpb: registry: ", ""))
  end
  return nil, "dynpb: registry: no schema: " .. tostring(err)
end

-- reg:schema() --> the current schema (nil only if none was ever loaded)
function _M.schema(self)
  return self.current
end

-- reg:refresh() --> true (changed) | false (unchanged) | nil, err.
-- One attempt now, bounded by timeout (twice for strategy "versions"),
-- blocking even in background mode; a background fetch in flight is dropped.
function _M.refresh(self)
  if self.closed then return nil, "dynpb: registry: closed" end
  abandon(self)
  return finish(self, attempt(self, self.transport.fetch))
end

-- reg:poll() --> like refresh() when an attempt completes in this call,
-- false otherwise. Starts an attempt when one is due (after refresh seconds,
-- or the backoff after a failure). Background mode never blocks: it starts
-- the fetch on the transport's thread and adopts it in a later poll.
function _M.poll(self)
  if self.closed then return nil, "dynpb: registry: closed" end
  if self.co then return step(self) end
  if self.now() < self.next_at then return false end
  if not self.background then return finish(self, attempt(self, self.transport.fetch)) end
  self.co = co_create(attempt)
  return step(self)
end

-- constants of an enum of the current schema, or nil, err
function _M.enum(self, name)
  local s = self.current
  if not s then return nil, "dynpb: registry: no schema" end
  return s:enum(name)
end

function _M.decode(self, typename, bytes, opts)
  local s = self.current
  if not s then return nil, "dynpb: registry: no schema" end
  if not s.decode then error("dynpb: registry: this dynpb has no schema:decode", 2) end
  return s:decode(typename, bytes, opts)
end

function _M.encode(self, typename, t, opts)
  local s = self.current
  if not s then return nil, "dynpb: registry: no schema" end
  if not s.encode then error("dynpb: registry: this dynpb has no schema:encode", 2) end
  return s:encode(typename, t, opts)
end

-- text format on the current schema (issue 19)
function _M.to_text(self, typename, bytes, opts)
  local s = self.current
  if not s then return nil, "dynpb: registry: no schema" end
  return s:to_text(typename, bytes, opts)
end

function _M.from_text(self, typename, text, opts)
  local s = self.current
  if not s then return nil, "dynpb: registry: no schema" end
  return s:from_text(typename, text, opts)
end

-- proto3 JSON with the current schema (schema:to_json / schema:from_json)
function _M.to_json(self, typename, bytes, opts)
  local s = self.current
  if not s then return nil, "dynpb: registry: no schema" end
  if not s.to_json then error("dynpb: registry: this dynpb has no schema:to_json", 2) end
  return s:to_json(typename, bytes, opts)
end

function _M.from_json(self, typename, json, opts)
  local s = self.current
  if not s then return nil, "dynpb: registry: no schema" end
  if not s.from_json then error("dynpb: registry: this dynpb has no schema:from_json", 2) end
  return s:from_json(typename, json, opts)
end

-- a copy of the counters: fetches (attempts made), not_modified (304, or no
-- newer version), changes (schemas adopted), errors, last_error,
-- last_ok_time (os.time of the last successful attempt), fingerprint
function _M.stats(self)
  local st = self.st
  return {
    fetches = st.fetches, not_modified = st.not_modified, changes = st.changes,
    errors = st.errors, last_error = st.last_error, last_ok_time = st.last_ok_time,
    fingerprint = self.current and self.current.fingerprint,
  }
end

-- reg:close(): cancels a background fetch; refresh and poll then give
-- nil, err. The current schema stays readable. Idempotent.
function _M.close(self)
  abandon(self)
  self.closed = true
  return true
end

return _M
