-- Regenerates the seed corpus of the fuzz harnesses (csrc/fuzz/corpus/).
--   LUA_CPATH="build/lua5.4/?.so;;" lua5.4 csrc/fuzz/make_corpus.lua
-- (run from the repository root after `make`). The seeds are committed;
-- rerun this after changing the fixtures or the harness input formats.
local dynpb = require "dynpb"

local function read(p)
  local f = assert(io.open(p, "rb")); local s = f:read("a"); f:close(); return s
end
local function write(dir, name, s)
  os.execute("mkdir -p csrc/fuzz/corpus/" .. dir)
  local f = assert(io.open("csrc/fuzz/corpus/" .. dir .. "/" .. name, "wb"))
  f:write(s); f:close()
end
local function varint(n)
  local out = {}
  repeat
    local b = n % 128; n = n // 128
    out[#out + 1] = string.char(n > 0 and b + 128 or b)
  until n == 0
  return table.concat(out)
end
local function len(num, s) return varint(num * 8 + 2) .. varint(#s) .. s end
local function vint(num, v) return varint(num * 8) .. varint(v) end

local SHOP, LEGACY = read("spec/fixtures/shop.pb"), read("spec/fixtures/legacy.pb")
local shop, legacy = assert(dynpb.load(SHOP)), assert(dynpb.load(LEGACY))
local Order, Record = shop:message("shop.v1.Order"), legacy:message("legacy.Record")

-- decode: byte 0 = selector (type = sel % 4: Order, Record, Order.Line, Item;
-- options = sel // 4 % 8), then the payload
local order = assert(Order:encode{ id = 5, user_id = -7, user_name = "h\195\169llo",
  token = "\0\1", verified = true, balance = 1.5, score = 0.25, color = "BLUE", flags = 9,
  delta = -3, address = { street = "x", zip = 1 }, tags = { 1, 2, 300 },
  items = { { id = 1, name = "a", price = 2.5 }, { id = 2, qty = -1 } },
  attrs = { b = "2", a = "1" }, items_by_id = { [3] = { name = "c" }, [-1] = {} },
  card = "visa", priority = 0, unpacked = { 5, 6 }, f32 = 7, f64 = 8, sf32 = -9, sf64 = -10,
  s32 = -11, notes = { "x", "" }, colors = { "RED", 7 }, parent = { id = 1, parent = { id = 2 } },
  lines = { { sku = "k", kind = "GOODS" } }, big = math.maxinteger, big_number = 3, huge_number = 4 })
local record = assert(Record:encode{ id = 1, name = "r", big = -5, ubig = 7, ratio = 0.1,
  on = false, raw = "\255", level = "HIGH", plain_level = "LOW", nums = { 1, 2 },
  packed_nums = { 3, 4 }, extra = { a = 1, b = "b" }, entry = { { k = 1 }, { k = 2 } },
  child = { id = 2, child = { id = 3 } }, levels = { "LOW", "MID" } })
write("decode", "order", "\0" .. order)
write("decode", "order-int64-string", "\4" .. order)
write("decode", "order-defaults", "\12" .. order)
write("decode", "record", "\1" .. record)
write("decode", "record-defaults", "\13" .. record)
write("decode", "record-unknown", "\1" .. record .. vint(99, 1) .. len(98, "xyz") .. varint(97 * 8 + 3) .. vint(1, 1) .. varint(97 * 8 + 4))
write("decode", "line", "\2" .. len(1, "sku") .. vint(2, 2))
write("decode", "nested-merge", "\0" .. len(28, vint(1, 1)) .. len(28, len(28, vint(1, 2))))
write("decode", "packed-and-not", "\0" .. len(12, "\1\2\3") .. vint(12, 4) .. len(19, "\5\6"))

-- load: descriptor sets (the fixtures, and small hand-made ones)
write("load", "shop", SHOP)
write("load", "legacy", LEGACY)
write("load", "editions", read("spec/fixtures/editions/ed2024.binpb"))   -- issue 14
local function field(name, number, label, ty, tn)
  local s = len(1, name) .. vint(3, number) .. vint(4, label) .. vint(5, ty)
  if tn then s = s .. len(6, tn) end
  return s
end
-- self-referential and mutually recursive messages, an enum, a oneof
local node = len(1, "Node") .. len(2, field("next", 1, 1, 11, ".r.Node"))
  .. len(2, field("kids", 2, 3, 11, ".r.Node")) .. len(2, field("other", 3, 1, 11, ".r.Other"))
  .. len(2, field("e", 4, 1, 14, ".r.E"))
local other = len(1, "Other") .. len(2, field("back", 1, 1, 11, ".r.Node"))
local enum = len(1, "E") .. len(2, len(1, "A") .. vint(2, 0)) .. len(2, len(1, "B") .. vint(2, 1))
local file = len(1, "r.proto") .. len(2, "r") .. len(4, node) .. len(4, other) .. len(5, enum)
  .. len(12, "proto3")
write("load", "recursive", len(1, file))
-- a map field (synthesized entry message with map_entry = true)
local entry = len(1, "AEntry") .. len(2, field("key", 1, 1, 9)) .. len(2, field("value", 2, 1, 5))
  .. len(7, vint(7, 1))
local m = len(1, "M") .. len(2, field("a", 1, 3, 11, ".m.M.AEntry")) .. len(3, entry)
write("load", "map", len(1, len(1, "m.proto") .. len(2, "m") .. len(4, m) .. len(12, "proto3")))

-- encode: byte 0 = selector, then the builder program (see fuzz_encode.c)
write("encode", "empty", "\0")
write("encode", "fields", "\0" .. "\0\5\9\0" .. "\3\3abc\9\2" .. "\4\1\9\4" .. "\7\0\9\5")
write("encode", "nested", "\0" .. "\5\0\9\27" .. "\13\1" .. "\0\7\9\0")
write("encode", "cycle", "\0" .. "\14\0\9\27")
write("encode", "metatable", "\1" .. "\15\6" .. "\0\1\9\0")
write("encode", "map", "\0" .. "\19\1\2\9\13")
print("corpus written")
