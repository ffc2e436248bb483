-- dynpb.http and dynpb.registry: TLS end to end (a throwaway CA made by
-- spec/support/mkcerts.sh with openssl, the registry stand-in over HTTPS),
-- credentials kept to their host across redirects (servers on 127.0.0.1
-- and 127.0.0.2), and job:cancel() during a slow DNS lookup (an
-- LD_PRELOAD getaddrinfo shim, spec/support/slowdns.c).
local dynpb = require "dynpb"
local http = require "dynpb.http"
local registry = require "dynpb.registry"

local SCHEMAS = T.root .. "/examples/schemas/"
local V1 = T.read(SCHEMAS .. "domain_v1.pb")
local FP1 = dynpb.fingerprint(V1)
local FP2 = dynpb.fingerprint(T.read(SCHEMAS .. "domain_v2.pb"))
local SERVER = T.specdir .. "/support/registry_server.py"
local BASE_PATH = "/v1beta1/namespaces/shop/schemas/domain"

local function sh_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
local function run(cmd)
  local ok, _, code = os.execute(cmd)
  if type(ok) == "number" then return ok == 0 end
  return ok == true, code
end

local function url_encode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

-- o: { host =, port =, tls = { cert =, key = }, client_ca = }
local function start_server(o)
  o = o or {}
  local args = (o.host and ("--host " .. o.host .. " ") or "")
    .. (o.port and ("--port " .. o.port .. " ") or "")
    .. (o.tls and string.format("--tls %s %s ", sh_quote(o.tls.cert), sh_quote(o.tls.key)) or "")
    .. (o.client_ca and ("--client-ca " .. sh_quote(o.client_ca) .. " ") or "")
  local pipe = assert(io.popen(string.format("exec python3 %s %s%s %s", sh_quote(SERVER), args,
    sh_quote(SCHEMAS .. "domain_v1.pb"), sh_quote(SCHEMAS .. "domain_v2.pb")), "r"))
  local line = pipe:read("*l")
  local p, pid = (line or ""):match("^(%d+) (%d+)$")
  if not p then
    pipe:close()
    error("registry server did not start: " .. tostring(line))
  end
  local root = (o.tls and "https" or "http") .. "://" .. (o.host or "127.0.0.1") .. ":" .. p
  return { pipe = pipe, port = tonumber(p), pid = pid, root = root, url = root .. BASE_PATH }
end

local function stop_server(s)
  if s and s.pipe then
    os.execute("kill " .. s.pid .. " 2>/dev/null")
    s.pipe:close()
    s.pipe = nil
  end
end

-- a control request to a plain-HTTP server
local function get(s, path, cafile)
  local res, err = http.fetch{ url = s.root .. path, timeout = 5, cafile = cafile }
  assert(res and res.status == 200, err or (res and res.body))
  return res.body
end
local function last_header(s, name, cafile) return get(s, "/_header?name=" .. name, cafile) end

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  assert(run("mkdir -p " .. sh_quote(p)))
  return p
end
local function rmdir(p)
  if p and p:match("^/tmp/") then os.execute("rm -rf " .. sh_quote(p)) end
end

local function plain(s) return (s:gsub("%p", "%%%0")) end

-- what libcurl reports when the server wants a client certificate and gets none
local NO_CLIENT_CERT = { "alert certificate required", "Failed sending data to the peer",
                         "Recv failure: Connection reset by peer" }

-- =================================================================== TLS

