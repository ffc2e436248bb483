-- bin/dynpb as a process (issue 19): stdin, stdout, stderr, exit codes, on
-- the Lua the specs run on. Reference bytes and text come from protoc.
local dynpb = require "dynpb"

local LUA = T.lua:match("^lua") and T.lua or (T.jit and "luajit" or "lua5.4")
local BIN = T.root .. "/bin/dynpb"
local DIR = T.specdir .. "/fixtures/codec/"
local SET = DIR .. "alltypes3.pb"
local tmp = os.tmpname()

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local ENV = "LUA_CPATH=" .. q((os.getenv("DYNPB_CPATH") or "") .. ";;")
         .. " LUA_PATH=" .. q((os.getenv("DYNPB_LPATH") or "") .. ";;")

local function write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

-- runs `dynpb args` with stdin from `input`; returns exit code, stdout, stderr
local function run(args, input)
  write(tmp .. ".in", input or "")
  os.execute(ENV .. " " .. LUA .. " " .. BIN .. " " .. args .. " < " .. tmp .. ".in > " .. tmp
             .. ".out 2> " .. tmp .. ".err; echo $? > " .. tmp .. ".rc")
  return tonumber(T.read(tmp .. ".rc")), T.read(tmp .. ".out"), T.read(tmp .. ".err")
end

local function protoc(args, input)
  write(tmp .. ".pin", input)
  assert(os.execute("protoc -I" .. T.specdir .. "/fixtures/proto " .. args .. " < " .. tmp .. ".pin > "
                    .. tmp .. ".pout"))
  return T.read(tmp .. ".pout")
end

teardown(function()
  for _, e in ipairs({ "", ".in", ".out", ".err", ".rc", ".pin", ".pout", ".bin" }) do os.remove(tmp .. e) end
end)

