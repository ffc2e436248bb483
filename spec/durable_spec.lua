-- dynpb.write_durable: the snapshot writer of dynpb.registry and dynpb.resty.
-- Crash safety is checked in child processes with an LD_PRELOAD shim
-- (spec/support/failsys.c, built here) that fails, or kills the process
-- before, each file-system step in turn; the system calls are checked
-- under strace.
local dynpb = require "dynpb"

local LUA = T.lua
local function sh_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function run(cmd)
  local ok, how, code = os.execute(cmd)
  if type(ok) == "number" then return ok == 0, ok end       -- 5.1, LuaJIT without 5.2 compat
  return ok == true, code
end

local function mkdtemp(tag)
  local p = os.tmpname()
  os.remove(p)
  p = p .. "-" .. tag
  assert(run("mkdir -p " .. sh_quote(p)))
  return p
end

local function rmrf(p)
  if p and p:match("^/tmp/") then os.execute("rm -rf " .. sh_quote(p)) end
end

local function write_file(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
end

local function ls(dir)
  local names, p = {}, io.popen("ls -A " .. sh_quote(dir))
  for l in p:lines() do names[#names + 1] = l end
  p:close()
  table.sort(names)
  return names
end

local function have(cmd) return run("command -v " .. cmd .. " >/dev/null 2>&1") end

-- a Lua child running `code` with this build's package paths; returns ok, exit code
local function child(code, env)
  local prelude = string.format("package.cpath = %q; package.path = %q; ", package.cpath, package.path)
  local cmd = (env or "") .. " " .. LUA .. " -e " .. sh_quote(prelude .. code) .. " 2>&1"
  local p = io.popen(cmd .. "; echo \"exit=$?\"")
  local out = p:read("*a")
  p:close()
  local code_ = tonumber(out:match("exit=(%d+)%s*$"))
  return out:gsub("exit=%d+%s*$", ""), code_
end

describe("dynpb.write_durable", function()
  local dir
  before_each(function() dir = mkdtemp("durable") end)
  after_each(function() rmrf(dir) end)

  it("replaces a file, mode 0644 minus the umask, leaving no temp file", function()
    local path = dir .. "/snap.pb"
    assert.is_true(dynpb.write_durable(path, "one"))
    assert.equal("one", T.read(path))
    assert.is_true(dynpb.write_durable(path, ("\0\1two"):rep(1000)))
    assert.equal(("\0\1two"):rep(1000), T.read(path))
    assert.same({ "snap.pb" }, ls(dir))
    local p = io.popen("umask 022; stat -c %a " .. sh_quote(path))
    assert.equal("644", p:read("*l"))
    p:close()
    -- a relative path: the directory is "."
    local out, code = child(string.format(
      "local d = require 'dynpb'; assert(d.write_durable('rel.pb', 'r')); io.write('ok')"),
      "cd " .. sh_quote(dir) .. " &&")
    assert.equal(0, code, out)
    assert.equal("r", T.read(dir .. "/rel.pb"))
  end)

  it("replaces a symlink at the path instead of writing through it", function()
    local victim = dir .. "/victim"
    write_file(victim, "precious")
    assert(run("ln -s " .. sh_quote(victim) .. " " .. sh_quote(dir .. "/snap.pb")))
    assert.is_true(dynpb.write_durable(dir .. "/snap.pb", "new"))
    assert.equal("precious", T.read(victim))
    assert.equal("new", T.read(dir .. "/snap.pb"))
    local p = io.popen("test -L " .. sh_quote(dir .. "/snap.pb") .. " && echo link || echo file")
    assert.equal("file", p:read("*l"))
    p:close()
  end)

  it("returns nil, err naming the path and the step", function()
    local ok, err = dynpb.write_durable(dir .. "/no/such/dir/x.pb", "x")
    assert.is_nil(ok)
    assert.equal("dynpb: write_durable " .. dir .. "/no/such/dir/x.pb: create the temp file: "
      .. "No such file or directory", err)
    assert.has_error(function() dynpb.write_durable(dir .. "/x", nil) end)
    assert.has_error(function() dynpb.write_durable("", "x") end)
    assert.has_error(function() dynpb.write_durable("a\0b", "x") end)
  end)

  it("makes the calls a durable store makes, in order (strace)", function()
    assert.truthy(have("strace"), "strace is not installed (.ci/deps.sh installs it)")
    local path = dir .. "/snap.pb"
    local log = dir .. "/strace.log"
    local out, code = child(string.format(
      "local d = require 'dynpb'; assert(d.write_durable(%q, ('x'):rep(100000))); "
      .. "assert(d.write_durable(%q, 'second'))", path, path),
      -- (LeakSanitizer cannot run under ptrace: make asan's children skip it here)
      "ASAN_OPTIONS=detect_leaks=0 strace -f -qq -o " .. sh_quote(log) .. " -e trace=open,openat,write,fsync,fdatasync,close,rename,renameat,renameat2")
    assert.equal(0, code, out)
    -- the lines about our files, in order
    local lines = {}
    for l in io.lines(log) do
      l = l:gsub("^%d+%s+", "")
      if l:find(dir, 1, true) or l:match("^write%(") or l:match("^fsync%(") or l:match("^close%(") then
        lines[#lines + 1] = l
      end
    end
    local i, tmps = 1, {}
    local function expect(pat)
      while i <= #lines do
        local l = lines[i]
        i = i + 1
        local c = { l:match(pat) }
        if c[1] then return (table.unpack or unpack)(c) end
      end
      error("no line matching " .. pat .. " in:\n" .. table.concat(lines, "\n"))
    end
    local qdir = dir:gsub("%p", "%%%0")
    for round = 1, 2 do
      local tmp, fd = expect('^openat%(AT_FDCWD, "(' .. qdir .. '/snap%.pb%.%x+%.tmp)", '
        .. 'O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, 0644%)%s*= (%d+)$')
      assert.matches("/snap%.pb%.%x%x%x%x%x%x%x%x%x%x%x%x%.tmp$", tmp)
      tmps[round] = tmp
      expect("^write%(" .. fd .. ", ")
      expect("^fsync%(" .. fd .. "%)%s*= 0$")
      expect("^close%(" .. fd .. "%)%s*= 0$")
      expect('^rename%("' .. tmp:gsub("%p", "%%%0") .. '", "' .. qdir .. '/snap%.pb"%)%s*= 0$')
      local dfd = expect('^openat%(AT_FDCWD, "' .. qdir .. '", O_RDONLY|O_CLOEXEC|O_DIRECTORY%)%s*= (%d+)$')
      expect("^fsync%(" .. dfd .. "%)%s*= 0$")
      expect("^close%(" .. dfd .. "%)%s*= 0$")
    end
    assert.are_not.equal(tmps[1], tmps[2])          -- a fresh unpredictable name each time
    assert.equal("second", T.read(path))
  end)

  describe("under injected faults (LD_PRELOAD shim)", function()
    local shim, shimdir
    setup(function()
      shimdir = mkdtemp("failsys")
      shim = shimdir .. "/failsys.so"
      local ok = run("env -u LD_PRELOAD cc -shared -fPIC -O1 -o " .. sh_quote(shim) .. " "
        .. sh_quote(T.specdir .. "/support/failsys.c") .. " -ldl")
      assert(ok, "cannot build spec/support/failsys.c")
    end)
    teardown(function() rmrf(shimdir) end)

    local OLD, NEW = ("old-"):rep(50000), ("NEW+"):rep(60000)

    -- runs write_durable(path, NEW) in a child with the shim; returns output, exit code
    local function faulty(path, at, mode, log)
      local env = string.format("FAILSYS_MARK=%s FAILSYS_AT=%d FAILSYS_MODE=%s%s LD_PRELOAD=%s",
        sh_quote(dir), at, mode, log and (" FAILSYS_LOG=" .. sh_quote(log)) or "",
        sh_quote(((os.getenv("LD_PRELOAD") or "") .. " " .. shim):gsub("^ ", "")))
      return child(string.format(
        "local d = require 'dynpb'; local f = assert(io.open(%q, 'rb')); local new = f:read('*a'); f:close(); "
        .. "local ok, err = d.write_durable(%q, new); io.write(tostring(ok), ' ', tostring(err))",
        shimdir .. "/new.bin", path), env)
    end

    it("leaves the old or the new file, whole, when any step fails or the process dies", function()
      local path = dir .. "/snap.pb"
      write_file(shimdir .. "/new.bin", NEW)     -- the child reads the new bytes from here
      -- a clean run through the shim counts the steps
      write_file(path, OLD)
      local log = shimdir .. "/steps.log"
      os.remove(log)
      local out, code = faulty(path, 0, "fail", log)
      assert.equal(0, code, out)
      assert.equal("true nil", out)
      local steps = {}
      for l in io.lines(log) do steps[#steps + 1] = l:match("^%d+ (%a+)$") end
      assert.same({ "open", "write", "fsync", "close", "rename", "open", "fsync", "close" }, steps)
      local RENAME = 5
      local WANT = { "create the temp file", "write the temp file", "fsync the temp file",
                     "close the temp file", "rename the temp file over it",
                     "fsync its directory", "fsync its directory" }
      for n = 1, #steps do
        -- the step fails: nil, err; the old file stays (or the new one, once renamed)
        write_file(path, OLD)
        out, code = faulty(path, n, "fail")
        assert.equal(0, code, out)
        local after = T.read(path)
        if n < #steps then           -- a failing close of the directory is not an error
          assert.matches("^nil dynpb: write_durable " .. path:gsub("%p", "%%%0") .. ": ", out)
          assert.truthy(out:find(WANT[n], 1, true), "step " .. n .. ": " .. out)
          assert.truthy(out:find("Input/output error", 1, true), out)
        end
        assert.equal(n <= RENAME and #OLD or #NEW, #after, "step " .. n)
        assert.is_true(after == (n <= RENAME and OLD or NEW), "step " .. n .. ": a mix of old and new")
        assert.same({ "snap.pb" }, ls(dir), "step " .. n .. ": a temp file was left behind")
        -- the process dies just before the step: old or new, whole; at most a temp file left
        write_file(path, OLD)
        out, code = faulty(path, n, "kill")
        assert.are_not.equal(0, code, "step " .. n .. ": the child was not killed: " .. out)
        after = T.read(path)
        assert.is_true(after == (n <= RENAME and OLD or NEW), "kill before step " .. n .. ": a mix")
        local names = ls(dir)
        for _, name in ipairs(names) do
          assert.is_true(name == "snap.pb" or name:match("^snap%.pb%.%x+%.tmp$") ~= nil, name)
        end
        -- whatever a crash left, the next write succeeds and cleans nothing it does not own
        assert.is_true(dynpb.write_durable(path, OLD))
        assert.equal(OLD, T.read(path))
        os.execute("rm -f " .. sh_quote(dir) .. "/snap.pb.*.tmp")
      end
    end)

    it("keeps dynpb.registry's last good snapshot when writing it fails", function()
      local path = dir .. "/snap.pb"
      local v1 = T.read(T.root .. "/examples/schemas/domain_v1.pb")
      local v2 = T.read(T.root .. "/examples/schemas/domain_v2.pb")
      local src = dir .. "/source.pb"        -- not renamed by the registry: not counted
      write_file(src, v1)
      write_file(path, v1)
      -- the registry fetches v2 from file://; writing the snapshot fails at the rename (5)
      write_file(src, v2)
      local env = string.format("FAILSYS_MARK=%s FAILSYS_AT=5 FAILSYS_MODE=fail LD_PRELOAD=%s",
        sh_quote(dir .. "/snap"), sh_quote(((os.getenv("LD_PRELOAD") or "") .. " " .. shim):gsub("^ ", "")))
      local out, code = child(string.format([[
        local errs = {}
        local reg = assert(require('dynpb.registry').new{ url = 'file://' .. %q, snapshot = %q,
          on_error = function(e) errs[#errs + 1] = e end })
        io.write(reg:schema().fingerprint, ' ', #errs, ' ', tostring(errs[1]))]], src, path), env)
      assert.equal(0, code, out)
      assert.truthy(out:find(dynpb.fingerprint(v2) .. " 1 dynpb: registry: cannot write snapshot '" .. path .. "': rename", 1, true), out)
      assert.truthy(out:find("rename the temp file over it: Input/output error", 1, true), out)
      assert.equal(v1, T.read(path))                -- the last good snapshot, whole
      assert.same({ "snap.pb", "source.pb" }, ls(dir))
    end)
  end)
end)
