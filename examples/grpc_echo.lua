-- dynpb.grpc against the test server (see README "gRPC"):
--   lua5.4 examples/grpc_echo.lua PORT SET.pb
local dynpb = require "dynpb"
local grpc = require "dynpb.grpc"

local port, set = arg[1], arg[2]
local s = assert(dynpb.load_file(set))
local c = grpc.client{ url = "http://127.0.0.1:" .. port, schema = s, timeout = 5 }

-- unary, with metadata both ways
local res, meta = assert(c:call("/test.v1.Echo/Say", { text = "hello" }, { metadata = { ["x-tenant"] = "a" } }))
print("Say:", res.text, "peer " .. res.peer, "x-init=" .. meta.headers["x-init"], "x-trail=" .. meta.trailers["x-trail"])

-- server streaming
for msg, err, st in c:stream("test.v1.Echo/Count", { text = "n", count = 3 }) do
  if not msg then error(err) end
  print("Count:", msg.index or 0)
end

-- client streaming and bidi: an array of requests
print("Collect:", assert(c:call("test.v1.Echo.Collect", { { text = "a" }, { text = "b" } })).text)
for msg in c:stream("test.v1.Echo/Chat", { { text = "x" }, { text = "y" } }) do print("Chat:", msg.text) end

-- a failure: nil, err, st (details decoded through the schema)
local r, err, st = c:call("test.v1.Echo/Say", { fail_code = 5, fail_message = "shop 42 not found", details = true })
print("error:", err)
print("st:", st.code, st.name, st.details[1].reason, st.details[1]["@type"])

-- a deadline
local _, derr = c:call("test.v1.Echo/Say", { sleep = 2 }, { timeout = 0.2 })
print("deadline:", derr)