describe("bin/dynpb", function()
  local src = T.read(DIR .. "text/p3_kitchen.txtpb")
  local bytes = protoc("--encode=reft3.TestAll alltypes3.proto", src)
  local text = protoc("--decode=reft3.TestAll alltypes3.proto", bytes)

  it("decode prints protoc's text format", function()
    local rc, out, err = run("decode --text -s " .. SET .. " -t reft3.TestAll", bytes)
    assert.are.equal("", err)
    assert.are.equal(0, rc)
    assert.are.equal(text, out)
    -- from a file, to a file
    write(tmp .. ".bin", bytes)
    rc = run("decode --text -s " .. SET .. " -t reft3.TestAll " .. tmp .. ".bin -o " .. tmp .. ".pout")
    assert.are.equal(0, rc)
    assert.are.equal(text, T.read(tmp .. ".pout"))
  end)

  it("encode reads text and gives bytes protoc prints the same", function()
    local rc, out, err = run("encode --text -s " .. SET .. " -t reft3.TestAll -o -", text)
    assert.are.equal("", err)
    assert.are.equal(0, rc)
    assert.are.equal(text, protoc("--decode=reft3.TestAll alltypes3.proto", out))
  end)

  it("decode prints pretty JSON by default; encode reads it back to the same message", function()
    local rc, out, err = run("decode -s " .. SET .. " -t reft3.TestAll", bytes)
    assert.are.equal("", err)
    assert.are.equal(0, rc)
    assert.matches('^{\n  "sInt32": ', out)          -- indent = 2, JSON names
    assert.matches("\n}\n$", out)
    local S = assert(dynpb.load(T.read(SET)))
    assert.are.equal(assert(S:to_json("reft3.TestAll", bytes, { indent = 2 })) .. "\n", out)
    assert.are.equal(out, run("decode --json -s " .. SET .. " -t reft3.TestAll", bytes) == 0 and T.read(tmp .. ".out"))
    local bin
    rc, bin, err = run("encode -s " .. SET .. " -t reft3.TestAll -o -", out)
    assert.are.equal("", err)
    assert.are.equal(0, rc)
    assert.are.equal(text, protoc("--decode=reft3.TestAll alltypes3.proto", bin))
    rc, bin = run("encode --json -s " .. SET .. " -t reft3.TestAll -o -", '{"sInt32": 7}')
    assert.are.equal(0, rc)
    assert.are.equal("s_int32: 7\n", protoc("--decode=reft3.TestAll alltypes3.proto", bin))
  end)

  it("decode --lua prints a Lua table literal that reads back", function()
    local rc, out = run("decode --lua -s " .. SET .. " -t reft3.TestAll", bytes)
    assert.are.equal(0, rc)
    local chunk = assert((loadstring or load)("return " .. out))
    local S = assert(dynpb.load(T.read(SET)))
    -- compared through encode: the kitchen sink holds a NaN (never equal to itself)
    local t = chunk()
    assert.are.equal("NEG", t.s_nested)
    assert.are.equal(assert(S:encode("reft3.TestAll", assert(S:decode("reft3.TestAll", bytes)))),
                     assert(S:encode("reft3.TestAll", t)))
  end)

  it("inspect and fingerprint", function()
    local rc, out = run("inspect -s " .. SET)
    assert.are.equal(0, rc)
    assert.matches("\nmessage reft3.TestAll\n", out, 1, true)
    assert.matches("\nenum reft3.Color\n", out, 1, true)
    rc, out = run("inspect -s " .. SET .. " reft3.TestAll")
    assert.are.equal(0, rc)
    assert.matches("  optional int32 s_int32 = 1\n", out, 1, true)
    rc, out = run("inspect -s " .. SET .. " reft3.Color")
    assert.are.equal(0, rc)
    assert.matches("enum reft3.Color\n", out, 1, true)
    rc, out = run("fingerprint " .. SET)
    assert.are.equal(0, rc)
    assert.are.equal(dynpb.fingerprint(T.read(SET)) .. "\n", out)
  end)

  it("inspect shows options: standard, custom ([ext]), on every declaration", function()
    local SVC = T.specdir .. "/fixtures/services.pb"
    local rc, out = run("inspect -s " .. SVC .. " svc.v1.ShopService")
    assert.are.equal(0, rc)
    assert.matches('service svc.v1.ShopService (services.proto)  options {[opts.svc_owner] = "team-a", deprecated = true}\n',
      out, 1, true)
    assert.matches('/svc.v1.ShopService/GetShop  options {[google.api.http] = {get = "/v1/{name=shops/*}"}, '
      .. '[opts.blob] = "\\000\\255raw", [opts.cost] = 1.5, [opts.method_meta] = {label = "get", level = "LEVEL_HIGH"}}\n',
      out, 1, true)
    rc, out = run("inspect -s " .. SVC .. " svc.v1.Shop")
    assert.are.equal(0, rc)
    assert.matches("  repeated int32 nums = 4  options {packed = false}\n", out, 1, true)
    assert.matches("[opts.msg_tags] = {\"a\", \"b\"}", out, 1, true)
    rc, out = run("inspect -s " .. SVC .. " svc.v1.Status")
    assert.are.equal(0, rc)
    assert.matches('enum svc.v1.Status  options {[opts.enum_doc] = "shop status", allow_alias = true}\n', out, 1, true)
    assert.matches("  STATUS_ACTIVE = 1  options {[opts.legacy] = true, deprecated = true}\n", out, 1, true)
  end)

  it("-s takes a .proto file, with -I import paths (compiled by dynpb.load_proto)", function()
    local PROTO = T.specdir .. "/fixtures/proto"
    local want = run("decode --text -s " .. SET .. " -t reft3.TestAll", bytes) == 0 and T.read(tmp .. ".out")
    assert.are.equal(text, want)
    for _, a in ipairs({ "-s " .. PROTO .. "/alltypes3.proto",                  -- its directory is the path
                         "-s alltypes3.proto -I " .. PROTO,
                         "-I /nonexistent -s " .. PROTO .. "/alltypes3.proto -I " .. PROTO }) do
      local rc, out, err = run("decode --text " .. a .. " -t reft3.TestAll", bytes)
      assert.are.equal("", err, a)
      assert.are.equal(0, rc, a)
      assert.are.equal(text, out, a)
    end
    -- an import found through the second -I
    local d = tmp .. ".d"
    os.execute("mkdir -p " .. d .. "/a " .. d .. "/b")
    write(d .. "/a/top.proto", 'syntax = "proto3"; package t; import "dep.proto"; message Top { Dep d = 1; }')
    write(d .. "/b/dep.proto", 'syntax = "proto3"; package t; message Dep { int32 x = 1; }')
    local rc, out, err = run("encode --text -s " .. d .. "/a/top.proto -I " .. d .. "/a -I " .. d .. "/b -t t.Top -o -",
                             "d { x: 5 }")
    assert.are.equal("", err)
    assert.are.equal(0, rc)
    assert.are.equal("\10\2\8\5", out)
    -- without -I b the import is missing: a schema source failure, protoc's message
    rc, out, err = run("encode -s " .. d .. "/a/top.proto -t t.Top -o -", "{}")
    assert.are.equal(3, rc)
    assert.are.equal("", out)
    assert.matches("^dynpb: compile: .*dep%.proto", err)
    assert.are.equal(1, select(2, err:gsub("\n", "")))
    os.execute("rm -rf " .. d)
  end)

  it("watch follows a file:// registry: each version's fingerprint and the enums that changed", function()
    local function set(src)
      return assert(dynpb.compile{ files = { "w.proto" }, sources = { ["w.proto"] = 'syntax = "proto3"; package w; ' .. src } })
    end
    local v1 = set("enum Color { RED = 0; GREEN = 1; } enum Old { O = 0; }")
    local v2 = set("enum Color { RED = 0; BLUE = 2; } enum New { N = 0; M = 1; }")
    local v3 = set("enum Color { RED = 0; BLUE = 2; } enum New { N = 0; M = 1; } message Added {}")
    local path = tmp .. ".reg.pb"
    local function publish(bytes)   -- replaced whole, as a registry file is
      write(path .. ".new", bytes)
      assert(os.rename(path .. ".new", path))
    end
    publish(v1)
    local p = assert(io.popen("timeout 60 env " .. ENV .. " " .. LUA .. " " .. BIN .. " watch file://" .. path
                              .. " --refresh 0.1 --count 3 2> " .. tmp .. ".err < /dev/null; echo rc=$?"))
    local lines = { p:read("*l") }
    publish(v2)
    lines[2] = p:read("*l")
    publish("not a descriptor set")   -- a failed refresh: one stderr line each, watching goes on
    for _ = 1, 300 do   -- until the watcher has reported it (no timing assumption)
      if (T.read(tmp .. ".err") or "") ~= "" then break end
      os.execute("sleep 0.1")
    end
    publish(v3)
    for l in p:lines() do lines[#lines + 1] = l end
    p:close()
    assert.are.same({
      dynpb.fingerprint(v1),
      dynpb.fingerprint(v2),
      "  enum w.Color +BLUE = 2",
      "  enum w.Color -GREEN = 1",
      "  enum w.New added: N = 0, M = 1",
      "  enum w.Old removed",
      dynpb.fingerprint(v3),
      "rc=0",
    }, lines)
    local err = T.read(tmp .. ".err")
    assert.matches("^dynpb watch: GET file://[^\n]*: not a valid descriptor set: dynpb: load: ", err)
    for l in err:gmatch("[^\n]+") do assert.matches("^dynpb watch: ", l) end
    os.remove(path)
  end)

  -- exit codes: 1 bad data, 2 usage, 3 schema source; one line on stderr
  local rows = {
    { "decode -s SET -t reft3.TestAll", "\8", 1, "dynpb: to_json reft3.TestAll: truncated input at byte 0" },
    { "decode --text -s SET -t reft3.TestAll", "\8", 1, "dynpb: to_text reft3.TestAll: truncated" },
    { "encode --text -s SET -t reft3.TestAll -o -", "s_int32: x", 1, "1:10: field 's_int32': expected an integer" },
    { "encode -s SET -t reft3.TestAll -o -", '{"sInt32": "x"}', 1, "dynpb: from_json reft3.TestAll: field 's_int32': string 'x' is not an integer at byte 11" },
    { "encode -s SET -t reft3.TestAll -o -", '{"sInt32": 1', 1, "dynpb: from_json reft3.TestAll" },
    { "decode -s SET -t reft3.TestAll --text --lua", "", 2, "exclude each other" },
    { "decode -s SET -t no.Such", "", 1, "no message type named 'no.Such'" },
    { "inspect -s SET no.Such", "", 1, "no message, enum or service named 'no.Such'" },
    { "", "", 2, "a command is required" },
    { "frobnicate", "", 2, "unknown command 'frobnicate'" },
    { "decode -s SET", "", 2, "-t TYPE is required" },
    { "decode -t x", "", 2, "-s SET is required" },
    { "decode -s SET -t reft3.TestAll --bogus", "", 2, "unknown option --bogus" },
    { "decode -s", "", 2, "-s needs a value" },
    { "decode -s x.proto -I", "", 2, "-I needs a value" },
    { "watch", "", 2, "one registry URL expected" },
    { "watch /x.pb", "", 2, "URL must be http://" },
    { "watch file:///x.pb --refresh 0", "", 2, "--refresh wants seconds" },
    { "watch file:///x.pb --count 1.5", "", 2, "--count wants a positive integer" },
    { "watch file:///nonexistent/x.pb --count 1", "", 3, "dynpb: registry" },
    { "decode -s /nonexistent.pb -t x", "", 3, "cannot read the schema" },
    { "decode -s " .. T.root .. "/README.md -t x", "", 3, "dynpb: load" },
    { "decode -s file:///nonexistent/set.pb -t x", "", 3, "dynpb: registry" },
    { "decode -s /nonexistent/x.proto -t x", "", 3, "dynpb: compile: " },
    { "decode -s SET -I /tmp -t x", "", 2, "-I goes with a .proto schema" },
    { "decode -s grpc://127.0.0.1:1 -t x", "", 3, "dynpb: grpc" },
  }
  for _, row in ipairs(rows) do
    it("exit " .. row[3] .. ": dynpb " .. row[1], function()
      local rc, out, err = run((row[1]:gsub("SET", SET)), row[2])
      assert.are.equal(row[3], rc)
      assert.are.equal("", out)
      assert.matches(row[4], err, 1, true)
      assert.are.equal(1, select(2, err:gsub("\n", "")))   -- one line
    end)
  end

  it("--help for each command", function()
    for _, c in ipairs({ "decode", "encode", "inspect", "fingerprint", "call", "watch" }) do
      local rc, out = run(c .. " --help")
      assert.are.equal(0, rc)
      assert.matches("^usage: dynpb " .. c, out)
    end
    local rc, out = run("--help")
    assert.are.equal(0, rc)
    assert.matches("commands:", out, 1, true)
  end)

  it("refuses binary output to a terminal (dynpb.isatty)", function()
    assert.is_false(dynpb.isatty(io.open(SET, "rb")))
    assert.has_error(function() dynpb.isatty("x") end)
    -- a pty: script(1) gives the command a terminal as stdout
    local have_script = os.execute("command -v script > /dev/null 2>&1")
    if have_script == true or have_script == 0 then
      write(tmp .. ".in", '{"sInt32": 1}')
      os.execute("script -qec " .. q(ENV .. " " .. LUA .. " " .. BIN .. " encode -s " .. SET
        .. " -t reft3.TestAll < " .. tmp .. ".in; echo rc=$?") .. " /dev/null > " .. tmp .. ".out 2>&1")
      local out = T.read(tmp .. ".out")
      assert.matches("refusing to write binary protobuf to a terminal", out, 1, true)
      assert.matches("rc=2", out, 1, true)
    end
  end)
end)

describe("bin/dynpb with gRPC servers", function()
  local E = dofile(T.specdir .. "/support/grpc_env.lua")
  local NODE_MODULES = T.root .. "/build/grpc-node/node_modules"
  local node, py

  setup(function()
    assert(E.have_python_grpc(), "python3-grpcio is missing: make grpc-deps (or sh .ci/deps.sh python3-grpcio)")
    local dir = E.tmpdir()
    E.protoc(E.fixtures, { "test/v1/echo.proto" }, dir .. "/echo.pb")
    py = E.start(string.format("exec %s '%s' '%s'", E.python, T.specdir .. "/support/grpc_server.py", dir .. "/echo.pb"),
      "grpc_server.py")
    E.sh("rm -rf '" .. dir .. "'")
    assert(E.sh("test -f '" .. NODE_MODULES .. "/@grpc/reflection/package.json'"),
      "the npm test servers are missing: make grpc-deps")
    node = E.start(string.format("NODE_PATH='%s' exec node '%s' 0 '%s/reflect/v1' shop/v1/shop.proto",
      NODE_MODULES, T.specdir .. "/support/grpc_node/server.js", E.fixtures), "grpc-js reflection server")
  end)
  teardown(function()
    E.stop(node)
    E.stop(py)
  end)

  it("-s grpc://host:port: the schema by server reflection", function()
    local url = "grpc://127.0.0.1:" .. node.port
    local rc, out, err = run("inspect -s " .. url)
    assert.are.equal("", err)
    assert.are.equal(0, rc)
    assert.matches("\nservice shop.v1.Shops\n", out, 1, true)
    rc, out = run("inspect -s " .. url .. " shop.v1.Shops")
    assert.are.equal(0, rc)
    assert.matches("rpc GetShop(", out, 1, true)
    rc, out, err = run("encode -s " .. url .. " -t shop.v1.Shop -o -", '{"name": "x"}')
    assert.are.equal("", err)
    assert.are.equal(0, rc)
    rc, out = run("decode -s " .. url .. " -t shop.v1.Shop", out)
    assert.are.equal(0, rc)
    assert.are.equal('{\n  "name": "x"\n}\n', out)
  end)

  local ECHO = "-s " .. T.specdir .. "/fixtures/grpc/test/v1/echo.proto -I " .. T.specdir .. "/fixtures/grpc"
  local function pyurl() return "grpc://127.0.0.1:" .. py.port end

  it("call: unary, the schema by reflection, the request as an argument; the response as pretty JSON", function()
    local rc, out, err = run("call grpc://127.0.0.1:" .. node.port .. " shop.v1.Shops/GetShop " .. q('{"id": "7"}'))
    assert.are.equal("", err)
    assert.are.equal(0, rc)
    assert.are.equal('{\n  "id": "7",\n  "name": "Shop 7",\n  "balance": {\n    "currency": "EUR",\n    "units": "12"\n  }\n}\n', out)
  end)

  it("call: a non-OK status exits 4 with the Status as one line of JSON on stderr", function()
    local rc, out, err = run("call grpc://127.0.0.1:" .. node.port .. " shop.v1.Shops/GetShop", '{"id": "missing"}')
    assert.are.equal(4, rc)
    assert.are.equal("", out)
    assert.are.equal('{"code":5,"message":"no shop missing"}\n', err)
    -- details: each Any through the schema, a type it lacks as @value (base64)
    rc, out, err = run("call " .. ECHO .. " " .. pyurl() .. " test.v1.Echo/Say",
                       '{"failCode": 9, "failMessage": "shop \\"42\\" closed", "details": true}')
    assert.are.equal(4, rc)
    assert.are.equal("", out)
    assert.are.equal('{"code":9,"message":"shop \\"42\\" closed","details":[{"@type":"type.googleapis.com/test.v1.ErrorInfo",'
      .. '"reason":"SHOP_CLOSED","metadata":{"shop":"42"}},{"@type":"type.googleapis.com/other.v1.Unknown","@value":"CAc="}]}\n', err)
  end)

  it("call: -s .proto, -H metadata (repeatable, -bin in base64), request from stdin", function()
    local rc, out, err = run("call " .. ECHO .. " -H 'x-tenant: a' -H 'X-Multi: 1' -H 'x-multi: 2' -H 'x-raw-bin: AAH/' "
                             .. pyurl() .. " test.v1.Echo/Say", '{"text": "hi"}')
    assert.are.equal("", err)
    assert.are.equal(0, rc)
    local S = assert(dynpb.load_proto{ files = { "test/v1/echo.proto" }, paths = { T.specdir .. "/fixtures/grpc" } })
    local res = assert(S:decode("test.v1.EchoReply", assert(S:from_json("test.v1.EchoReply", out))))
    assert.are.equal("hi", res.text)
    assert.are.equal("a", res.metadata["x-tenant"])
    assert.are.equal("1,2", res.metadata["x-multi"]:gsub(" ", ""))
    assert.are.equal("0001ff", res.metadata["x-raw-bin"])
    assert.matches('^{\n  "text": "hi",\n', out)
  end)

  it("call: server streaming prints one JSON document per response; client streaming reads a stream of objects", function()
    local rc, out, err = run("call " .. ECHO .. " " .. pyurl() .. " test.v1.Echo/Count " .. q('{"text": "s", "count": 3}'))
    assert.are.equal("", err)
    assert.are.equal(0, rc)
    local idx = {}
    for doc in out:gmatch("(%b{})\n") do idx[#idx + 1] = doc:match('"index": (%d+)') or "0" end
    assert.are.same({ "0", "1", "2" }, idx)
    rc, out, err = run("call " .. ECHO .. " " .. pyurl() .. " test.v1.Echo/Collect", '{"text": "a"}\n{"text": "b}"} {"text": "c"}')
    assert.are.equal("", err)
    assert.are.equal(0, rc)
    assert.matches('"text": "a,b},c"', out, 1, true)
    assert.matches('"index": 3', out, 1, true)
    -- a stream that fails after its responses: those printed, then exit 4
    rc, out, err = run("call " .. ECHO .. " " .. pyurl() .. " test.v1.Echo/Count",
                       '{"count": 2, "failCode": 8, "failMessage": "enough"}')
    assert.are.equal(4, rc)
    assert.are.equal(2, select(2, out:gsub("\n}\n", "")))
    assert.are.equal('{"code":8,"message":"enough"}\n', err)
  end)

  it("call: --timeout ends a slow call with DEADLINE_EXCEEDED (exit 4)", function()
    local rc, out, err = run("call --timeout 0.3 " .. ECHO .. " " .. pyurl() .. " test.v1.Echo/Say", '{"sleep": 3}')
    assert.are.equal(4, rc)
    assert.are.equal("", out)
    assert.matches('^{"code":4', err)
    assert.are.equal(1, select(2, err:gsub("\n", "")))
  end)

  local rows = {
    { "call", "", 2, "URL and METHOD expected" },
    { "call http2://x a/b", "", 2, "URL must be grpc://" },
    { "call --timeout -1 grpc://127.0.0.1:1 a/b", "", 2, "--timeout wants seconds > 0" },
    { "call -H nocolon grpc://127.0.0.1:1 a/b", "", 2, "-H wants 'name: value'" },
    { "call ECHO -H 'te: x' PY test.v1.Echo/Say", "{}", 2, "metadata key 'te' is reserved" },
    { "call grpc://127.0.0.1:1 a.B/C", "", 3, "dynpb: grpc" },                 -- reflection: nobody listens
    { "call ECHO grpc://127.0.0.1:1 test.v1.Echo/Say", "{}", 3, "UNAVAILABLE" },  -- the call: nobody listens
    { "call ECHO PY test.v1.Echo/Nope", "{}", 1, "no method 'test.v1.Echo/Nope'" },
    { "call ECHO PY test.v1.Echo/Say", '{"text": 1}', 1, "dynpb: from_json test.v1.EchoRequest" },
    { "call ECHO PY test.v1.Echo/Collect", '{"text": "a"} x', 1, "requests: expected a JSON object at byte 14" },
  }
  for _, row in ipairs(rows) do
    it("exit " .. row[3] .. ": dynpb " .. row[1], function()
      local rc, out, err = run((row[1]:gsub("ECHO", ECHO):gsub("PY", pyurl())), row[2])
      assert.are.equal(row[3], rc)
      assert.are.equal("", out)
      assert.matches(row[4], err, 1, true)
      assert.are.equal(1, select(2, err:gsub("\n", "")))
    end)
  end
end)
