-- encode's fast paths (issue 17) and the checked paths they hand over to:
-- every input below is one a fast path assumes away; the bytes or the error
-- must be those of the checked path.
local dynpb = require "dynpb"

local S = assert(dynpb.load_proto {
  files = { "fast.proto" },
  sources = { ["fast.proto"] = [[
    syntax = "proto3";
    package fast;
    message M {
      int32 inf = 1;          // the text of an infinity is a field name
      string nan = 2;
      int32 id = 3;
      repeated int32 tags = 4;
      repeated string words = 5;
      map<string, string> attrs = 6;
      map<string, bytes> blobs = 7;
      repeated M kids = 8;
      map<int32, string> byint = 9;
      map<string, M> sub = 10;
    }
  ]] },
})
local M = assert(S:message("fast.M"))

describe("encode fast paths", function()
  it("a number key whose text is a field name is still a number key", function()
    local ok, err = M:encode({ [math.huge] = 1 })
    assert.is_nil(ok)
    assert.equal("dynpb: encode fast.M: a number key is not a field of fast.M", err)
    ok, err = M:encode({ inf = 1, [1] = 2 })
    assert.is_nil(ok)
    assert.equal("dynpb: encode fast.M: a number key is not a field of fast.M", err)
    ok, err = M:encode({ kids = { { id = 1 }, { [-math.huge] = 1 } } })
    assert.is_nil(ok)
    assert.equal("dynpb: encode fast.M: field 'kids[2]': a number key is not a field of fast.M", err)
    -- and the field of that name is written from its string key
    assert.equal("\8\5", assert(M:encode({ inf = 5 })))
    assert.equal("\18\1x", assert(M:encode({ nan = "x" })))
  end)

  it("number keys are skipped with ignore_unknown_keys, and the table is unchanged", function()
    local t = { id = 7, [1] = "a", [2.5] = "b", [math.huge] = "c", bogus = 1 }
    assert.equal("\24\7", assert(M:encode(t, { ignore_unknown_keys = true })))
    assert.equal("a", t[1]); assert.equal("b", t[2.5]); assert.equal("c", t[math.huge])
    for k in pairs(t) do assert.is_true(type(k) == "number" or k == "id" or k == "bogus") end
  end)

  it("dynpb.UNKNOWN is written last, whatever the table order", function()
    for i = 1, 20 do
      local t = { id = i, [dynpb.UNKNOWN] = "\200\1\1", inf = 1 }
      assert.equal("\8\1\24" .. string.char(i) .. "\200\1\1", assert(M:encode(t)))
    end
  end)

  it("repeated fields: the elements of long arrays, then a hole or a bad element", function()
    local tags, words, back = {}, {}, nil
    for i = 1, 100 do tags[i] = i * 1000; words[i] = "w" .. i end
    back = assert(M:decode(assert(M:encode({ tags = tags, words = words }))))
    assert.same(tags, back.tags)
    assert.same(words, back.words)
    tags[40] = 1.5
    local ok, err = M:encode({ tags = tags })
    assert.is_nil(ok)
    assert.equal("dynpb: encode fast.M: field 'tags[40]': expected integer, got non-integral number 1.5", err)
    tags[40] = 40.0            -- an integral float is an integer
    assert.equal(40, assert(M:decode(assert(M:encode({ tags = tags })))).tags[40])
    tags[40] = "40"
    ok, err = M:encode({ tags = tags })
    assert.is_nil(ok)
    assert.equal("dynpb: encode fast.M: field 'tags[40]': expected integer, got string '40'", err)
    tags[40] = nil
    ok, err = M:encode({ tags = tags })
    assert.is_nil(ok)
    assert.equal("dynpb: encode fast.M: field 'tags': expected an array (keys 1..n), got a table with other keys", err)
  end)

  it("string maps: entries sorted by key bytes, and the checked path's errors", function()
    local attrs, keys = {}, {}
    for _, k in ipairs { "b", "a", "ab", "", "ba", "abcdefghij", "abcdefghi", "abcdefghik",
                         "abcdefgh\0", "abcdefgh", "\195\169", "z", ("k"):rep(200) } do
      attrs[k] = "v" .. k
      keys[#keys + 1] = k
    end
    table.sort(keys)
    local function len(n) return n < 128 and string.char(n) or string.char(n % 128 + 128, math.floor(n / 128)) end
    local want = {}
    for _, k in ipairs(keys) do
      local body = "\10" .. len(#k) .. k .. "\18" .. len(#attrs[k]) .. attrs[k]
      want[#want + 1] = "\50" .. len(#body) .. body
    end
    assert.equal(table.concat(want), assert(M:encode({ attrs = attrs })))
    assert.same(attrs, assert(M:decode(assert(M:encode({ attrs = attrs })))).attrs)
    -- an empty value is written too (a map entry keeps both fields)
    assert.equal("\50\5\10\1k\18\0", assert(M:encode({ attrs = { k = "" } })))
    local cases = {
      { { attrs = { a = "x", b = 5 } }, "field 'attrs[\"b\"]': expected string, got number 5" },
      { { attrs = { a = "x", [3] = "y" } }, "field 'attrs': map key must be a string, got number" },
      { { attrs = { a = "x", b = "\255" } }, "field 'attrs[\"b\"]': invalid UTF-8 in string" },
      { { attrs = { ["\255"] = "x" } }, "field 'attrs': invalid UTF-8 in map key" },
      { { blobs = { a = "\255" } }, nil },
      { { byint = { [2] = "b", [1] = "a" } }, nil },
    }
    for _, case in ipairs(cases) do
      local ok, err = M:encode(case[1])
      if case[2] then
        assert.is_nil(ok)
        assert.equal("dynpb: encode fast.M: " .. case[2], err)
      else
        assert.same(case[1], assert(M:decode(assert(ok))))
      end
    end
  end)

  it("UTF-8 is checked at every length and position, on fields, elements and map entries", function()
    for n = 1, 40 do
      local ats = { 1, math.floor((n + 1) / 2), n }
      if n <= 12 then ats = {} for at = 1, n do ats[at] = at end end   -- the short paths: every byte
      for _, at in ipairs(ats) do
        local bad = ("a"):rep(at - 1) .. "\255" .. ("a"):rep(n - at)
        local good = ("a"):rep(at - 1) .. "\195\169" .. ("a"):rep(n - at)
        local where = ("n=%d at=%d"):format(n, at)
        assert.equal("field 'nan': invalid UTF-8 in string",
          select(2, M:encode({ nan = bad })):match("field.*"), where)
        assert.equal("field 'words[2]': invalid UTF-8 in string",
          select(2, M:encode({ words = { "x", bad } })):match("field.*"), where)
        assert.equal("field 'attrs[\"k\"]': invalid UTF-8 in string",
          select(2, M:encode({ attrs = { k = bad } })):match("field.*"), where)
        assert.equal("field 'attrs': invalid UTF-8 in map key",
          select(2, M:encode({ attrs = { [bad] = "v" } })):match("field.*"), where)
        assert.equal(good, assert(M:decode(assert(M:encode({ nan = good })))).nan, where)
        assert.equal(bad, assert(M:decode(assert(M:encode({ blobs = { k = bad } })))).blobs.k, where)
      end
    end
  end)

  it("strings and bytes of every length are copied byte for byte (fields, elements, map entries)", function()
    local function len(n) return n < 128 and string.char(n) or string.char(n % 128 + 128, math.floor(n / 128)) end
    for n = 0, 70 do
      local t = {}
      for i = 1, n do t[i] = string.char(32 + (i * 7 + n) % 90) end
      local s = table.concat(t)                      -- every byte differs from its neighbours
      local where = "n=" .. n
      assert.equal(n == 0 and "" or "\18" .. len(n) .. s, assert(M:encode({ nan = s })), where)
      assert.equal("\42\1x\42" .. len(n) .. s, assert(M:encode({ words = { "x", s } })), where)
      local body = "\10" .. len(n) .. s .. "\18" .. len(n + 1) .. s .. "v"
      assert.equal("\50" .. len(#body) .. body, assert(M:encode({ attrs = { [s] = s .. "v" } })), where)
      body = "\10\1k\18" .. len(n) .. s
      assert.equal("\58" .. len(#body) .. body, assert(M:encode({ blobs = { k = s } })), where)
    end
  end)

  it("every field of messages of 1 to 300 fields is found by its key (encode's key table)", function()
    -- small messages get a table with no two names in one slot; past 256
    -- fields one try, probed: both must find every name and no other key
    for _, n in ipairs({ 1, 5, 16, 40, 64, 65, 100, 300 }) do
      local lines = { 'syntax = "proto3"; package kt; message M {' }
      for i = 1, n do lines[#lines + 1] = ("  int32 f%d_%s = %d;"):format(i, ("x"):rep(i % 7), i) end
      lines[#lines + 1] = "}"
      local s = assert(dynpb.load_proto { files = { "kt.proto" }, sources = { ["kt.proto"] = table.concat(lines, "\n") } })
      local H = assert(s:message("kt.M"))
      local all = {}
      for i = 1, n do
        local k = ("f%d_%s"):format(i, ("x"):rep(i % 7))
        all[k] = i
        assert.same({ [k] = i }, assert(H:decode(assert(H:encode({ [k] = i })))), n .. " fields: " .. k)
      end
      assert.same(all, assert(H:decode(assert(H:encode(all)))), n .. " fields: all set")
      local ok, err = H:encode({ f1_x = 1, f1 = 2 })
      assert.is_nil(ok)
      assert.equal("dynpb: encode kt.M: 'f1' is not a field of kt.M", err)
    end
  end)

  it("deep chains of wide repeated messages encode (the stack that batches of elements leave is bounded)", function()
    local N = assert(dynpb.load_proto { files = { "n.proto" }, sources = { ["n.proto"] = [[
      syntax = "proto3";
      message N { repeated N kids = 1; int32 a = 2; int32 b = 3; int32 c = 4; int32 e = 5;
                  string s = 6; int32 f = 7; int32 g = 8; int32 h = 9; }
    ]] } }):message("N")
    for _, depth in ipairs({ 40, 300 }) do
      local root = {}
      local cur = root
      for i = 1, depth do
        local kids = {}
        for k = 1, 15 do kids[k] = { a = k, b = 2, c = 3, e = 4, s = "x", f = 6, g = 7, h = 8 } end
        kids[16] = { a = i }
        cur.kids, cur = kids, kids[16]
      end
      local bytes = assert(N:encode(root, { max_depth = 1000 }))
      local back = assert(N:decode(bytes, { max_depth = 1000 }))
      local n = 0
      while back.kids do
        assert.equal(15, back.kids[15].a)
        back, n = back.kids[16], n + 1
      end
      assert.equal(depth, n)
    end
  end)

  it("after errors raised out of encodes (a finalizer's, on Lua 5.1/LuaJIT), encodes stay right", function()
    -- the per-state buffer is then marked busy for good: every later call
    -- takes the leased holder, as an encode inside an encode does. In a
    -- subprocess: a fresh heap, where the finalizers run inside the encodes
    local lua = os.getenv("DYNPB_LUA")
    if not lua or lua:match("^Lua ") then return end  -- interpreter unknown (not run by make)
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(("package.cpath = %q .. ';' .. package.cpath\n"):format(os.getenv("DYNPB_CPATH") or ""))
    f:write([==[
      local dynpb = require "dynpb"
      local S = assert(dynpb.load_proto { files = { "e.proto" }, sources = { ["e.proto"] = [[
        syntax = "proto3"; package e;
        message M { int32 id = 1; repeated M kids = 2; string s = 3; map<string, M> m = 4; } ]] } })
      local M = S:message("e.M")
      local inside, fired, raised = false, 0, 0
      local function gc() fired = fired + 1; if inside then error("boom in __gc") end end
      local big = {}
      for k = 1, 40 do big["k" .. k] = { id = k, s = ("v"):rep(k) } end  -- put_map_general allocates
      collectgarbage("setpause", 0); collectgarbage("setstepmul", 1000000)
      for i = 1, 300 do
        for _ = 1, 5 do
          if newproxy then getmetatable(newproxy(true)).__gc = gc else setmetatable({}, { __gc = gc }) end
        end
        local t = { id = i, m = big }
        inside = true
        local ok = pcall(M.encode, M, t)
        inside = false
        if not ok then raised = raised + 1 end
      end
      collectgarbage("setpause", 200); collectgarbage("setstepmul", 200); collectgarbage()
      if fired == 0 or (_VERSION == "Lua 5.1" and raised == 0) then os.exit(4) end
      local want = assert(M:encode({ id = 7, m = big }))
      for i = 1, 1000 do
        local d = assert(M:decode(assert(M:encode({ id = i, kids = { { id = 1 }, { s = ("z"):rep(i) } } }))))
        if d.id ~= i or #d.kids[2].s ~= i or M:encode({ id = 7, m = big }) ~= want then os.exit(3) end
      end
      os.exit(0)
    ]==])
    f:close()
    local r1, _, r3 = os.execute(lua .. " " .. path .. " >/dev/null 2>&1")
    os.remove(path)
    local ok = type(r1) == "number" and r1 == 0 or (r1 == true and r3 == 0)
    assert.is_true(ok, "wrong bytes, a crash, or no error raised out of an encode (exit " .. tostring(r3 or r1) .. ")")
  end)
end)
