-- dynpb.resty -- live schemas in OpenResty / nginx + lua-nginx-module.
--
--   init_by_lua_block {            -- optional: start warm (blocking is allowed here)
--     require("dynpb.resty").init{ name = "domain", shared_dict = "dynpb",
--                                  url = "http://...", snapshot = "/var/lib/app/domain.pb" }
--   }
--   init_worker_by_lua_block {
--     require("dynpb.resty").follow{ name = "domain", url = "http://...", refresh = 30,
--                                    shared_dict = "dynpb" }
--   }
--   content_by_lua_block {
--     local domain = require("dynpb.resty").get("domain")   -- never blocks
--   }
--
-- How it works:
--   * Every worker runs one timer chain per followed name (ngx.timer.at; it
--     starts at 0 s because init_worker cannot use cosockets).
--   * One worker per node is the fetcher: it holds a lease in the shared dict
--     (safe_add(lock, pid, ttl), renewed each tick, released at exit). It owns
--     a dynpb.registry object -- the same refresh policy as the libcurl
--     transport (strategies, ETag/304, Retry-After, backoff with jitter,
--     max_bytes, last good, snapshot) -- driven with the cosocket transport
--     below, so a fetch yields to the event loop and never blocks it.
--   * When its schema changes, the fetcher stores the bytes, then the
--     fingerprint, in the shared dict.
--   * Every worker (the fetcher too) reads the fingerprint each tick (one
--     shared-dict get) and, when it changed, loads the bytes with dynpb.load
--     (fingerprint cache: each version compiles once per worker), then calls
--     on_update(schema, previous).
--   * get(name) returns the worker's current schema: the last good one while
--     the registry fails.
--
-- The cosocket transport is also usable on its own:
--   require("dynpb.resty").fetch{ url =, headers =, timeout =, connect_timeout =, max_bytes =,
--                                 forward_headers =, cert =, key = }
--     --> res | nil, err    (res = { status =, body =, headers = {...}, url = })

local _M = { _VERSION = "0.1.0" }

local dynpb = require "dynpb"
local registry = require "dynpb.registry"

local type, pairs, ipairs, tostring, tonumber, error, pcall, setmetatable =
      type, pairs, ipairs, tostring, tonumber, error, pcall, setmetatable
local floor, min, max = math.floor, math.min, math.max
local concat = table.concat
local str_format, str_find, str_sub, str_byte, str_match, str_lower, str_gsub =
      string.format, string.find, string.sub, string.byte, string.match, string.lower,
      string.gsub
local io_open = io.open
local dp_load, dp_fingerprint, dp_write_durable = dynpb.load, dynpb.fingerprint, dynpb.write_durable

local DEFAULT_TIMEOUT, DEFAULT_CONNECT_TIMEOUT = 5, 2
local DEFAULT_MAX_BYTES = 64 * 1024 * 1024
local MAX_REDIRECTS = 5
local MAX_HEADER_BYTES = 64 * 1024           -- status line + headers
local MAX_HEADER_LINES = 200
local KEY_PREFIX = "dynpb:"

-- ------------------------------------------------------------------ clock

local now
do
  local ok, t = pcall(require, "resty.core.time")
  if ok and type(t) == "table" and type(t.monotonic_time) == "function" then
    now = t.monotonic_time
  else
    now = function() return ngx.now() end
  end
end

-- ------------------------------------------------------------- HTTP (GET)

-- url without "user:password@", for messages
local function shown(url)
  return (str_gsub(url, "^([%a][%w+.-]*://)[^/?#@]*@", "%1"))
end

-- "http(s)://[user:pass@]host[:port][/path][?query]" -> parts, or nil, err
local function parse_url(url)
  local scheme, rest = str_match(url, "^(%a[%w+.-]*)://(.*)$")
  scheme = scheme and str_lower(scheme)
  if scheme ~= "http" and scheme ~= "https" then
    return nil, "unsupported URL (the cosocket transport speaks http:// and https://)"
  end
  local authority, path = str_match(rest, "^([^/?#]*)(.*)$")
  path = str_gsub(path, "#.*$", "")
  if path == "" then path = "/" elseif str_sub(path, 1, 1) == "?" then path = "/" .. path end
  if str_find(path, "[%s%c]") then return nil, "bad characters in the URL path" end
  local userinfo, hostport = str_match(authority, "^(.*)@(.*)$")
  if not userinfo then hostport = authority end
  local host, port
  if str_sub(hostport, 1, 1) == "[" then
    host, port = str_match(hostport, "^%[([%x:.]+)%]:?(%d*)$")
  else
    host, port = str_match(hostport, "^([^:]+):?(%d*)$")
  end
  if not host or host == "" then return nil, "no host in the URL" end
  local default_port = scheme == "https" and 443 or 80
  port = port ~= "" and tonumber(port) or default_port
  if port < 1 or port > 65535 then return nil, "bad port in the URL" end
  local host_header = str_find(host, ":", 1, true) and ("[" .. host .. "]") or host
  if port ~= default_port then host_header = host_header .. ":" .. port end
  return { scheme = scheme, host = host, port = port, path = path, userinfo = userinfo,
           host_header = host_header }
