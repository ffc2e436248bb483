-- Shared by the gRPC specs: compile test protos with protoc, start and stop
-- the real servers (python3-grpcio, grpc-js, nginx) on 127.0.0.1 with
-- OS-chosen ports, and stop them by pid.
local E = {}

E.fixtures = T.specdir .. "/fixtures/grpc"
-- make asan / valgrind / gc-stress: smaller loops (the servers are real all the same)
E.slow = T.gc_stress or os.getenv("DYNPB_VALGRIND") ~= nil or os.getenv("DYNPB_SLOW") ~= nil
E.python = "/usr/bin/python3"   -- Debian's, with python3-grpcio and python3-protobuf

-- every command runs in `sh -c` without the sanitizer runtime that make
-- asan preloads (servers, protoc and the shell are not instrumented)
local function wrap(cmd)
  return "env -u LD_PRELOAD -u ASAN_OPTIONS -u LSAN_OPTIONS -u UBSAN_OPTIONS sh -c '"
    .. cmd:gsub("'", "'\\''") .. "'"
end
local function sh(cmd)
  local ok = os.execute(wrap(cmd))
  return ok == true or ok == 0
end
E.sh = sh

function E.tmpdir()
  sh("mkdir -p '" .. T.root .. "/build'")
  local p = io.popen(wrap("realpath \"$(mktemp -d '" .. T.root .. "/build/grpc-spec.XXXXXX' 2>/dev/null || mktemp -d)\""))
  local d = p:read("*l")
  p:close()
  return d
end

-- protoc the given files (relative to dir) into a descriptor set (with imports)
function E.protoc(dir, files, out)
  local cmd = string.format("protoc -I'%s' -I/usr/include --include_imports --descriptor_set_out='%s' %s",
    dir, out, table.concat(files, " "))
  assert(sh(cmd), "protoc failed: " .. cmd)
  return T.read(out)
end

-- runs cmd (must `exec` the server) with popen; the server's first stdout
-- line is "PORT PID"
function E.start(cmd, what)
  local pipe = assert(io.popen(wrap(cmd), "r"))
  local line = pipe:read("*l")
  local port, pid = (line or ""):match("^(%d+) (%d+)$")
  if not port then
    pipe:close()
    -- the usual cause on a fresh machine: the test servers (npm @grpc/grpc-js,
    -- python3-grpcio) were never installed; make test installs them, make check does not
    error((what or "server") .. " did not start: " .. tostring(line) .. " (" .. cmd .. ")"
      .. "; if the test servers are not installed, run `make grpc-deps` first")
  end
  return { pipe = pipe, port = tonumber(port), pid = pid, url = "http://127.0.0.1:" .. port }
end

function E.stop(s)
  if s and s.pipe then
    sh("kill " .. s.pid .. " 2>/dev/null")
    s.pipe:close()
    s.pipe = nil
  end
end

function E.have_python_grpc()
  return sh(E.python .. " -c 'import grpc, google.protobuf' 2>/dev/null")
end

-- E.pin_apart() --> cpu, restore | nil. Pins this process to one of the
-- CPUs it may use (taskset, util-linux) and returns another one for a server
-- (start it with `taskset -c CPU`), and restore() giving this process its
-- CPUs back; nil with fewer than two CPUs or without taskset. For races
-- that depend on whether client and server run at the same time
-- (grpc_client_spec, grpc-js).
function E.pin_apart()
  local f = io.open("/proc/self/stat")
  local pid = f and f:read("*l"):match("^(%d+)")
  if f then f:close() end
  if not pid then return nil end
  local p = io.popen(wrap("taskset -cp " .. pid .. " 2>/dev/null"))
  local list = (p:read("*l") or ""):match("affinity list: ([%d,%-]+)$")
  p:close()
  if not list then return nil end
  local cpus = {}
  for a, b in list:gmatch("(%d+)%-?(%d*)") do
    for cpu = tonumber(a), tonumber(b ~= "" and b or a) do cpus[#cpus + 1] = cpu end
  end
  if #cpus < 2 or not sh("taskset -cp " .. cpus[1] .. " " .. pid .. " >/dev/null 2>&1") then return nil end
  return cpus[2], function() sh("taskset -cp " .. list .. " " .. pid .. " >/dev/null 2>&1") end
end

-- a free TCP port on 127.0.0.1 (bound to 0 then released), for servers
-- that cannot listen on port 0 (nginx)
function E.free_port()
  local p = io.popen(wrap(E.python .. [[ -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])']]))
  local port = tonumber(p:read("*l"))
  p:close()
  return port
end

return E
