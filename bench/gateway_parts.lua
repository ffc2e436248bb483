-- bench/gateway_parts.lua -- the Lua-side work of one dynpb.resty.gateway call
-- (GET /v1/shops/42 -> gw.v1.Shops.GetShop), outside nginx: route match,
-- from_json of the path variable, gRPC framing, de-framing, to_json.
--   LUA_PATH="lua/?.lua;;" LUA_CPATH="build/luajit/?.so;;" luajit bench/gateway_parts.lua [N]
local dynpb = require "dynpb"
local router = require "dynpb.router"
local grpc = require "dynpb.grpc"
local N = tonumber(arg[1]) or 200000
local s = assert(dynpb.load_file("spec/fixtures/gateway/gateway_v1.pb"))
local r = assert(router.http_router(s))
local m = r:match("GET", "/v1/shops/42")
local reply = s:encode("gw.v1.Reply", { req = { shop = "42" }, method = "/gw.v1.Shops/GetShop",
                                        metadata = { ["content-length"] = "9" } })
local framed = grpc.frame(reply)
local opts = { unresolved_any = "raw" }
local function time(name, f)
  local t = os.clock()
  for _ = 1, N do f() end
  local us = (os.clock() - t) / N * 1e6
  print(string.format("%-28s %6.2f us", name, us))
  return us
end
local total = 0
total = total + time("router:match", function() r:match("GET", "/v1/shops/42") end)
total = total + time("from_json (path variable)", function() m.input:from_json('{"shop":"42"}') end)
total = total + time("grpc.frame", function() grpc.frame("\10\0024" .. "2") end)
total = total + time("grpc.reader feed + finish", function()
  local rd = grpc.reader{}; rd:feed(framed); rd:finish() end)
total = total + time("to_json (the reply)", function() m.output:to_json(reply, opts) end)
print(string.format("%-28s %6.2f us", "total", total))