end

-- location of a redirect relative to the URL u (parts) -> absolute URL
local function resolve_location(u, loc)
  if str_match(loc, "^%a[%w+.-]*://") then return loc end
  local base = u.scheme .. "://" .. u.host_header
  if str_sub(loc, 1, 2) == "//" then return u.scheme .. ":" .. loc end
  if str_sub(loc, 1, 1) == "/" then return base .. loc end
  local dir = str_match(u.path, "^([^?]*/)") or "/"
  return base .. dir .. loc
end

-- A buffered reader over a cosocket with one deadline for the whole exchange.
local Reader = {}
Reader.__index = Reader

local function new_reader(sock, deadline)
  return setmetatable({ sock = sock, buf = "", deadline = deadline }, Reader)
end

-- sets the socket timeout to what is left (capped by cap_ms); false when none is left
function Reader:arm(cap_ms)
  local left = floor((self.deadline - now()) * 1000)
  if left <= 0 then return false end
  if cap_ms and cap_ms < left then left = cap_ms end
  self.sock:settimeout(max(left, 1))
  return true
end

-- one line without its CR LF, or nil, err
function Reader:line(limit)
  while true do
    local i = str_find(self.buf, "\n", 1, true)
    if i then
      local l = str_sub(self.buf, 1, i - 1)
      self.buf = str_sub(self.buf, i + 1)
      if str_byte(l, -1) == 13 then l = str_sub(l, 1, -2) end
      return l
    end
    if #self.buf > limit then return nil, "response header line too long" end
    if not self:arm() then return nil, "timed out" end
    local data, err = self.sock:receiveany(8192)
    if not data then return nil, err == "timeout" and "timed out" or err end
    self.buf = self.buf .. data
  end
end

