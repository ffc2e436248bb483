-- dynpb.http and dynpb.registry against a real HTTP server on 127.0.0.1
-- (spec/support/registry_server.py, started and killed here), file:// URLs,
-- and a scripted transport for the timing policy.
local dynpb = require "dynpb"
local http = require "dynpb.http"
local registry = require "dynpb.registry"

local SCHEMAS = T.root .. "/examples/schemas/"
local V1 = T.read(SCHEMAS .. "domain_v1.pb")
local V2 = T.read(SCHEMAS .. "domain_v2.pb")
local FP1, FP2 = dynpb.fingerprint(V1), dynpb.fingerprint(V2)
local SERVER = T.specdir .. "/support/registry_server.py"
local BASE_PATH = "/v1beta1/namespaces/shop/schemas/domain"
local ST = "shop.v1.ServiceType"
local ABS_SCHEMAS = SCHEMAS:sub(1, 1) == "/" and SCHEMAS or (os.getenv("PWD") .. "/" .. SCHEMAS)

-- ------------------------------------------------------------ the server

-- port: reuse this port; tls: { cert = path, key = path } for HTTPS
local function start_server(port, tls)
  local opts = (port and ("--port " .. port .. " ") or "")
    .. (tls and string.format("--tls '%s' '%s' ", tls.cert, tls.key) or "")
  local cmd = string.format("exec python3 '%s' %s'%sdomain_v1.pb' '%sdomain_v2.pb'",
    SERVER, opts, SCHEMAS, SCHEMAS)
  local pipe = assert(io.popen(cmd, "r"))
  local line = pipe:read("*l")
  local p, pid = (line or ""):match("^(%d+) (%d+)$")
  if not p then
    pipe:close()
    error("registry server did not start: " .. tostring(line))
  end
  local root = (tls and "https" or "http") .. "://127.0.0.1:" .. p
  return { pipe = pipe, port = tonumber(p), pid = pid, root = root, url = root .. BASE_PATH }
end

local function stop_server(s)
  if s and s.pipe then
    os.execute("kill " .. s.pid .. " 2>/dev/null")
    s.pipe:close()             -- waits for the process
    s.pipe = nil
  end
end

local function get(s, path)
  local res, err = http.fetch{ url = s.root .. path, timeout = 5 }
  assert(res and res.status == 200, err or (res and res.body))
  return res.body
end
local function ctl(s, query) get(s, "/_control?" .. query) end
local function count(s, query) return tonumber(get(s, "/_stats?" .. (query or ""))) end
local function last_header(s, name) return get(s, "/_header?name=" .. name) end

-- ---------------------------------------------------------------- helpers

-- calls pred() until it returns a true value or secs pass; returns that value
local function wait_until(secs, pred)
  local deadline = http.now() + secs
  repeat
    local v = pred()
    if v then return v end
    http.sleep(0.005)
  until http.now() > deadline
  return nil
end

