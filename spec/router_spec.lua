-- dynpb.http_router / dynpb.router: HttpRule templates, matching, decoding,
-- precedence, and errors at router creation. The rows use plain rule tables
-- (method = a name); router_schema_spec.lua runs the same router on rules a
-- real descriptor set gives.
local dynpb = require "dynpb"
local router = require "dynpb.router"

-- rules: { verb, template [, body] }; method = "M<i>"
local function build(rules)
  local rs = {}
  for i, r in ipairs(rules) do
    rs[i] = { verb = r[1], template = r[2], body = r[3], method = r.method or ("M" .. i) }
  end
  return router.new(rs)
end

describe("dynpb.router: matching", function()
  -- each row: templates, request verb, path, expected method (or false), expected vars
  local rows = {
    { "literal", { { "GET", "/v1/shops" } }, "GET", "/v1/shops", "M1", {} },
    { "literal: other verb", { { "GET", "/v1/shops" } }, "POST", "/v1/shops", false },
    { "literal: verbs are case-sensitive", { { "GET", "/v1/shops" } }, "get", "/v1/shops", false },
    { "literal: longer path", { { "GET", "/v1/shops" } }, "GET", "/v1/shops/1", false },
    { "literal: shorter path", { { "GET", "/v1/shops/x" } }, "GET", "/v1/shops", false },
    { "literal: trailing slash is a segment", { { "GET", "/v1/shops" } }, "GET", "/v1/shops/", false },
    { "literal is compared raw", { { "GET", "/v1/shops" } }, "GET", "/v1/sh%6Fps", false },
    { "root", { { "GET", "/" } }, "GET", "/", "M1", {} },
    { "root does not match a segment", { { "GET", "/" } }, "GET", "/x", false },
    { "query string ignored", { { "GET", "/v1/{id}" } }, "GET", "/v1/7?x=%zz&y=2", "M1", { id = "7" } },
    { "fragment ignored", { { "GET", "/v1/{id}" } }, "GET", "/v1/7#top", "M1", { id = "7" } },
    { "*", { { "GET", "/v1/*/items" } }, "GET", "/v1/abc/items", "M1", {} },
    { "* needs a non-empty segment", { { "GET", "/v1/*/items" } }, "GET", "/v1//items", false },
    { "** matches zero segments", { { "GET", "/v1/**" } }, "GET", "/v1", "M1", {} },
    { "** matches many", { { "GET", "/v1/**" } }, "GET", "/v1/a/b/c", "M1", {} },
    { "{var}", { { "GET", "/v1/shops/{id}" } }, "GET", "/v1/shops/42", "M1", { id = "42" } },
    { "{var} field path", { { "GET", "/v1/shops/{shop.id}/items/{item_id}" } },
      "GET", "/v1/shops/s1/items/i2", "M1", { ["shop.id"] = "s1", item_id = "i2" } },
    { "{var=*}", { { "GET", "/v1/{id=*}" } }, "GET", "/v1/x", "M1", { id = "x" } },
    { "{var=pattern}", { { "GET", "/v1/{name=shops/*}" } }, "GET", "/v1/shops/9", "M1", { name = "shops/9" } },
    { "{var=pattern}: literal must match", { { "GET", "/v1/{name=shops/*}" } }, "GET", "/v1/users/9", false },
    { "{var=pattern/**}", { { "GET", "/v1/{name=shops/**}" } }, "GET", "/v1/shops/a/b/c", "M1",
      { name = "shops/a/b/c" } },
    { "{var=pattern/**} with no tail", { { "GET", "/v1/{name=shops/**}" } }, "GET", "/v1/shops", "M1",
      { name = "shops" } },
    { "{var=**}", { { "GET", "/files/{path=**}" } }, "GET", "/files/a/b.txt", "M1", { path = "a/b.txt" } },
    { "{var=**} empty", { { "GET", "/files/{path=**}" } }, "GET", "/files", "M1", { path = "" } },
    { "{var=lit}", { { "GET", "/v1/{kind=shops}" } }, "GET", "/v1/shops", "M1", { kind = "shops" } },
    { "variables around literals", { { "GET", "/v1/{a}/x/{b=y/*}/z" } }, "GET", "/v1/1/x/y/2/z", "M1",
      { a = "1", b = "y/2" } },
    -- percent-decoding
    { "single segment: fully decoded", { { "GET", "/v1/{id}" } }, "GET", "/v1/a%2Fb%20c", "M1",
      { id = "a/b c" } },
    { "single segment: lower-case hex", { { "GET", "/v1/{id}" } }, "GET", "/v1/a%2fb%c3%a9", "M1",
      { id = "a/b\195\169" } },
    { "{var=*}: fully decoded", { { "GET", "/v1/{id=*}" } }, "GET", "/v1/%2F%41", "M1", { id = "/A" } },
    { "encoded slash is not a separator", { { "GET", "/v1/{id}/x" } }, "GET", "/v1/a%2Fb/x", "M1",
      { id = "a/b" } },
    { "encoded slash does not split a literal", { { "GET", "/v1/a/b" } }, "GET", "/v1/a%2Fb", false },
    { "multi segment: %2F kept", { { "GET", "/v1/{name=shops/*}" } }, "GET", "/v1/shops/a%2Fb%20c", "M1",
      { name = "shops/a%2Fb c" } },
    { "multi segment: %2f kept", { { "GET", "/v1/{name=**}" } }, "GET", "/v1/x/a%2fb%3A", "M1",
      { name = "x/a%2fb:" } },
    { "multi segment: %252F decodes to %2F once", { { "GET", "/v1/{name=**}" } }, "GET", "/v1/%252F", "M1",
      { name = "%2F" } },
    -- custom verbs
    { ":verb", { { "POST", "/v1/{name=shops/*}:cancel" } }, "POST", "/v1/shops/3:cancel", "M1",
      { name = "shops/3" } },
    { ":verb required", { { "POST", "/v1/{name=shops/*}:cancel" } }, "POST", "/v1/shops/3", false },
    { ":verb must be the same", { { "POST", "/v1/{name=shops/*}:cancel" } }, "POST", "/v1/shops/3:undo", false },
    { ":verb after a literal", { { "POST", "/v1/shops:batchGet" } }, "POST", "/v1/shops:batchGet", "M1", {} },
    { ":verb after **", { { "GET", "/v1/{path=**}:download" } }, "GET", "/v1/a/b:download", "M1",
      { path = "a/b" } },
    { "no verb in template: colon is segment text", { { "GET", "/v1/{id}" } }, "GET", "/v1/a:b", "M1",
      { id = "a:b" } },
    { "encoded colon is no verb", { { "POST", "/v1/{id}:go" } }, "POST", "/v1/a%3Ago", false },
    -- custom HTTP methods
    { "custom kind", { { "HEAD", "/v1/{id}" } }, "HEAD", "/v1/1", "M1", { id = "1" } },
    { "custom kind, other verb", { { "HEAD", "/v1/{id}" } }, "GET", "/v1/1", false },
    -- no match at all
    { "no rules for verb", { { "GET", "/a" } }, "DELETE", "/a", false },
    { "nothing matches", { { "GET", "/a" }, { "GET", "/b/{x}" } }, "GET", "/c", false },
    -- precedence
    { "more literals win", { { "GET", "/v1/{a}/{b}" }, { "GET", "/v1/shops/{b}" } },
      "GET", "/v1/shops/1", "M2", { b = "1" } },
    { "more literals win over declaration order", { { "GET", "/v1/*/x/**" }, { "GET", "/v1/a/x/{r=**}" } },
      "GET", "/v1/a/x/b", "M2", { r = "b" } },
    { "without ** wins at equal literals", { { "GET", "/v1/{name=**}" }, { "GET", "/v1/{name=*}" } },
      "GET", "/v1/one", "M2", { name = "one" } },
    { "** still matches what * cannot", { { "GET", "/v1/{name=**}" }, { "GET", "/v1/{name=*}" } },
      "GET", "/v1/one/two", "M1", { name = "one/two" } },
    { "first declared wins when equal", { { "GET", "/v1/{a}" }, { "GET", "/v1/{b}" } },
      "GET", "/v1/z", "M1", { a = "z" } },
    { "verb counts as a literal", { { "POST", "/v1/{id}" }, { "POST", "/v1/{id}:run" } },
      "POST", "/v1/q:run", "M2", { id = "q" } },
    { "literal beats variable in same position", { { "GET", "/{a}/b" }, { "GET", "/a/{b}" } },
      "GET", "/a/b", "M1", { a = "a" } },
  }
  for _, row in ipairs(rows) do
    local name, rules, verb, path, want, wvars = row[1], row[2], row[3], row[4], row[5], row[6]
    it(name .. ": " .. verb .. " " .. path, function()
      local r = assert(build(rules))
      local m, vars, rule = r:match(verb, path)
      if want then
        assert.are.equal(want, m)
        assert.are.same(wvars, vars)
        assert.are.equal(want, rule.method)
        assert.is_string(rule.template)
      else
        assert.is_nil(m)
        assert.is_nil(vars)
      end
    end)
  end
end)