-- exactly n bytes, or nil, err
function Reader:exact(n)
  local have = #self.buf
  if have >= n then
    local s = str_sub(self.buf, 1, n)
    self.buf = str_sub(self.buf, n + 1)
    return s
  end
  if not self:arm() then return nil, "timed out" end
  local data, err, partial = self.sock:receive(n - have)
  if not data then
    if err == "closed" then
      return nil, str_format("truncated body (connection closed after %d of %d bytes)",
                             have + #(partial or ""), n)
    end
    return nil, err == "timeout" and "timed out" or err
  end
  local s = self.buf .. data
  self.buf = ""
  return s
end

-- everything until the peer closes, at most limit bytes, or nil, err
function Reader:rest(limit)
  local parts, total = { self.buf }, #self.buf
  self.buf = ""
  if total > limit then return nil, "too big" end
  while true do
    if not self:arm() then return nil, "timed out" end
    local data, err = self.sock:receiveany(65536)
    if not data then
      if err == "closed" then break end
      return nil, err == "timeout" and "timed out" or err
    end
    total = total + #data
    if total > limit then return nil, "too big" end
    parts[#parts + 1] = data
  end
  return concat(parts)
end

local BIG = "response body larger than max_bytes (%d bytes)"

-- a chunked body, or nil, err
local function read_chunked(r, limit)
  local parts, total = {}, 0
  while true do
    local l, err = r:line(1024)
    if not l then return nil, err end
    local hex = str_match(l, "^%s*(%x+)%s*[;]?")
    if not hex or #hex > 12 then return nil, "bad chunk size line" end
    local size = tonumber(hex, 16)
    if size == 0 then
      for _ = 1, MAX_HEADER_LINES do                      -- trailers
        local t, terr = r:line(MAX_HEADER_BYTES)
        if not t then return nil, terr end
        if t == "" then return concat(parts) end
      end
      return nil, "too many trailer lines"
    end
    total = total + size
    if total > limit then return nil, str_format(BIG, limit) end
    local data, derr = r:exact(size)
    if not data then return nil, derr end
    parts[#parts + 1] = data
    local crlf, cerr = r:line(16)
    if not crlf then return nil, cerr end
    if crlf ~= "" then return nil, "bad chunk terminator" end
  end
end

-- status and lowercase headers of one response (interim 1xx skipped), or nil, err
local function read_head(r)
  local status, headers, used
  for _ = 1, 5 do
    local l, err = r:line(MAX_HEADER_BYTES)
    if not l then return nil, err end
    status = tonumber(str_match(l, "^HTTP/1%.%d (%d%d%d)"))
    if not status then return nil, "not an HTTP/1.x response" end
    headers, used = {}, #l
    local ended = false
    for _ = 1, MAX_HEADER_LINES do
      local h, herr = r:line(MAX_HEADER_BYTES - used)
      if not h then return nil, herr end
      used = used + #h + 2
      if used > MAX_HEADER_BYTES then return nil, "response headers too large" end
      if h == "" then ended = true; break end
      local name, value = str_match(h, "^([^:%s]+):%s*(.-)%s*$")
      if name then headers[str_lower(name)] = value end
    end
    if not ended then return nil, "too many response header lines" end
    if status >= 200 or status == 101 then return status, headers end
  end
  return nil, "too many interim responses"
end

local function check_header(k, v)
  if type(k) ~= "string" or type(v) ~= "string" then
    error("dynpb: resty.fetch: headers must map strings to strings", 3)
  end
  if str_find(k, "[%c%s:]") or str_find(v, "[\r\n%z]") then
    error("dynpb: resty.fetch: bad character in header " .. k, 3)
  end
end

-- PEM files -> the cosocket's client certificate and key (lua-resty-core's
-- ngx.ssl and tcpsock:setclientcert; an encrypted key is not supported)
local function set_client_cert(sock, cert_path, key_path)
  if not (cert_path and key_path) then return nil, "give both cert and key" end
  if type(sock.setclientcert) ~= "function" then
    return nil, "this lua-nginx-module has no tcpsock:setclientcert"
  end
  local ok, ssl = pcall(require, "ngx.ssl")
  if not ok then return nil, "ngx.ssl (lua-resty-core) is not available" end
  local function read(path)
    local f, err = io_open(path, "rb")
    if not f then return nil, err end
    local pem = f:read("*a")
    f:close()
    return pem
  end
  local cpem, err = read(cert_path)
  if not cpem then return nil, err end
  local kpem
  kpem, err = read(key_path)
  if not kpem then return nil, err end
  local cert, perr = ssl.parse_pem_cert(cpem)
  if not cert then return nil, cert_path .. ": " .. tostring(perr) end
  local key, kerr = ssl.parse_pem_priv_key(kpem)
  if not key then return nil, key_path .. ": " .. tostring(kerr) end
  local sok, serr = sock:setclientcert(cert, key)
  if not sok then return nil, tostring(serr) end
  return true
end

-- One exchange on a fresh connection -> res | nil, err, or a redirect target
local function exchange(u, req, deadline, max_bytes, headers)
  local sock = ngx.socket.tcp()
  local r = new_reader(sock, deadline)
  local connect_ms = floor((req.connect_timeout or DEFAULT_CONNECT_TIMEOUT) * 1000)
  if not r:arm(connect_ms) then return nil, "timed out" end
  local ok, err = sock:connect(u.host, u.port)
  if not ok then
    return nil, "connect to " .. u.host_header .. ": " .. (err == "timeout" and "timed out" or tostring(err))
  end
  local function fail(e)
    sock:close()
    return nil, e
  end
  if u.scheme == "https" then
    if req.cert or req.key then
      local cok, cerr = set_client_cert(sock, req.cert, req.key)
      if not cok then return fail("client certificate: " .. cerr) end
    end
    if not r:arm() then return fail("timed out") end
    -- verification on: the chain against lua_ssl_trusted_certificate, and
    -- the host name against the certificate
    -- (no session reuse: false gives true/nil, err and skips lua-resty-core's
    -- session fetch, which asserts when the peer drops right after the handshake)
    local hok, serr = sock:sslhandshake(false, u.host, true)
    if not hok then return fail("TLS handshake: " .. tostring(serr)) end
  end
  local lines = { "GET " .. u.path .. " HTTP/1.1", "Host: " .. u.host_header,
                  "Connection: close", "Accept: */*" }
  local have = {}
  for k, v in pairs(headers) do
    have[str_lower(k)] = true
    lines[#lines + 1] = k .. ": " .. v
  end
  if not have["user-agent"] then lines[#lines + 1] = "User-Agent: dynpb-resty/" .. _M._VERSION end
  if u.userinfo and not have["authorization"] then
    lines[#lines + 1] = "Authorization: Basic " .. ngx.encode_base64(ngx.unescape_uri(u.userinfo))
  end
  lines[#lines + 1] = "\r\n"
  if not r:arm() then return fail("timed out") end
  local sent, werr = sock:send(concat(lines, "\r\n"))
  if not sent then return fail("send: " .. tostring(werr)) end
  local status, h = read_head(r)
  if not status then return fail(h) end
  local body = ""
  if not (status == 204 or status == 304 or status < 200) then
    local te = h["transfer-encoding"]
    local cl = h["content-length"]
    local berr
    if te and str_find(str_lower(te), "chunked%s*$") then
      body, berr = read_chunked(r, max_bytes)
    elseif cl and not te then
      if not str_match(cl, "^%d+$") or #cl > 15 then return fail("bad Content-Length") end
      local n = tonumber(cl)
      if n > max_bytes then return fail(str_format(BIG, max_bytes)) end
      body, berr = r:exact(n)
    else
      body, berr = r:rest(max_bytes)
      if berr == "too big" then berr = str_format(BIG, max_bytes) end
    end
    if not body then return fail(berr) end
  end
  sock:close()
  return { status = status, body = body, headers = {
    etag = h.etag, ["last-modified"] = h["last-modified"], ["retry-after"] = h["retry-after"],
    ["content-type"] = h["content-type"], location = h.location } }
end

-- fetch(req) --> res | nil, err. One GET with cosockets (yields, never blocks
-- the worker): req.timeout bounds the whole exchange including redirects,
-- req.connect_timeout each connect; at most 5 redirects (never https -> http;
-- req.headers go only to the scheme, host and port of req.url unless
-- req.forward_headers); max_bytes enforced while receiving. Every complete
-- HTTP response is a result whatever its status.
local function fetch(req)
  if type(req) ~= "table" or type(req.url) ~= "string" then
    error("dynpb: resty.fetch: req.url must be a string", 2)
  end
  local url = req.url
  local timeout = req.timeout or DEFAULT_TIMEOUT
  local max_bytes = req.max_bytes or DEFAULT_MAX_BYTES
  local headers = {}
  for k, v in pairs(req.headers or {}) do check_header(k, v); headers[k] = v end
  local deadline = now() + timeout
  local u, err = parse_url(url)
  if not u then return nil, "GET " .. shown(url) .. ": " .. err end
  local origin, all_headers = u, headers
  for _ = 0, MAX_REDIRECTS do
    local res, xerr = exchange(u, req, deadline, max_bytes, headers)
    if not res then return nil, "GET " .. shown(url) .. ": " .. xerr end
    local st = res.status
    local loc = res.headers.location
    if not ((st == 301 or st == 302 or st == 303 or st == 307 or st == 308) and loc) then
      res.url = url
      res.headers.location = nil
      return res
    end
    local next_url = resolve_location(u, loc)
    local nu, perr = parse_url(next_url)
    if not nu then return nil, "GET " .. shown(next_url) .. ": redirect: " .. perr end
    if u.scheme == "https" and nu.scheme ~= "https" then
      return nil, "GET " .. shown(url) .. ": redirect from https to http refused"
    end
    -- custom headers go only to the origin of req.url (forward_headers: to every hop)
    if not req.forward_headers and (nu.scheme ~= origin.scheme or str_lower(nu.host) ~= str_lower(origin.host)
                                    or nu.port ~= origin.port) then
      headers = {}
    else
      headers = all_headers
    end
    url, u = next_url, nu
  end
  return nil, "GET " .. shown(url) .. ": too many redirects"
end
_M.fetch = fetch
_M.now = now

-- Snapshot writes (transport.save): dynpb.write_durable on a thread of the
-- nginx thread pool `pool` (ngx.run_worker_thread, lua-nginx-module
-- 0.10.21+; nginx.conf needs `thread_pool <pool> threads=1;`), so the
-- fsyncs never stall the worker's event loop. Without the pool (or
-- without run_worker_thread) the write runs in the worker, blocking it for
-- the fsyncs, and a warning says so once.
_M._saves = { thread = 0, blocking = 0 }       -- counters, for the tests
local warned_blocking = false
local function saver(pool)
  return function(path, bytes)
    local rwt = ngx and ngx.run_worker_thread
    if rwt and pool then
      local ok, res, err = rwt(pool, "dynpb", "write_durable", path, bytes)
      if ok then
        _M._saves.thread = _M._saves.thread + 1
        return res, err
      end
      if not warned_blocking then
        warned_blocking = true
        ngx.log(ngx.WARN, "dynpb: resty: snapshot ", path, " written in the worker (blocking): ",
                "ngx.run_worker_thread: ", tostring(res),
                " (add `thread_pool ", pool, " threads=1;` to nginx.conf)")
      end
    elseif not warned_blocking and ngx and ngx.log then
      warned_blocking = true
      ngx.log(ngx.WARN, "dynpb: resty: snapshot ", path, " written in the worker (blocking): ",
              "this lua-nginx-module has no ngx.run_worker_thread")
    end
    _M._saves.blocking = _M._saves.blocking + 1
    return dp_write_durable(path, bytes)
  end
end
_M._saver = saver

-- The transport for dynpb.registry: fetch (cosockets), now and save. It remembers
-- the last 2xx body so the policy's new schema can be put in the shared dict.
local function recording(inner_fetch, inner_now, pool)
  -- no pool (init, in the master): the registry's default, a plain write_durable
  local t = { name = "cosocket", now = inner_now, save = pool and saver(pool) or nil }
  t.fetch = function(req)
    local res, err = inner_fetch(req)
    if res and res.status >= 200 and res.status < 300 then t.last_body = res.body end
    return res, err
  end
  return t
end
_M.transport = function(pool) return recording(fetch, now, pool or "dynpb") end

-- ------------------------------------------------------------ shared state

local follows = {}      -- name -> state (this worker)
local preloaded = {}    -- name -> schema loaded by init() in the master (inherited by fork)

local function keys(name)
  local p = KEY_PREFIX .. name .. ":"
  return { fp = p .. "fp", bytes = p .. "bytes", info = p .. "info", lock = p .. "lock" }
end

local function report(st, msg)
  st.errors = st.errors + 1
  st.last_error = msg
  ngx.log(ngx.WARN, "dynpb: resty[", st.name, "]: ", msg)
  if st.on_error then
    local ok, err = pcall(st.on_error, msg)
    if not ok then ngx.log(ngx.ERR, "dynpb: resty[", st.name, "]: on_error raised: ", tostring(err)) end
  end
end

-- makes schema current in this worker and tells on_update
local function adopt(st, schema)
  local previous = st.current
  if previous and previous.fingerprint == schema.fingerprint then return false end
  st.current = schema
  st.updates = st.updates + 1
  if st.on_update then
    local ok, err = pcall(st.on_update, schema, previous)
    if not ok then ngx.log(ngx.ERR, "dynpb: resty[", st.name, "]: on_update raised: ", tostring(err)) end
  end
  return true
end

-- reads the fingerprint in the shared dict; loads the bytes when it changed.
-- Never yields.
local function sync(st)
  local dict, k = st.dict, st.keys
  local fp = dict:get(k.fp)
  if not fp or (st.current and st.current.fingerprint == fp) or fp == st.bad_fp then return false end
  local bytes = dict:get(k.bytes)
  if type(bytes) ~= "string" then return false end
  local schema, err = dp_load(bytes)
  if not schema then
    st.bad_fp = fp
    report(st, "shared dict bytes are not a valid descriptor set: " .. tostring(err))
    return false
  end
  st.loads = st.loads + 1
  return adopt(st, schema)
end

-- puts bytes in the shared dict (bytes first, then the fingerprint readers poll)
local function publish(dict, k, bytes, fp, info)
  local ok, err = dict:safe_set(k.bytes, bytes)
  if not ok then return nil, "shared dict: cannot store " .. #bytes .. " bytes: " .. tostring(err) end
  ok, err = dict:safe_set(k.fp, fp)
  if not ok then return nil, "shared dict: cannot store the fingerprint: " .. tostring(err) end
  if info then dict:safe_set(k.info, info) end
  return true
end

-- "k=v;..." for stats
local function encode_info(t)
  local out = {}
  for key, v in pairs(t) do
    out[#out + 1] = key .. "=" .. str_gsub(tostring(v), "[;=%c]", " ")
  end
  table.sort(out)
  return concat(out, ";")
end

local function decode_info(s)
  local t = {}
  for key, v in string.gmatch(s or "", "([^;=]+)=([^;]*)") do t[key] = tonumber(v) or v end
  return t
end

local function read_file(path)
  local f = io_open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

-- the fetcher's on_update hook from the policy: find the bytes of the new
-- schema (the transport's last 2xx body, or the snapshot file) and publish.
local function fetcher_update(st, schema)
  local bytes = st.transport.last_body
  local from_snapshot = false
  if not (bytes and dp_fingerprint(bytes) == schema.fingerprint) then
    bytes = st.opts.snapshot and read_file(st.opts.snapshot)
    if not (bytes and dp_fingerprint(bytes) == schema.fingerprint) then
      report(st, "internal: the bytes of schema " .. schema.fingerprint .. " are not at hand")
      return
    end
    from_snapshot = true
  end
  local dict, k = st.dict, st.keys
  local cur = dict:get(k.fp)
  if cur == schema.fingerprint then return end
  -- the snapshot is only a fallback: it never replaces what another fetcher published
  if from_snapshot and cur then return end
  local ok, err = publish(dict, k, bytes, schema.fingerprint)
  if not ok then
    report(st, err)
    st.pending = { bytes = bytes, fp = schema.fingerprint }   -- retried each tick
    return
  end
  st.pending = nil
  st.published = st.published + 1
end

local REG_KEYS = { "url", "headers", "timeout", "connect_timeout", "refresh", "jitter",
                   "strategy", "snapshot", "max_bytes", "forward_headers", "cert", "key" }

local function registry_options(st, transport)
  local ro = { transport = transport }
  for _, key in ipairs(REG_KEYS) do ro[key] = st.opts[key] end
  ro.on_update = function(schema) fetcher_update(st, schema) end
  ro.on_error = function(msg) report(st, msg) end
  return ro
end

local function lease_ttl(st)
  local o = st.opts
  local per = (o.strategy == "versions" and 2 or 1) * (o.timeout or DEFAULT_TIMEOUT)
  return per + 2 * st.poll + 5
end

-- the fetcher's share of a tick: hold the lease, run the policy
local function lead(st)
  local dict, lock, pid = st.dict, st.keys.lock, ngx.worker.pid()
  local ttl = lease_ttl(st)
  local holder = dict:get(lock)
  if holder == nil then
    if dict:safe_add(lock, pid, ttl) then holder = pid end
  elseif holder == pid then
    dict:expire(lock, ttl)
  end
  if holder ~= pid then
    if st.reg then st.reg:close(); st.reg = nil end   -- another worker fetches now
    st.leader = false
    return
  end
  st.leader = true
  if not st.reg then
    local t = now()
    if t < st.retry_at then return end
    local reg, err = registry.new(registry_options(st, st.transport))
    if reg then
      st.reg, st.new_failures = reg, 0
    else
      -- no schema from the registry nor the snapshot: retry with the policy's
      -- backoff shape (1 s, doubled, capped at refresh, jittered downwards)
      st.new_failures = st.new_failures + 1
      local o = st.opts
      local delay = min(o.refresh, 2 ^ min(st.new_failures - 1, 30))
      st.retry_at = now() + delay * (1 - (o.jitter or 0.1) * math.random())
      st.last_error = err
      ngx.log(ngx.WARN, "dynpb: resty[", st.name, "]: ", err)
    end
  else
    st.reg:poll()
  end
  local p = st.pending
  if p and st.reg and st.reg:schema() and st.reg:schema().fingerprint == p.fp then
    if publish(dict, st.keys, p.bytes, p.fp) then st.pending = nil; st.published = st.published + 1 end
  else
    st.pending = nil
  end
  local reg = st.reg
  if reg then
    local s = reg:stats()
    dict:safe_set(st.keys.info, encode_info{
      pid = pid, version = reg.version or "", fetches = s.fetches, not_modified = s.not_modified,
      changes = s.changes, errors = s.errors, last_error = s.last_error or "",
      last_ok_time = s.last_ok_time or "", fingerprint = s.fingerprint or "" })
  end
end

local function release(st)
  local dict, lock = st.dict, st.keys.lock
  if dict:get(lock) == ngx.worker.pid() then dict:delete(lock) end
  if st.reg then st.reg:close(); st.reg = nil end
end

local tick

local function schedule(st, delay)
  local ok, err = ngx.timer.at(delay, tick, st)
  if not ok then
    release(st)
    if err ~= "process exiting" then
      ngx.log(ngx.ERR, "dynpb: resty[", st.name, "]: cannot schedule the refresh timer: ", err)
    end
  end
end

tick = function(premature, st)
  if premature or st.stopped then release(st); return end
  local ok, err = pcall(sync, st)
  if ok then ok, err = pcall(lead, st) end
  if ok then ok, err = pcall(sync, st) end
  if not ok then ngx.log(ngx.ERR, "dynpb: resty[", st.name, "]: ", tostring(err)) end
  st.ticks = st.ticks + 1
  if ngx.worker.exiting() then release(st); return end
  schedule(st, st.poll)
end

-- ------------------------------------------------------------------- API

local FOLLOW_TYPES = {
  name = "string", url = "string", refresh = "number", shared_dict = "string",
  headers = "table", timeout = "number", connect_timeout = "number", max_bytes = "number",
  strategy = "string", snapshot = "string", jitter = "number", on_update = "function",
  on_error = "function", poll = "number", forward_headers = "boolean",
  cert = "string", key = "string", thread_pool = "string",
}

local function check(opts, types, fname)
  if type(opts) ~= "table" then error(fname .. ": options must be a table", 3) end
  for key, v in pairs(opts) do
    local want = types[key]
    if not want then error(fname .. ": unknown option '" .. tostring(key) .. "'", 3) end
    if type(v) ~= want then
      error(str_format("%s: option '%s' must be a %s, got %s", fname, key, want, type(v)), 3)
    end
  end
  if not opts.name or opts.name == "" then error(fname .. ": option 'name' is required", 3) end
end

-- the registry's own option checks, run without any fetch
local function dry_run(o, fname)
  local ro = { transport = { fetch = function() return nil, "dry run" end, now = now } }
  for _, key in ipairs(REG_KEYS) do ro[key] = o[key] end
  ro.snapshot = nil
  local ok, err = pcall(registry.new, ro)
  if not ok then
    error((str_gsub(tostring(err), "^.-dynpb: registry%.new:", fname .. ":")), 3)
  end
end

-- follow{ name=, url=, shared_dict=, refresh=, ... }: call in
-- init_worker_by_lua. Raises on misuse; everything else happens in timers.
function _M.follow(opts)
  local fname = "dynpb: resty.follow"
  check(opts, FOLLOW_TYPES, fname)
  if not opts.url then error(fname .. ": option 'url' is required", 2) end
  if not opts.shared_dict then error(fname .. ": option 'shared_dict' is required", 2) end
  local _, uerr = parse_url(opts.url)
  if uerr then error(fname .. ": url: " .. uerr, 2) end
  dry_run(opts, fname)
  if not (ngx and ngx.shared) then error(fname .. ": needs nginx with lua-nginx-module", 2) end
  local dict = ngx.shared[opts.shared_dict]
  if not dict then
    error(fname .. ": no lua_shared_dict '" .. opts.shared_dict .. "' in nginx.conf", 2)
  end
  if follows[opts.name] then error(fname .. ": '" .. opts.name .. "' is already followed", 2) end
  local o = {}
  for key, v in pairs(opts) do o[key] = v end
  o.refresh = o.refresh or 30
  local st = {
    name = o.name, opts = o, dict = dict, keys = keys(o.name),
    poll = o.poll or min(1, o.refresh / 4),     -- also the granularity of the refresh timing
    on_update = o.on_update, on_error = o.on_error,
    transport = recording(fetch, now, o.thread_pool or "dynpb"),
    current = nil, reg = nil, leader = false, retry_at = 0, new_failures = 0,
    errors = 0, loads = 0, updates = 0, published = 0, ticks = 0,
  }
  if st.poll <= 0 then error(fname .. ": option 'poll' must be > 0", 2) end
  local pre = preloaded[o.name]
  if pre then st.current = pre end       -- from init(): no compile, no callback
  follows[o.name] = st
  local ok, err = ngx.timer.at(0, tick, st)
  if not ok then
    follows[o.name] = nil
    return nil, "dynpb: resty.follow: cannot start the timer: " .. tostring(err)
  end
  return true
end

-- get(name) --> the current schema, or nil, err. Never yields; compiles only
-- when this worker has no schema yet and the shared dict has one.
function _M.get(name)
  local st = follows[name]
  if st then
    local s = st.current
    if s then return s end
    sync(st)
    if st.current then return st.current end
    return nil, "dynpb: resty: no schema for '" .. tostring(name) .. "' yet"
  end
  local s = preloaded[name]
  if s then return s end
  return nil, "dynpb: resty: '" .. tostring(name) .. "' is not followed (call follow{} in init_worker_by_lua)"
end

-- stats(name) --> this worker's view and the fetcher's counters
function _M.stats(name)
  local st = follows[name]
  if not st then return nil, "dynpb: resty: '" .. tostring(name) .. "' is not followed" end
  local info = decode_info(st.dict:get(st.keys.info))
  return {
    pid = ngx.worker.pid(), leader = st.leader, fingerprint = st.current and st.current.fingerprint,
    shared_fingerprint = st.dict:get(st.keys.fp), loads = st.loads, updates = st.updates,
    errors = st.errors, last_error = st.last_error, ticks = st.ticks, published = st.published,
    fetcher = info,            -- pid, version, fetches, not_modified, changes, errors, last_error, ...
  }
end

-- stop(name): this worker stops following (its timer ends at the next tick)
function _M.stop(name)
  local st = follows[name]
  if not st then return false end
  st.stopped = true
  follows[name] = nil
  return true
end

local INIT_TYPES = {
  name = "string", url = "string", snapshot = "string", shared_dict = "string",
  headers = "table", timeout = "number", connect_timeout = "number", max_bytes = "number",
  strategy = "string", cafile = "string", capath = "string", forward_headers = "boolean",
  cert = "string", key = "string", key_password = "string",
}

-- init{ name=, snapshot=, url=, shared_dict=, ... }: in init_by_lua (the
-- master, before the workers fork). Loads the snapshot file, or makes one
-- blocking fetch with dynpb.http (libcurl) falling back to the snapshot,
-- so every worker starts with a schema (inherited, compiled once).
-- Returns schema, source ("registry" | "snapshot") or nil, err; never raises
-- on registry or file failures (nginx still starts).
function _M.init(opts)
  local fname = "dynpb: resty.init"
  check(opts, INIT_TYPES, fname)
  if not opts.url and not opts.snapshot then
    error(fname .. ": give 'url' and/or 'snapshot'", 2)
  end
  local dict
  if opts.shared_dict then
    dict = ngx and ngx.shared and ngx.shared[opts.shared_dict]
    if not dict then error(fname .. ": no lua_shared_dict '" .. opts.shared_dict .. "'", 2) end
  end
  local schema, bytes, source, err
  if opts.url then
    local ok, http = pcall(require, "dynpb.http")
    if not ok then return nil, fname .. ": dynpb.http is not available: " .. tostring(http) end
    local t = recording(http.fetch, http.now)
    local ro = { transport = t }
    for _, key in ipairs({ "url", "headers", "timeout", "connect_timeout", "max_bytes",
                           "strategy", "snapshot", "cafile", "capath", "forward_headers",
                           "cert", "key", "key_password" }) do
      ro[key] = opts[key]
    end
    local rok, reg, rerr = pcall(registry.new, ro)
    if not rok then error((str_gsub(tostring(reg), "^.-dynpb: registry%.new:", fname .. ":")), 2) end
    if reg then
      schema = reg:schema()
      reg:close()
      if t.last_body and dp_fingerprint(t.last_body) == schema.fingerprint then
        bytes, source = t.last_body, "registry"
      end
    else
      err = rerr
    end
  end
  if not bytes and opts.snapshot then
    bytes = read_file(opts.snapshot)
    if bytes then
      local s, lerr = dp_load(bytes)
      if s then schema, source = s, "snapshot"
      else
        bytes = nil
        err = (err and err .. "; " or "") .. "snapshot " .. opts.snapshot .. ": " .. tostring(lerr)
      end
    else
      err = (err and err .. "; " or "") .. "snapshot " .. opts.snapshot .. ": cannot read"
    end
  end
  if not bytes then return nil, fname .. ": no schema for '" .. opts.name .. "': " .. tostring(err) end
  preloaded[opts.name] = schema
  if dict then
    local k = keys(opts.name)
    -- a fetched schema is the registry's current one; a snapshot only fills an empty dict
    -- (after a reload, the dict may already hold something newer)
    if source == "registry" or not dict:get(k.fp) then
      local ok, perr = publish(dict, k, bytes, schema.fingerprint)
      if not ok then return nil, fname .. ": " .. perr end
    end
  end
  return schema, source
end

-- for the tests
_M._parse_url = parse_url

return _M