local function recorder()
  local r = { updates = {}, errors = {} }
  function r.on_update(schema, previous)
    r.updates[#r.updates + 1] = { schema = schema, previous = previous }
  end
  function r.on_error(err) r.errors[#r.errors + 1] = err end
  return r
end

-- registry.new with the recorder's callbacks and quick test defaults
local function new_reg(opts, rec)
  opts.timeout = opts.timeout or 2
  opts.connect_timeout = opts.connect_timeout or 1
  if opts.jitter == nil then opts.jitter = 0 end
  if rec then
    opts.on_update, opts.on_error = rec.on_update, rec.on_error
  end
  return registry.new(opts)
end

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  assert(os.execute("mkdir -p '" .. p .. "'"))
  return p
end

local function rmdir(p)
  if p and p:match("^/tmp/") then os.execute("rm -rf '" .. p .. "'") end
end

local function write_file(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
end

-- replaces path atomically, so a file:// reader never sees half a file
local function replace_file(path, bytes)
  write_file(path .. ".new", bytes)
  assert(os.rename(path .. ".new", path))
end

local function ls(dir)
  local names, p = {}, io.popen("ls -A '" .. dir .. "'")
  for l in p:lines() do names[#names + 1] = l end
  p:close()
  table.sort(names)
  return names
end

-- ==================================================================== specs

describe("dynpb.http", function()
  local s
  setup(function() s = start_server() end)
  teardown(function() stop_server(s) end)
  before_each(function() get(s, "/_reset") end)

  it("fetches bytes, status and the validator headers", function()
    local res, err = http.fetch{ url = s.url, headers = { ["X-Test"] = "yes" } }
    assert.is_nil(err)
    assert.equal(200, res.status)
    assert.equal(V1, res.body)
    assert.matches('^"%x+"$', res.headers.etag)
    assert.equal("application/octet-stream", res.headers["content-type"])
    assert.equal("yes", last_header(s, "x-test"))
  end)

  it("returns non-2xx responses with Retry-After for the caller to judge", function()
    ctl(s, "mode=503&retry_after=7")
    local res = assert(http.fetch{ url = s.url })
    assert.equal(503, res.status)
    assert.equal("7", res.headers["retry-after"])
  end)

  it("follows at most max_redirects redirects", function()
    local res = assert(http.fetch{ url = s.root .. "/redirect/3" })
    assert.equal(200, res.status)
    assert.equal(V1, res.body)
    assert.equal(s.url, res.url)
    local none, err = http.fetch{ url = s.root .. "/redirect/6" }
    assert.is_nil(none)
    assert.matches("redirect", err:lower())
  end)

  it("reports refused connections, timeouts and cut bodies as nil, err naming the URL", function()
    local probe = start_server()
    local dead = probe.url
    stop_server(probe)
    local res, err = http.fetch{ url = dead, connect_timeout = 1 }
    assert.is_nil(res)
    assert.truthy(err:find(dead, 1, true))
    assert.matches("onnect", err)
    -- libcurl's summary said once, its detail without the summary repeated
    local _, n = err:gsub("Couldn't connect to server", "")
    assert.equal(1, n, err)
    assert.matches("^GET " .. dead:gsub("%p", "%%%0") .. ": Couldn't connect to server %(Failed to connect to "
      .. "127%.0%.0%.1 port %d+[^)]*%)$", err)

    ctl(s, "mode=hang")
    local t0 = http.now()
    res, err = http.fetch{ url = s.url, timeout = 0.3 }
    assert.is_nil(res)
    assert.matches("Timeout", err)
    assert.is_true(http.now() - t0 < 2)

    ctl(s, "mode=truncate")
    res, err = http.fetch{ url = s.url }
    assert.is_nil(res)
    assert.truthy(err:find("GET " .. s.url .. ": ", 1, true))
  end)

  it("enforces max_bytes while receiving, not after", function()
    ctl(s, "mode=huge")              -- a 64 MiB body without Content-Length
    local t0 = http.now()
    local res, err = http.fetch{ url = s.url, max_bytes = 100000 }
    assert.is_nil(res)
    assert.matches("larger than max_bytes %(100000 bytes%)", err)
    assert.is_true(http.now() - t0 < 2)
    ctl(s, "mode=ok")
    res, err = http.fetch{ url = s.url, max_bytes = #V1 - 1 }
    assert.is_nil(res)
    assert.matches("max_bytes", err)
    assert.equal(V1, assert(http.fetch{ url = s.url, max_bytes = #V1 }).body)
  end)

  it("hides the URL's password in messages", function()
    local res, err = http.fetch{ url = "http://me:secret@127.0.0.1:" .. s.port .. "/x", max_redirects = 0 }
    assert.equal(404, res and res.status, err)
    res, err = http.fetch{ url = "ftp://me:secret@127.0.0.1/x" }
    assert.is_nil(res)
    assert.is_nil(err:find("secret", 1, true))
    assert.truthy(err:find("ftp://127.0.0.1/x", 1, true))
  end)

  it("raises on misuse", function()
    assert.has_error(function() http.fetch("x") end)
    assert.has_error(function() http.fetch{} end, "dynpb: http: request needs a 'url'")
    assert.has_error(function() http.fetch{ url = s.url, bogus = 1 } end,
      "dynpb: http: unknown request field 'bogus'")
    assert.has_error(function() http.fetch{ url = s.url, timeout = "5" } end)
    assert.has_error(function() http.fetch{ url = s.url, timeout = 0 } end)
    assert.has_error(function() http.fetch{ url = s.url, headers = { A = "b\r\nX: y" } } end)
    assert.has_error(function() http.fetch{ url = s.url, max_bytes = -1 } end)
  end)

  it("runs a fetch on a thread: poll is nil until the result, which is given once", function()
    ctl(s, "mode=hang&hang=0.3")
    local job = assert(http.start{ url = s.url, timeout = 5 })
    assert.is_nil(job:poll())
    local res, err
    assert(wait_until(5, function()
      res, err = job:poll()
      return res ~= nil
    end))
    assert.is_false(res)                 -- the hang ended with no response
    assert.matches("^GET " .. s.url .. ": ", err)
    assert.has_error(function() job:poll() end)
    ctl(s, "mode=ok")
    job = assert(http.start{ url = s.url })
    res = wait_until(5, function() return job:poll() end)
    assert.equal(V1, res.body)
  end)

  it("cancels a running fetch at once, by cancel() or by collection", function()
    ctl(s, "mode=hang")
    local job = assert(http.start{ url = s.url, timeout = 30 })
    assert(wait_until(5, function() return count(s, "status=hang") == 1 end))
    local t0 = http.now()
    job:cancel()
    local ok, err = job:poll()
    assert.is_false(ok)
    assert.matches("cancelled$", err)
    job = assert(http.start{ url = s.url, timeout = 30 })
    assert(wait_until(5, function() return count(s, "status=hang") == 2 end))
    job = nil
    T.gc()
    assert.is_true(http.now() - t0 < 1)
  end)

  it("reads file:// URLs", function()
    local res = assert(http.fetch{ url = "file://" .. ABS_SCHEMAS .. "domain_v2.pb" })
    assert.equal(200, res.status)
    assert.equal(V2, res.body)
    local none, err = http.fetch{ url = "file:///nonexistent/dynpb.pb" }
    assert.is_nil(none)
    assert.matches("file:///nonexistent/dynpb.pb", err, 1, true)
  end)

  it("verifies TLS peers, and trusts a given CA file", function()
    local have = os.execute("command -v openssl >/dev/null 2>&1")
    if have ~= true and have ~= 0 then               -- 5.1 returns a status number
      pending("openssl is not installed: no certificate to test with")
      return
    end
    local dir = tmpdir()
    local tls = { cert = dir .. "/cert.pem", key = dir .. "/key.pem" }
    local made = os.execute(string.format("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
      .. "-nodes -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout '%s' -out '%s' "
      .. ">/dev/null 2>&1", tls.key, tls.cert))
    assert.truthy(made == true or made == 0, "openssl req failed")
    local ts = start_server(nil, tls)
    local ok, err = pcall(function()
      local res, ferr = http.fetch{ url = ts.url }
      assert.is_nil(res)
      assert.matches("^GET https://127.0.0.1:%d+/.*: SSL peer certificate", ferr)
      res = assert(http.fetch{ url = ts.url, cafile = tls.cert })
      assert.equal(200, res.status)
      assert.equal(V1, res.body)
      local reg = assert(registry.new{ url = ts.url, cafile = tls.cert })
      assert.equal(FP1, reg:schema().fingerprint)
      res, ferr = http.fetch{ url = ts.url, cafile = dir .. "/missing.pem" }
      assert.is_nil(res)
    end)
    stop_server(ts)
    rmdir(dir)
    assert(ok, err)
  end)

  it("has a monotonic clock", function()
    local a = http.now()
    http.sleep(0.02)
    local b = http.now()
    assert.is_true(b - a >= 0.02 and b - a < 1)
  end)
end)

describe("dynpb.registry over HTTP", function()
  local s
  setup(function() s = start_server() end)
  teardown(function() stop_server(s) end)
  before_each(function() get(s, "/_reset") end)

  it("loads the latest version at start and reports it once", function()
    local rec = recorder()
    local reg = assert(new_reg({ url = s.url }, rec))
    local schema = reg:schema()
    assert.equal(FP1, schema.fingerprint)
    assert.equal(1, reg:enum(ST).GO_RIDE)
    assert.is_nil(reg:enum(ST).GO_SEND)
    assert.equal(1, #rec.updates)
    assert.is_true(rawequal(schema, rec.updates[1].schema))
    assert.is_nil(rec.updates[1].previous)
    local st = reg:stats()
    assert.same({ fetches = 1, not_modified = 0, changes = 1, errors = 0, fingerprint = FP1 },
      { fetches = st.fetches, not_modified = st.not_modified, changes = st.changes,
        errors = st.errors, fingerprint = st.fingerprint })
    assert.is_number(st.last_ok_time)
    assert.is_nil(st.last_error)
    reg:close()
  end)

  it("sends If-None-Match and treats 304 as unchanged", function()
    local rec = recorder()
    local reg = assert(new_reg({ url = s.url }, rec))
    local etag = last_header(s, "if-none-match")
    assert.equal("", etag)                            -- the first request is unconditional
    assert.is_false(reg:refresh())
    assert.matches('^"%x+"$', last_header(s, "if-none-match"))
    assert.equal(1, count(s, "status=304"))
    assert.equal(1, reg:stats().not_modified)
    assert.equal(1, #rec.updates)
    ctl(s, "latest=2")                                 -- new bytes, new ETag
    assert.is_true(reg:refresh())
    assert.equal(3, reg:enum(ST).GO_SEND)
  end)

  it("sends If-Modified-Since when the server gives Last-Modified only", function()
    ctl(s, "etag=0&lm=1")
    local reg = assert(new_reg({ url = s.url }))
    assert.is_false(reg:refresh())
    assert.matches("GMT$", last_header(s, "if-modified-since"))
    assert.equal("", last_header(s, "if-none-match"))
    assert.equal(1, count(s, "status=304"))
    assert.equal(1, reg:stats().not_modified)
  end)

  it("takes identical bytes from the cache: no compile, no on_update", function()
    ctl(s, "etag=0")                                  -- no validators: full refetch
    local rec = recorder()
    local reg = assert(new_reg({ url = s.url }, rec))
    local before = dynpb.stats()
    local schema = reg:schema()
    for _ = 1, 3 do assert.is_false(reg:refresh()) end
    local after = dynpb.stats()
    assert.equal(before.hits + 3, after.hits)
    assert.equal(before.misses, after.misses)
    assert.equal(4, count(s, "status=200"))
    assert.is_true(rawequal(schema, reg:schema()))
    assert.equal(1, #rec.updates)
    assert.equal(1, reg:stats().changes)
    assert.equal(0, reg:stats().not_modified)
  end)

  it("picks up a new version exactly once, refresh or poll", function()
    local rec = recorder()
    local reg = assert(new_reg({ url = s.url, refresh = 0.02 }, rec))
    local v1 = reg:schema()
    ctl(s, "latest=2")
    local changed = wait_until(5, function() return reg:poll() end)
    assert.is_true(changed)
    assert.equal(2, #rec.updates)
    assert.equal(FP2, rec.updates[2].schema.fingerprint)
    assert.is_true(rawequal(v1, rec.updates[2].previous))
    assert.equal(3, reg:enum(ST).GO_SEND)
    local polls = 0
    wait_until(0.2, function() reg:poll(); polls = polls + 1 end)
    assert.is_false(reg:refresh())
    assert.equal(2, #rec.updates)
    assert.equal(2, reg:stats().changes)
    assert.is_true(reg:stats().fetches >= 3)
    assert.equal(FP2, reg:stats().fingerprint)
  end)

  it("does not fetch before refresh seconds have passed", function()
    local reg = assert(new_reg({ url = s.url, refresh = 30 }))
    for _ = 1, 100 do assert.is_false(reg:poll()) end
    assert.equal(1, count(s))
    assert.equal(1, reg:stats().fetches)
  end)

  local FAULTS = {
    { "HTTP 500", "mode=500", "HTTP 500$" },
    { "HTTP 404", "mode=404", "HTTP 404$" },
    { "HTTP 429", "mode=429&retry_after=0", "HTTP 429 %(retry after 0s%)$" },
    { "HTTP 503", "mode=503&retry_after=0", "HTTP 503 %(retry after 0s%)$" },
    { "a response slower than timeout", "mode=hang", "Timeout was reached" },
    { "a body cut short", "mode=truncate", "partial file" },
    { "bytes that are not a descriptor set", "mode=garbage", "not a valid descriptor set" },
    { "an empty body", "mode=empty", "not a valid descriptor set" },
    { "a body over max_bytes", "mode=huge", "larger than max_bytes" },
  }
  for _, f in ipairs(FAULTS) do
    local name, query, pattern = f[1], f[2], f[3]
    it("keeps the schema on " .. name .. ", reports it, then recovers", function()
      local rec = recorder()
      local reg = assert(new_reg({ url = s.url, timeout = 0.5, refresh = 0.02,
                                   max_bytes = 1000000 }, rec))
      local good = reg:schema()
      ctl(s, query)
      local t0 = http.now()
      local ok, err = reg:refresh()
      assert.is_true(http.now() - t0 < 3)
      assert.is_nil(ok)
      assert.matches(pattern, err)
      assert.truthy(err:find(s.url, 1, true), err)
      assert.is_true(rawequal(good, reg:schema()))
      assert.equal(1, reg:enum(ST).GO_RIDE)
      assert.same({ err }, rec.errors)
      local st = reg:stats()
      assert.equal(1, st.errors)
      assert.equal(err, st.last_error)
      assert.equal(2, st.fetches)
      assert.equal(FP1, st.fingerprint)
      -- a poll retries (the backoff is short here) and keeps failing quietly
      assert.truthy(wait_until(3, function() reg:poll(); return #rec.errors >= 2 end))
      assert.equal(2, reg:stats().errors)
      assert.is_true(rawequal(good, reg:schema()))
      -- recovery: the next due poll adopts v2
      ctl(s, "mode=ok&latest=2")
      assert.is_true(wait_until(5, function() return reg:poll() end))
      assert.equal(3, reg:enum(ST).GO_SEND)
      assert.equal(2, #rec.updates)
      reg:close()
    end)
  end

  it("keeps the schema when the connection is refused, recovers when the registry is back", function()
    local own = start_server()
    local port = own.port
    local rec = recorder()
    local ok, err = pcall(function()
      local reg = assert(new_reg({ url = own.url, refresh = 0.02 }, rec))
      local good = reg:schema()
      stop_server(own)
      local r, e = reg:refresh()
      assert.is_nil(r)
      assert.matches("onnect", e)
      assert.truthy(e:find(own.url, 1, true))
      assert.is_true(rawequal(good, reg:schema()))
      assert.equal(1, reg:stats().errors)
      own = start_server(port)
      get(own, "/_control?latest=2")
      assert.is_true(wait_until(5, function() return reg:poll() end))
      assert.equal(FP2, reg:schema().fingerprint)
      assert.equal(2, #rec.updates)
    end)
    stop_server(own)
    assert(ok, err)
  end)

  it("honours Retry-After on 429 before the next poll fetches", function()
    local reg = assert(new_reg({ url = s.url, refresh = 0.02 }))
    ctl(s, "mode=429&retry_after=1")
    local ok, err = reg:refresh()
    assert.is_nil(ok)
    assert.matches("retry after 1s", err)
    local n = count(s)
    local t0 = http.now()
    ctl(s, "mode=ok&latest=2")
    assert.is_true(wait_until(3, function() return reg:poll() end))
    assert.is_true(http.now() - t0 >= 0.9)
    assert.equal(n + 1, count(s))
  end)

  it("follows Stencil's /versions listing and fetches only a newer version", function()
    local rec = recorder()
    local reg = assert(new_reg({ url = s.url, strategy = "versions" }, rec))
    assert.equal(FP1, reg:schema().fingerprint)
    assert.equal(1, count(s, "path=" .. BASE_PATH .. "/versions/1"))
    assert.equal(0, count(s, "path=" .. BASE_PATH))
    assert.is_false(reg:refresh())                     -- listing answered 304
    assert.is_false(reg:refresh())
    assert.equal(2, reg:stats().not_modified)
    assert.equal(1, count(s, "path=" .. BASE_PATH .. "/versions/1"))
    ctl(s, "etag=0")
    assert.is_false(reg:refresh())                     -- listing unchanged: max is still 1
    assert.equal(3, reg:stats().not_modified)
    ctl(s, "latest=2")
    assert.is_true(reg:refresh())
    assert.equal(1, count(s, "path=" .. BASE_PATH .. "/versions/2"))
    assert.equal(3, reg:enum(ST).GO_SEND)
    assert.is_false(reg:refresh())
    assert.equal(1, count(s, "path=" .. BASE_PATH .. "/versions/2"))
    assert.equal(2, #rec.updates)
  end)

  it("keeps the schema on a bad /versions listing or a failing version fetch", function()
    local rec = recorder()
    local reg = assert(new_reg({ url = s.url .. "/", strategy = "versions" }, rec))
    ctl(s, "etag=0&listing=" .. ("{\"versions\": 3"):gsub("[^%w]", function(c)
      return string.format("%%%02X", c:byte()) end))
    local ok, err = reg:refresh()
    assert.is_nil(ok)
    assert.matches("bad versions listing", err)
    ctl(s, "listing=%7B%22versions%22%3A%5B%5D%7D")    -- {"versions":[]}
    ok, err = reg:refresh()
    assert.is_nil(ok)
    assert.matches("no versions", err)
    ctl(s, "listing=%7B%22versions%22%3A%5B1%2C5%5D%7D")  -- {"versions":[1,5]}: 5 is a 404
    ok, err = reg:refresh()
    assert.is_nil(ok)
    assert.matches("/versions/5: HTTP 404", err)
    assert.equal(FP1, reg:schema().fingerprint)
    assert.equal(3, #rec.errors)
    assert.equal(1, #rec.updates)
  end)

  it("reads the JSON listing strictly enough", function()
    local nv = registry._newest_version
    assert.equal(3, nv('{"versions":[1,3,2]}'))
    assert.equal(12, nv(' { "name" : "x\\"y", "versions" : [ 2 , "12" ], "n": null, "o": {"a":[true,false]} } '))
    assert.equal(7, nv('{"v\\u0065rsions":[7]}'))
    assert.is_nil(nv('{"versions":[1.5]}'))
    assert.is_nil(nv('{"versions":[-1]}'))
    assert.is_nil(nv('{"versions":[]}'))
    assert.is_nil(nv('{"versions":[1]} x'))
    assert.is_nil(nv('{"versions":[1'))
    assert.is_nil(nv('[1,2]'))
    assert.is_nil(nv(string.rep("[", 100) .. string.rep("]", 100)))
    assert.is_nil(nv(""))
  end)

  it("never blocks the caller in background mode", function()
    local rec = recorder()
    local reg = assert(new_reg({ url = s.url, background = true, refresh = 0.02,
                                 timeout = 0.6 }, rec))
    assert.equal(FP1, reg:schema().fingerprint)      -- the first fetch is synchronous
    ctl(s, "mode=hang")
    local iterations, slowest = 0, 0
    local stop = http.now() + 1.2
    while http.now() < stop do
      local t0 = http.now()
      reg:poll()
      local C = reg:enum(ST)                         -- the "request" this loop serves
      assert(C.GO_RIDE == 1)
      slowest = math.max(slowest, http.now() - t0)
      iterations = iterations + 1
    end
    assert.is_true(count(s, "status=hang") >= 1)     -- a fetch was hanging meanwhile
    assert.is_true(iterations > 1000, "iterations: " .. iterations)
    assert.is_true(slowest < 0.1, "slowest poll: " .. slowest)
    assert.is_true(#rec.errors >= 1)                 -- the hung fetch timed out
    assert.matches("Timeout", rec.errors[1])
    ctl(s, "mode=ok&latest=2")
    assert.is_true(wait_until(5, function() return reg:poll() end))
    assert.equal(3, reg:enum(ST).GO_SEND)
    assert.equal(2, #rec.updates)
    -- close() while a fetch hangs returns at once
    ctl(s, "mode=hang")
    assert(wait_until(5, function() reg:poll(); return count(s, "status=hang") >= 2 end))
    local t0 = http.now()
    reg:close()
    assert.is_true(http.now() - t0 < 0.5)
    local ok, err = reg:poll()
    assert.is_nil(ok)
    assert.matches("closed", err)
    assert.equal(3, reg:enum(ST).GO_SEND)
  end)

  it("runs the versions strategy in background mode too", function()
    local rec = recorder()
    local reg = assert(new_reg({ url = s.url, strategy = "versions", background = true,
                                 refresh = 0.02 }, rec))
    ctl(s, "latest=2")
    assert.is_true(wait_until(5, function() return reg:poll() end))
    assert.equal(FP2, reg:schema().fingerprint)
    assert.equal(1, count(s, "path=" .. BASE_PATH .. "/versions/2"))
    assert.equal(2, #rec.updates)
  end)

  describe("snapshot", function()
    local dir
    before_each(function() dir = tmpdir() end)
    after_each(function() rmdir(dir) end)

    it("is written atomically after each change", function()
      local snap = dir .. "/domain.pb"
      local reg = assert(new_reg({ url = s.url, snapshot = snap }))
      assert.equal(V1, T.read(snap))
      ctl(s, "latest=2")
      assert.is_true(reg:refresh())
      assert.equal(V2, T.read(snap))
      assert.same({ "domain.pb" }, ls(dir))          -- no temp file left behind
      ctl(s, "mode=garbage")
      assert.is_nil(reg:refresh())
      assert.equal(V2, T.read(snap))                  -- a bad fetch never reaches it
    end)

    it("gives the schema at start while the registry is down", function()
      local snap = dir .. "/domain.pb"
      write_file(snap, V2)
      ctl(s, "mode=503&retry_after=0")
      local rec = recorder()
      local reg = assert(new_reg({ url = s.url, snapshot = snap, refresh = 0.02 }, rec))
      assert.equal(FP2, reg:schema().fingerprint)
      assert.equal(3, reg:enum(ST).GO_SEND)
      assert.equal(1, #rec.errors)
      assert.matches("HTTP 503", rec.errors[1])
      local st = reg:stats()
      assert.equal(1, st.errors)
      assert.is_nil(st.last_ok_time)
      assert.equal(1, #rec.updates)
      -- the registry comes back with v1: that is the truth now
      ctl(s, "mode=ok")
      assert.is_true(wait_until(5, function() return reg:poll() end))
      assert.equal(FP1, reg:schema().fingerprint)
      assert.equal(V1, T.read(snap))
    end)

    it("is ignored when corrupt, with an error, and never loaded", function()
      local snap = dir .. "/domain.pb"
      write_file(snap, V2:sub(1, 100))
      ctl(s, "mode=500")
      local rec = recorder()
      local reg, err = new_reg({ url = s.url, snapshot = snap }, rec)
      assert.is_nil(reg)
      assert.matches("HTTP 500", err)
      assert.matches("snapshot .* ignored", err)
      assert.equal(2, #rec.errors)
      assert.matches("^dynpb: registry: snapshot '" .. snap:gsub("%p", "%%%0") .. "' ignored: not a valid descriptor set: dynpb: load: ", rec.errors[2])
      assert.equal(0, #rec.updates)
      -- with the registry up, the corrupt file is replaced by good bytes
      ctl(s, "mode=ok")
      reg = assert(new_reg({ url = s.url, snapshot = snap }, rec))
      assert.equal(V1, T.read(snap))
    end)

    it("fails new() when neither the registry nor a snapshot has a schema", function()
      ctl(s, "mode=404")
      local reg, err = new_reg({ url = s.url, snapshot = dir .. "/missing.pb" })
      assert.is_nil(reg)
      -- one prefix; the snapshot's path once
      assert.equal("dynpb: registry: no schema: GET " .. s.url .. ": HTTP 404; cannot read snapshot '"
        .. dir .. "/missing.pb': No such file or directory", err)
    end)

    it("reports an unwritable snapshot but keeps the new schema", function()
      local rec = recorder()
      local reg = assert(new_reg({ url = s.url, snapshot = dir .. "/no/such/dir/x.pb" }, rec))
      assert.equal(FP1, reg:schema().fingerprint)
      assert.equal(1, #rec.errors)
      assert.equal("dynpb: registry: cannot write snapshot '" .. dir .. "/no/such/dir/x.pb': "
        .. "create the temp file: No such file or directory", rec.errors[1])
    end)
  end)

  it("fails new() on a body over max_bytes", function()
    local reg, err = new_reg({ url = s.url, max_bytes = 100 })
    assert.is_nil(reg)
    assert.matches("larger than max_bytes %(100 bytes%)", err)
  end)

  it("forwards headers and never lets conditionals replace the caller's", function()
    local reg = assert(new_reg({ url = s.url, headers = { Authorization = "Bearer t0k" } }))
    assert.equal("Bearer t0k", last_header(s, "authorization"))
    reg:refresh()
    assert.equal("Bearer t0k", last_header(s, "authorization"))
  end)

  it("forwards decode and encode to the current schema", function()
    local reg = assert(new_reg({ url = s.url }))
    if not reg:schema().decode then
      assert.has_error(function() reg:decode("shop.v1.Booking", "") end)
      return
    end
    local bytes = assert(reg:encode("shop.v1.Booking", { id = "b1", service = 2 }))
    local msg = assert(reg:decode("shop.v1.Booking", bytes))
    assert.equal("b1", msg.id)
    assert.is_true(msg.service == "GO_FOOD" or msg.service == 2, tostring(msg.service))
  end)

  it("forwards to_json and from_json to the current schema", function()
    local reg = assert(new_reg({ url = s.url }))
    if not reg:schema().to_json then return end
    local bytes = assert(reg:from_json("shop.v1.Booking", '{"id": "b1"}'))
    assert.equal(bytes, reg:encode("shop.v1.Booking", { id = "b1" }))
    assert.equal('{"id":"b1"}', reg:to_json("shop.v1.Booking", bytes))
    local _, err = reg:from_json("shop.v1.Booking", '{"nope": 1}')
    assert.matches("no field named 'nope'", err)
    assert.has_error(function() reg:to_json("shop.v1.Booking", bytes, { bogus = true }) end)
  end)
end)

describe("dynpb.registry over file://", function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() rmdir(dir) end)

  it("follows a file that is replaced", function()
    local path = dir .. "/set.pb"
    write_file(path, V1)
    local rec = recorder()
    local reg = assert(new_reg({ url = "file://" .. path, refresh = 0.02 }, rec))
    assert.is_nil(reg:enum(ST).GO_SEND)
    local hits = dynpb.stats().hits
    assert.is_false(reg:refresh())
    assert.equal(hits + 1, dynpb.stats().hits)
    replace_file(path, V2)
    assert.is_true(wait_until(5, function() return reg:poll() end))
    assert.equal(3, reg:enum(ST).GO_SEND)
    os.remove(path)
    local ok, err = reg:refresh()
    assert.is_nil(ok)
    assert.truthy(err:find("file://" .. path, 1, true))
    assert.equal(3, reg:enum(ST).GO_SEND)
    assert.equal(2, #rec.updates)
    assert.equal(1, #rec.errors)
  end)
end)

describe("dynpb.registry policy (scripted transport, fake clock)", function()
  -- a transport whose responses are scripted: a table is a response, a
  -- string a transport error
  local function scripted(script)
    local t = { clock = 1000, calls = 0, requests = {} }
    function t.now() return t.clock end
    function t.fetch(req)
      t.calls = t.calls + 1
      t.requests[#t.requests + 1] = req
      local r = table.remove(script, 1) or "script exhausted"
      if type(r) == "string" then return nil, r end
      return r
    end
    return t
  end
  local function ok(body, headers) return { status = 200, body = body, headers = headers or {} } end

  it("backs off 1, 2, 4, 8 s, capped at refresh, and resumes refresh after success", function()
    local script = { ok(V1) }
    local t = scripted(script)
    local reg = assert(registry.new{ url = "http://registry.test/x", transport = t,
                                     refresh = 10, jitter = 0 })
    for _ = 1, 6 do script[#script + 1] = "GET http://registry.test/x: Could not resolve host" end
    script[#script + 1] = ok(V2)
    local function at(clock) t.clock = clock; return reg:poll() end
    assert.is_false(at(1009.99))
    assert.equal(1, t.calls)
    local expect = { 1010, 1011, 1013, 1017, 1025, 1035, 1045 }   -- failure k at expect[k]
    for k = 1, 6 do
      assert.is_false(at(expect[k] - 0.01))
      assert.equal(k, t.calls)
      local r, err = at(expect[k])
      assert.is_nil(r)
      assert.matches("Could not resolve host", err)
      assert.equal(k + 1, t.calls)
    end
    assert.equal(FP1, reg:schema().fingerprint)       -- DNS failures kept it
    assert.equal(6, reg:stats().errors)
    assert.is_true(at(1045))
    assert.is_false(at(1054.99))
    assert.equal(8, t.calls)
  end)

  it("jitters refresh by +/- jitter and backoff downwards only", function()
    local script = {}
    local t = scripted(script)
    script[1] = ok(V1)
    local reg = assert(registry.new{ url = "http://registry.test/x", transport = t,
                                     refresh = 100, jitter = 0.5 })
    -- steps the fake clock until the registry fetches; returns the delay
    local function next_delay(response)
      local start, calls = t.clock, t.calls
      script[1] = response
      repeat
        t.clock = t.clock + 0.25
        reg:poll()
      until t.calls > calls or t.clock > start + 1000
      return t.clock - start
    end
    local delays = {}
    for i = 1, 8 do
      delays[i] = next_delay(ok(V1))
      assert.is_true(delays[i] >= 50 and delays[i] <= 150.25, "refresh after " .. delays[i])
    end
    table.sort(delays)
    assert.is_true(delays[8] - delays[1] > 1, "no jitter: " .. delays[1] .. " .. " .. delays[8])
    -- after failure k the delay is in [d/2, d], d = min(100, 2^(k-1))
    next_delay("down")
    for k = 1, 8 do
      local d = math.min(100, 2 ^ (k - 1))
      local got = next_delay("down")
      assert.is_true(got >= d / 2 and got <= d + 0.25, "failure " .. k .. ": " .. got)
    end
  end)

  it("honours Retry-After as seconds or HTTP-date, clamped to an hour", function()
    local script = { ok(V1), { status = 503, body = "", headers = { ["retry-after"] = "120" } } }
    local t = scripted(script)
    local reg = assert(registry.new{ url = "http://registry.test/x", transport = t,
                                     refresh = 10, jitter = 0 })
    local r, err = reg:refresh()
    assert.is_nil(r)
    assert.matches("HTTP 503 %(retry after 120s%)", err)
    t.clock = 1119.9
    assert.is_false(reg:poll())
    assert.equal(2, t.calls)
    script[1] = ok(V1)
    t.clock = 1120
    assert.is_false(reg:poll())
    assert.equal(3, t.calls)

    local ra = registry._retry_after_seconds
    local now = os.time()
    assert.equal(30, ra(os.date("!%a, %d %b %Y %H:%M:%S GMT", now + 30), now))
    assert.equal(0, ra(os.date("!%a, %d %b %Y %H:%M:%S GMT", now - 30), now))
    assert.equal(3600, ra("86400", now))
    assert.equal(0, ra(" 0 ", now))
    assert.is_nil(ra("soon", now))
    assert.is_nil(ra(nil, now))
  end)

  it("plugs in an asynchronous transport for background mode", function()
    local pending = {}
    local t = scripted({ ok(V1) })
    t.clock = 0
    function t.start(req)
      local job = { req = req }
      function job:poll() return self.result, self.err end
      function job:cancel() self.cancelled = true end
      pending[#pending + 1] = job
      return job
    end
    local rec = recorder()
    local reg = assert(registry.new{ url = "http://registry.test/x", transport = t,
                                     refresh = 5, jitter = 0, background = true,
                                     on_update = rec.on_update })
    t.clock = 5
    assert.is_false(reg:poll())                      -- started, in flight
    assert.equal(1, #pending)
    assert.is_false(reg:poll())                      -- still in flight: nothing new started
    assert.equal(1, #pending)
    pending[1].result = ok(V2)
    assert.is_true(reg:poll())
    assert.equal(FP2, reg:schema().fingerprint)
    t.clock = 10
    assert.is_false(reg:poll())
    pending[2].result, pending[2].err = false, "GET http://registry.test/x: timed out"
    local r, err = reg:poll()
    assert.is_nil(r)
    assert.matches("timed out", err)
    assert.equal(FP2, reg:schema().fingerprint)
    t.clock = 12
    assert.is_false(reg:poll())
    reg:close()
    assert.is_true(pending[3].cancelled)
    assert.equal(2, #rec.updates)
  end)
end)

describe("registry.new misuse", function()
  local t = { fetch = function() return { status = 200, body = V1, headers = {} } end }

  it("raises on unknown options and wrong types, at the caller", function()
    local function msg(opts)
      local ok, err = pcall(registry.new, opts)
      assert.is_false(ok)
      return err
    end
    assert.matches("unknown option 'refersh'", msg{ url = "http://x/", transport = t, refersh = 1 })
    assert.matches("option 'timeout' must be a number, got string",
      msg{ url = "http://x/", transport = t, timeout = "5" })
    assert.matches("option 'url' is required", msg{ transport = t })
    assert.matches("'strategy' must be", msg{ url = "http://x/", transport = t, strategy = "poll" })
    assert.matches("'jitter' must be", msg{ url = "http://x/", transport = t, jitter = 2 })
    assert.matches("'refresh' must be > 0", msg{ url = "http://x/", transport = t, refresh = 0 })
    assert.matches("'max_bytes' must be", msg{ url = "http://x/", transport = t, max_bytes = 1.5 })
    assert.matches("needs a transport with start",
      msg{ url = "http://x/", transport = t, background = true })
    assert.matches("must be a table", msg("http://x/"))
    -- error level 2: the message points at this file
    local _, err = pcall(function() registry.new{ url = "http://x/", transport = t, bogus = true } end)
    assert.matches("registry_spec.lua:%d+: ", err)
  end)

  it("accepts a minimal transport without now() or start()", function()
    local reg = assert(registry.new{ url = "http://x/", transport = t })
    assert.equal(FP1, reg:schema().fingerprint)
    assert.is_false(reg:poll())
  end)
end)
