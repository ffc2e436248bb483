-- spec/openresty/grpcweb.lua -- the gRPC-Web client side of spec/openresty/gateway.sh
-- (run with luajit and build/luajit/dynpb.so):
--   grpcweb.lua encode SET.pb TYPE JSON           one frame of TYPE from JSON, on stdout
--   grpcweb.lua decode SET.pb TYPE [text] < BODY  each data frame as JSON, one per line,
--                                                 then "trailers: k=v; ..." (sorted)
local dynpb = require "dynpb"
local grpc = require "dynpb.grpc"
local mode, set, tname, extra = arg[1], arg[2], arg[3], arg[4]
local s = assert(dynpb.load_file(set))
local H = assert(s:message(tname))
if mode == "encode" then
  io.write(grpc.frame(assert(H:from_json(extra))))
  return
end
local body = io.read("*a")
if extra == "text" then
  local d = grpc.web_text_decoder()
  body = assert(d:feed(body))
  assert(d:finish())
end
local r = grpc.reader{ web = true }
local msgs = assert(r:feed(body))
assert(r:finish())
for _, m in ipairs(msgs) do print(assert(H:to_json(m))) end
local keys = {}
for k in pairs(r.trailers or {}) do keys[#keys + 1] = k end
table.sort(keys)
local t = {}
for _, k in ipairs(keys) do
  local v = r.trailers[k]
  if k:sub(-4) == "-bin" then v = "<" .. #v .. " bytes>" end
  t[#t + 1] = k .. "=" .. v
end
print("trailers: " .. (r.trailers and table.concat(t, "; ") or "none"))