describe("dynpb.router: bad templates are reported at creation", function()
  local rows = {
    { "", "must start with '/'" },
    { "v1/shops", "must start with '/'" },
    { "/v1//shops", "empty segment at column 5" },
    { "/v1/shops/", "empty segment" },
    { "/v1/{", "bad variable field path" },
    { "/v1/{id", "expected '=' or '}' after variable 'id'" },
    { "/v1/{id=*", "variable 'id' not closed" },
    { "/v1/{1d}", "bad variable field path" },
    { "/v1/{a..b}", "bad variable field path" },
    { "/v1/{a.}", "bad variable field path" },
    { "/v1/{a={b}}", "nested variable" },
    { "/v1/{a}/{a}", "variable 'a' given twice" },
    { "/v1/**/x", "'**' must be the last segment" },
    { "/v1/{a=**}/x", "'**' must be the last segment" },
    { "/v1/a*b", "bad literal segment 'a*b'" },
    { "/v1/***", "bad literal segment '***'" },
    { "/v1/a b", "bad literal segment 'a b'" },
    { "/v1/%zz", "bad literal segment '%zz'" },
    { "/v1/x:", "bad verb ''" },
    { "/v1/x:a/b", "bad verb 'a/b'" },
    { "/v1/{a:b}", "expected '=' or '}'" },
    { "/v1/x}", "unexpected '}'" },
    { "/v1/{a=x:y}", "unexpected ':'" },
    { "/v1/{a=}", "empty segment" },
  }
  for _, row in ipairs(rows) do
    it("'" .. row[1] .. "'", function()
      local r, err = router.new({ { verb = "GET", template = row[1], method = { full_name = "pkg.Svc.Get" } } })
      assert.is_nil(r)
      assert.matches("method pkg.Svc.Get", err, 1, true)
      assert.matches("'" .. row[1] .. "'", err, 1, true)
      assert.matches(row[2], err, 1, true)
    end)
  end

  it("a bad rule among good ones fails the whole router", function()
    local r, err = router.new({
      { verb = "GET", template = "/ok", method = { full_name = "a.S.Ok" } },
      { verb = "GET", template = "/bad/**/x", method = { full_name = "a.S.Bad" } },
    })
    assert.is_nil(r)
    assert.matches("method a.S.Bad, GET '/bad/**/x'", err, 1, true)
  end)

  it("an empty custom kind is reported", function()
    local r, err = router.new({ { verb = "", template = "/x", method = { full_name = "a.S.M" } } })
    assert.is_nil(r)
    assert.matches("no HTTP verb", err, 1, true)
  end)

  it("a bad body field is reported", function()
    local r, err = router.new({ { verb = "POST", template = "/x", body = "a.b", method = { full_name = "a.S.M" } } })
    assert.is_nil(r)
    assert.matches("bad body field 'a.b'", err, 1, true)
  end)

  it("misuse raises", function()
    assert.has_error(function() router.new("x") end)
    assert.has_error(function() dynpb.http_router("x") end)
    local r = assert(router.new({}))
    assert.has_error(function() r.match({}, "GET", "/") end)
    assert.has_error(function() r:match(nil, "/") end)
    assert.has_error(function() r:match("GET", 3) end)
  end)
end)

