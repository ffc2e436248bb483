-- spec/readme_check.sh (make readme-check) on small READMEs: it runs the
-- marked blocks in order in one shell, saves file= blocks, checks expect=,
-- and fails on a failing command, a missing line or a stray marker.
-- It tests a shell script, not Lua: run on Lua 5.4 only (each case copies the checkout).
if T.lua ~= "lua5.4" then return end

local SCRIPT = T.root .. "/spec/readme_check.sh"

local function run(md)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(md)
  f:close()
  -- without the ASan preload of `make asan`: the script's own tools (cp,
  -- make, python) are not built with ASan and abort under it
  local p = assert(io.popen("env -u LD_PRELOAD sh '" .. SCRIPT .. "' '" .. path .. "' 2>&1; echo \"rc=$?\""))
  local out = p:read("*a")
  p:close()
  os.remove(path)
  return tonumber(out:match("rc=(%d+)%s*$")), out
end

local function block(marker, body) return marker .. "\n```sh\n" .. body .. "\n```\n\n" end

describe("make readme-check", function()
  it("runs the marked blocks in order in one shell, from the copy's top; skips unmarked ones", function()
    local rc, out = run("# t\n\n"
      .. block("<!-- readme-check file=note.txt -->", "saved 9090")
      .. block("<!-- readme-check -->", "cd lua; X=kept; test -f ../Makefile")
      .. block("", "exit 3")
      .. block('<!-- readme-check expect="^kept saved [0-9]+$" -->', 'echo "$X $(cat note.txt)"; test -f Makefile'))
    assert.equal(0, rc, out)
    assert.matches("3 marked blocks of README.md ran as written", out)
    assert.is_nil(out:find("saved 9090", 1, true), "port 9090 is replaced by a free port")
  end)

  it("fails on a failing command, naming the block's line", function()
    local rc, out = run("# t\n\n" .. block("<!-- readme-check -->", "echo one\nfalse\necho never"))
    assert.equal(1, rc)
    assert.matches("README.md:3: the block failed %(exit 1%)", out)
    assert.is_nil(out:find("| never", 1, true))
  end)

  it("fails when no output line matches expect", function()
    local rc, out = run("# t\n\n" .. block('<!-- readme-check expect="two" -->', "echo one"))
    assert.equal(1, rc)
    assert.matches("README.md:3: no output line matches: two", out)
  end)

  it("fails on a marker without a block, and on a README without marked blocks", function()
    local rc, out = run("# t\n\n<!-- readme-check -->\ntext\n")
    assert.equal(1, rc)
    assert.matches("README.md:3: the marker is not followed by a fenced block", out)
    rc, out = run("# t\n\n```sh\necho hi\n```\n")
    assert.equal(1, rc)
    assert.matches("no marked blocks", out)
  end)
end)