describe("TLS with a throwaway CA", function()
  local dir, c
  setup(function()
    dir = tmpdir()
    assert(run("sh " .. sh_quote(T.specdir .. "/support/mkcerts.sh") .. " " .. sh_quote(dir)),
      "spec/support/mkcerts.sh failed (is openssl installed?)")
    c = {}
    for _, n in ipairs({ "ca", "server", "other", "expired", "unknown", "client" }) do
      c[n] = { cert = dir .. "/" .. n .. ".pem", key = dir .. "/" .. n .. ".key" }
    end
    c.client_enc = dir .. "/client-enc.key"
    c.pass = T.read(dir .. "/client.pass"):gsub("%s+$", "")
  end)
  teardown(function() rmdir(dir) end)

  describe("dynpb.http", function()
    -- each row: the server's certificate, the request's TLS fields, the
    -- expected outcome (true: 200 with V1; a pattern: the error's reason)
    local ROWS = {
      { "an unknown CA without cafile", "server", {}, "SSL peer certificate or SSH remote key was not OK" },
      { "the test CA with cafile", "server", { cafile = "ca" }, true },
      { "a self-signed (unknown) certificate, cafile given", "unknown", { cafile = "ca" }, "self.signed certificate" },
      { "a certificate for another host name", "other", { cafile = "ca" }, "no alternative certificate subject name matches target host name '127.0.0.1'" },
      { "an expired certificate", "expired", { cafile = "ca" }, "certificate has expired" },
      { "a missing cafile", "server", { cafile = "missing" }, "error setting certificate file" },
    }
    for _, row in ipairs(ROWS) do
      it(row[1] .. ": " .. (row[4] == true and "accepted" or "refused"), function()
        local s = start_server{ tls = c[row[2]] }
        finally(function() stop_server(s) end)
        local req = { url = s.url, timeout = 5 }
        for k, v in pairs(row[3]) do req[k] = v == "missing" and dir .. "/missing.pem" or c[v].cert end
        local res, err = http.fetch(req)
        if row[4] == true then
          assert.equal(200, res and res.status, err)
          assert.equal(V1, res.body)
        else
          assert.is_nil(res)
          assert.matches("^GET " .. plain(s.url) .. ": ", err)
          assert.truthy(err:find(row[4]) or err:find(row[4], 1, true), err)
        end
      end)
    end

    it("does mutual TLS with cert/key, and an encrypted key with key_password", function()
      local s = start_server{ tls = c.server, client_ca = c.ca.cert }
      finally(function() stop_server(s) end)
      local base = { url = s.url, timeout = 5, cafile = c.ca.cert }
      local function with(t)
        local r = {}
        for k, v in pairs(base) do r[k] = v end
        for k, v in pairs(t) do r[k] = v end
        return r
      end
      local res, err = http.fetch(with{ cert = c.client.cert, key = c.client.key })
      assert.equal(200, res and res.status, err)
      assert.equal(V1, res.body)
      res, err = http.fetch(with{ cert = c.client.cert, key = c.client_enc, key_password = c.pass })
      assert.equal(200, res and res.status, err)
      -- a wrong passphrase, and no client certificate at all: refused
      res, err = http.fetch(with{ cert = c.client.cert, key = c.client_enc, key_password = "wrong" })
      assert.is_nil(res)
      assert.matches("^GET " .. plain(s.url) .. ": ", err)
      assert.matches("key", err)
      res, err = http.fetch(base)
      assert.is_nil(res)
      assert.matches("^GET " .. plain(s.url) .. ": ", err)
      -- TLS 1.3: the client's handshake is over when the server checks for a
      -- certificate, so libcurl sees the server's alert, or its hang-up
      assert.truthy(err:find(NO_CLIENT_CERT[1], 1, true) or err:find(NO_CLIENT_CERT[2], 1, true)
        or err:find(NO_CLIENT_CERT[3], 1, true), err)
    end)
  end)

  describe("dynpb.registry", function()
    -- the registry follows a good server; the server is replaced on the same
    -- port by one with a bad certificate: every refusal keeps the last good
    -- schema and names the URL and the reason
    local REFUSALS = {
      { "an unknown CA", { tls = "unknown" }, "self.signed certificate" },
      { "another host name", { tls = "other" }, "no alternative certificate subject name matches" },
      { "an expired certificate", { tls = "expired" }, "certificate has expired" },
      { "a server that wants a client certificate", { tls = "server", client_ca = true },
        NO_CLIENT_CERT },
    }
    for _, row in ipairs(REFUSALS) do
      it("keeps the last good schema when the server presents " .. row[1], function()
        local s = start_server{ tls = c.server }
        local errors = {}
        local reg, err = registry.new{ url = s.url, cafile = c.ca.cert, timeout = 3,
          on_error = function(e) errors[#errors + 1] = e end }
        assert.truthy(reg, err)
        assert.equal(FP1, reg:schema().fingerprint)
        stop_server(s)
        s = start_server{ port = s.port, tls = c[row[2].tls],
                          client_ca = row[2].client_ca and c.ca.cert or nil }
        finally(function() stop_server(s) end)
        local ok, rerr = reg:refresh()
        assert.is_nil(ok)
        assert.matches("^GET " .. plain(s.url) .. ": ", rerr)
        local found = false
        for _, pat in ipairs(type(row[3]) == "table" and row[3] or { row[3] }) do
          found = found or rerr:find(pat) ~= nil or rerr:find(pat, 1, true) ~= nil
        end
        assert.truthy(found, rerr)
        assert.equal(FP1, reg:schema().fingerprint)
        assert.same({ rerr }, errors)
        assert.equal(rerr, reg:stats().last_error)
      end)
    end

    it("does mutual TLS with cert, key and key_password", function()
      local s = start_server{ tls = c.server, client_ca = c.ca.cert }
      finally(function() stop_server(s) end)
      local reg, err = registry.new{ url = s.url, cafile = c.ca.cert, cert = c.client.cert,
        key = c.client_enc, key_password = c.pass, timeout = 3 }
      assert.truthy(reg, err)
      assert.equal(FP1, reg:schema().fingerprint)
      local res = assert(http.fetch{ url = s.root .. "/_control?latest=2", cafile = c.ca.cert,
        cert = c.client.cert, key = c.client.key })
      assert.equal(200, res.status)
      assert.is_true(reg:refresh())
      assert.equal(FP2, reg:schema().fingerprint)
    end)
  end)
end)

-- ============================================================ redirects

describe("redirects to another origin", function()
  local a, b, a2          -- 127.0.0.1:pa, 127.0.0.2:pb, 127.0.0.1:pa2 (another port)
  setup(function()
    a = start_server()
    b = start_server{ host = "127.0.0.2" }
    a2 = start_server()
  end)
  teardown(function() stop_server(a); stop_server(b); stop_server(a2) end)
  before_each(function() get(a, "/_reset"); get(b, "/_reset"); get(a2, "/_reset") end)

  local HEADERS = { ["X-Api-Key"] = "k3y", Authorization = "Bearer t0k", Cookie = "c=1" }
  local function via(from, to) return from.root .. "/goto?to=" .. url_encode(to.url) end
  local function seen(s)
    return { last_header(s, "x-api-key"), last_header(s, "authorization"), last_header(s, "cookie") }
  end

  it("dynpb.http sends custom headers only to the request's scheme, host and port", function()
    -- same origin: the headers follow
    local res, err = http.fetch{ url = a.root .. "/redirect/1", headers = HEADERS }
    assert.equal(200, res and res.status, err)
    assert.same({ "k3y", "Bearer t0k", "c=1" }, seen(a))
    -- another host (127.0.0.2), another port: none of them
    for _, to in ipairs({ b, a2 }) do
      res, err = http.fetch{ url = via(a, to), headers = HEADERS }
      assert.equal(200, res and res.status, err)
      assert.equal(V1, res.body)
      assert.equal(to.url, res.url)
      assert.same({ "k3y", "Bearer t0k", "c=1" }, seen(a))      -- the first hop had them
      assert.same({ "", "", "" }, seen(to))
    end
    -- the origin is that of the request URL: from b, a gets none
    res, err = http.fetch{ url = b.root .. "/goto?to=" .. url_encode(a.root .. "/redirect/1"),
                           headers = { ["X-Api-Key"] = "k3y" } }
    assert.equal(200, res and res.status, err)
    assert.equal("k3y", last_header(b, "x-api-key"))      -- b is the origin here
    assert.equal("", last_header(a, "x-api-key"))
    -- opt in: forward_headers = true
    res, err = http.fetch{ url = via(a, b), headers = HEADERS, forward_headers = true }
    assert.equal(200, res and res.status, err)
    assert.same({ "k3y", "Bearer t0k", "c=1" }, seen(b))
  end)

  it("dynpb.http sends the URL's user:password only to its origin", function()
    local url = a.root:gsub("^http://", "http://me:s3cret@") .. "/goto?to=" .. url_encode(b.url)
    local res, err = http.fetch{ url = url }
    assert.equal(200, res and res.status, err)
    assert.matches("^Basic ", last_header(a, "authorization"))
    assert.equal("", last_header(b, "authorization"))
    url = a.root:gsub("^http://", "http://me:s3cret@") .. "/redirect/1"
    res, err = http.fetch{ url = url }
    assert.equal(200, res and res.status, err)
    assert.matches("^Basic ", last_header(a, "authorization"))
  end)

  it("dynpb.http refuses other schemes, and too many hops, naming the URL", function()
    local res, err = http.fetch{ url = a.root .. "/goto?to=" .. url_encode("file:///etc/passwd") }
    assert.is_nil(res)
    assert.equal("GET " .. a.root .. "/goto?to=" .. url_encode("file:///etc/passwd")
      .. ": redirect to file:///etc/passwd refused: only http and https are followed", err)
    res, err = http.fetch{ url = a.root .. "/redirect/3", max_redirects = 2 }
    assert.is_nil(res)
    assert.equal("GET " .. a.root .. "/redirect/3: too many redirects (max_redirects = 2)", err)
    -- max_redirects = 0: the redirect itself is the result
    res = assert(http.fetch{ url = via(a, b), max_redirects = 0 })
    assert.equal(302, res.status)
  end)

  it("dynpb.registry keeps its headers to itself unless forward_headers = true", function()
    local reg = assert(registry.new{ url = via(a, b), headers = HEADERS, timeout = 3 })
    assert.equal(FP1, reg:schema().fingerprint)
    assert.same({ "", "", "" }, seen(b))
    reg = assert(registry.new{ url = via(a, b), headers = HEADERS, timeout = 3, forward_headers = true })
    assert.same({ "k3y", "Bearer t0k", "c=1" }, seen(b))
    assert.has_error(function() registry.new{ url = a.url, forward_headers = "yes" } end,
      "dynpb: registry.new: option 'forward_headers' must be a boolean, got string")
  end)

  describe("from https", function()
    local dir, ts
    setup(function()
      dir = tmpdir()
      assert(run("sh " .. sh_quote(T.specdir .. "/support/mkcerts.sh") .. " " .. sh_quote(dir)))
      ts = start_server{ tls = { cert = dir .. "/server.pem", key = dir .. "/server.key" } }
    end)
    teardown(function() stop_server(ts); rmdir(dir) end)

    it("to http is refused by dynpb.http unless allow_insecure_redirect = true", function()
      local ca = dir .. "/ca.pem"
      local url = ts.root .. "/goto?to=" .. url_encode(b.url)
      local res, err = http.fetch{ url = url, cafile = ca, headers = HEADERS }
      assert.is_nil(res)
      assert.equal("GET " .. url .. ": redirect from https to " .. b.url
        .. " refused (allow_insecure_redirect = true allows it)", err)
      assert.equal(0, tonumber(get(b, "/_stats")))
      res, err = http.fetch{ url = url, cafile = ca, headers = HEADERS, allow_insecure_redirect = true }
      assert.equal(200, res and res.status, err)
      assert.same({ "", "", "" }, seen(b))                  -- another scheme: no headers
      -- and by dynpb.registry, keeping its schema
      local ok = pcall(http.fetch, { url = url, allow_insecure_redirect = 1 })
      assert.is_false(ok)
      local reg, rerr = registry.new{ url = url, cafile = ca }
      assert.is_nil(reg)
      assert.matches("redirect from https to .* refused", rerr)
    end)
  end)
end)

-- =============================================================== DNS

describe("job:cancel() during a slow DNS lookup", function()
  it("returns at once (CURLOPT_QUICK_EXIT), by cancel() and by collection", function()
    local dir = tmpdir()
    finally(function() rmdir(dir) end)
    local shim = dir .. "/slowdns.so"
    assert(run("env -u LD_PRELOAD cc -shared -fPIC -O1 -o " .. sh_quote(shim) .. " "
      .. sh_quote(T.specdir .. "/support/slowdns.c") .. " -ldl"), "cannot build slowdns.c")
    local code = string.format([[
      package.cpath = %q
      local http = require "dynpb.http"
      local out = {}
      local job = assert(http.start{ url = "http://slow.example:8080/x", timeout = 30, connect_timeout = 20 })
      http.sleep(0.3)                         -- the lookup is under way
      local t0 = http.now()
      job:cancel()
      out[#out + 1] = string.format("cancel=%%.2f", http.now() - t0)
      local ok, err = job:poll()
      out[#out + 1] = tostring(ok) .. " " .. tostring(err)
      job = assert(http.start{ url = "http://slow.example:8080/y", timeout = 30, connect_timeout = 20 })
      http.sleep(0.3)
      t0 = http.now()
      job = nil
      collectgarbage(); collectgarbage()
      out[#out + 1] = string.format("gc=%%.2f", http.now() - t0)
      io.write(table.concat(out, "\n"))]], package.cpath)
    local env = "SLOWDNS_HOST=slow.example SLOWDNS_SECS=4 LD_PRELOAD="
      .. sh_quote(((os.getenv("LD_PRELOAD") or "") .. " " .. shim):gsub("^ ", ""))
    local p = io.popen(env .. " " .. T.lua .. " -e " .. sh_quote(code) .. " 2>&1")
    local out = p:read("*a")
    p:close()
    local cancel = tonumber(out:match("cancel=([%d.]+)"))
    local gc = tonumber(out:match("gc=([%d.]+)"))
    assert.truthy(cancel and gc, out)
    -- the lookup takes 4 s; waiting for it (libcurl without QUICK_EXIT) takes ~3.7 s
    assert.is_true(cancel < 1.5, out)
    assert.is_true(gc < 1.5, out)
    assert.matches("false GET http://slow.example:8080/x: cancelled", out)
  end)
end)