describe("dynpb.router: malformed paths", function()
  local r = assert(build({ { "GET", "/v1/{id}" } }))
  for _, p in ipairs({ "/v1/%", "/v1/%4", "/v1/%zz", "/v1/%4g" }) do
    it(p, function()
      local m, err = r:match("GET", p)
      assert.is_nil(m)
      assert.matches("bad percent%-encoding at byte 5", err)
    end)
  end
  it("a path without a leading slash", function()
    local m, err = r:match("GET", "v1/x")
    assert.is_nil(m)
    assert.matches("must start with '/'", err, 1, true)
  end)
end)

describe("dynpb.router: parse_template", function()
  it("counts literals and records variable ranges", function()
    local t = assert(router.parse_template("/v1/{name=shops/*}/items/{item}:get"))
    assert.are.equal(4, t.nlit)          -- v1, shops, items, and the verb
    assert.are.equal("get", t.verb)
    assert.are.equal(5, t.nsegs)
    assert.are.same({ { path = "name", from = 2, to = 3 }, { path = "item", from = 5, to = 5 } }, t.vars)
    assert.is_false(t.wild)
    assert.is_true(assert(router.parse_template("/a/**")).wild)
  end)
end)

-- the same router on rules from real sets made by Debian's protoc with
-- google/api/http.proto (golang-github-gogo-googleapis-dev)
describe("dynpb.http_router on a protoc set", function()
  local GAPI = "/usr/share/gocode/src/github.com/gogo/googleapis"
  local function compile(proto)
    local out = os.tmpname()
    local ok = os.execute("protoc -I" .. T.specdir .. "/fixtures/proto -I" .. GAPI .. " -I/usr/include"
      .. " --include_imports --descriptor_set_out=" .. out .. " " .. proto)
    assert(ok == true or ok == 0, "protoc failed on " .. proto)
    local s = assert(dynpb.load(T.read(out)))
    os.remove(out)
    return s
  end
  local S = compile("router_api.proto")

  it("schema:http_rules lists every binding, additional ones included, in order", function()
    local got = {}
    for i, r in ipairs(S:http_rules()) do
      got[i] = { r.verb, r.template, r.body or false, r.response_body or false, r.method.full_name }
    end
    assert.are.same({
      { "GET", "/v1/{name=shops/*}", false, false, "shop.v1.ShopService.GetShop" },
      { "GET", "/v1/shops/by-name/{name}", false, false, "shop.v1.ShopService.GetShop" },
      { "POST", "/v1/{name=shops/*}:get", "*", false, "shop.v1.ShopService.GetShop" },
      { "GET", "/v1/shops/{shop.id}/items/{item_id}", false, false, "shop.v1.ShopService.GetItem" },
      { "GET", "/v1/{parent=shops/*}/items", false, false, "shop.v1.ShopService.ListItems" },
      { "PATCH", "/v1/{name=shops/*/items/*}", "item", "id", "shop.v1.ShopService.UpdateItem" },
      { "DELETE", "/v1/shops/{shop.id}/items/{item_id}", false, false, "shop.v1.ShopService.DeleteItem" },
      { "PUT", "/v1/shops/{id}", "*", false, "shop.v1.ShopService.PutShop" },
      { "GET", "/files/{path=**}:download", false, false, "shop.v1.ShopService.Download" },
      { "HEAD", "/files/{path=**}", false, false, "shop.v1.ShopService.Head" },
      { "GET", "/v1/{path=**}", false, false, "shop.v1.Other.Any" },
    }, got)
    -- the method tables are the schema's: handles for input and output
    local r = S:http_rules()[4]
    assert.are.equal("shop.v1.GetItemRequest", r.method.input.name)
    assert.are.equal("/shop.v1.ShopService/GetItem", r.method.path)
    assert.is_true(S:http_rules()[5].method.server_streaming)
  end)

  local router = assert(dynpb.http_router(S))
  local rows = {
    { "GET", "/v1/shops/s1", "shop.v1.ShopService.GetShop", { name = "shops/s1" } },
    { "GET", "/v1/shops/by-name/a%20b", "shop.v1.ShopService.GetShop", { name = "a b" } },
    { "POST", "/v1/shops/s1:get", "shop.v1.ShopService.GetShop", { name = "shops/s1" } },
    { "GET", "/v1/shops/s%2F1/items/42?view=full", "shop.v1.ShopService.GetItem",
      { ["shop.id"] = "s/1", item_id = "42" } },
    { "GET", "/v1/shops/s1/items", "shop.v1.ShopService.ListItems", { parent = "shops/s1" } },
    { "PATCH", "/v1/shops/s%2F1/items/i1", "shop.v1.ShopService.UpdateItem", { name = "shops/s%2F1/items/i1" } },
    { "DELETE", "/v1/shops/a/items/b", "shop.v1.ShopService.DeleteItem", { ["shop.id"] = "a", item_id = "b" } },
    { "PUT", "/v1/shops/x", "shop.v1.ShopService.PutShop", { id = "x" } },
    { "GET", "/files/a/b%2Fc.txt:download", "shop.v1.ShopService.Download", { path = "a/b%2Fc.txt" } },
    { "HEAD", "/files/a/b", "shop.v1.ShopService.Head", { path = "a/b" } },
    -- the catch-all of another service loses to every more literal template
    { "GET", "/v1/other/thing", "shop.v1.Other.Any", { path = "other/thing" } },
    { "GET", "/v1/shops", "shop.v1.Other.Any", { path = "shops" } },
    { "GET", "/files/a:download", "shop.v1.ShopService.Download", { path = "a" } },
    { "POST", "/v1/shops/s1", false },
    { "GET", "/nothing", false },
    { "OPTIONS", "/v1/shops/s1", false },
  }
  for _, row in ipairs(rows) do
    it(row[1] .. " " .. row[2], function()
      local m, vars, rule = router:match(row[1], row[2])
      if row[3] then
        assert.are.equal(row[3], m and m.full_name)
        assert.are.same(row[4], vars)
        assert.are.equal(m, rule.method)
        -- vars are field paths of the method's input
        for path in pairs(vars) do
          local top = path:match("^[^.]+")
          local found = false
          for _, f in ipairs(m.input:fields()) do found = found or f.name == top end
          assert.is_true(found, path .. " is not a field of " .. m.input.name)
        end
      else
        assert.is_nil(m)
      end
    end)
  end

  it("a bad template in a set is reported at creation with the method", function()
    local bad = compile("router_bad.proto")
    local r, err = dynpb.http_router(bad)
    assert.is_nil(r)
    assert.are.equal("dynpb: http_router: method bad.v1.Bad.Broken, GET '/v1/{name=**}/tail': bad template: "
      .. "'**' must be the last segment", err)
  end)

  it("a schema without services has no rules", function()
    local s = assert(dynpb.load(T.fixture("shop.pb")))
    assert.are.same({}, s:http_rules())
    local r = assert(dynpb.http_router(s))
    assert.is_nil(r:match("GET", "/"))
  end)
end)
