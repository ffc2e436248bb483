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
      for _, at in ipairs { 1, math.floor((n + 1) / 2), n } do
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
end)
