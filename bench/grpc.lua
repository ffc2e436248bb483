-- bench/grpc.sh runs this: PORT SET.pb
local dynpb = require "dynpb"
local grpc = require "dynpb.grpc"
local now = require("dynpb.grpc_core").now
local s = assert(dynpb.load_file(arg[2]))
local c = grpc.client{ url = "http://127.0.0.1:" .. arg[1], schema = s }
assert(c:call("test.v1.Echo/Say", { text = "warm-up" }))

local t0 = now()
for _ = 1, 1000 do assert(c:call("test.v1.Echo/Say", { text = "x" })) end
local dt = now() - t0
print(string.format("unary calls          1000 in %.2f s  %6.0f calls/s  connections opened: %d",
  dt, 1000 / dt, c:stats().connects))

local n = 0
t0 = now()
for _ in c:stream("test.v1.Echo/Count", { count = 5000 }) do n = n + 1 end
dt = now() - t0
print(string.format("server stream        %d messages in %.2f s  %6.0f msgs/s", n, dt, n / dt))

local big = ("p"):rep(4 * 1024 * 1024 - 1024)
t0 = now()
for _ = 1, 10 do assert(c:call("test.v1.Echo/Say", { payload = big })) end
dt = now() - t0
print(string.format("4 MiB echo (both ways) 10 in %.2f s  %6.1f MiB/s each way", dt, 40 / dt))

local f = grpc.frame(big)
local c0 = os.clock()
for _ = 1, 10 do
  local r = grpc.reader()
  for i = 1, #f, 16384 do r:feed(f:sub(i, i + 16383)) end
end
print(string.format("reader alone         10 x 4 MiB in 16 KiB chunks: %.3f s CPU", os.clock() - c0))
