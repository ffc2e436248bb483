-- bench.Large as a plain Lua table (~64 KB encoded), built deterministically
-- from the Order of bench_data.lua with varied ids and strings, so strings are
-- mostly distinct (as in real traffic). fixtures/large.txtpb is written from
-- this table by gen_fixtures.lua; run.lua checks that decoding
-- fixtures/large.bin gives back exactly this table.
local data = require "bench_data"

local NORDERS, NITEMS, NNOTES = 100, 300, 250

local function copy(t)
  if type(t) ~= "table" then return t end
  local r = {}
  for k, v in pairs(t) do r[k] = copy(v) end
  return r
end

local statuses = { "ACTIVE", "SUSPENDED", "DELETED" }

local function order(i)
  local o = copy(data.order)
  o.id = 100000 + i
  o.user_id = 9876543210000 + i * 7919
  o.user_name = "User number " .. i
  o.email = ("user%d@example.com"):format(i)
  o.status = statuses[i % 3 + 1]
  o.verified = (i % 3 ~= 0) or nil     -- proto3: false is absent
  o.balance = i * 1.25
  o.delta = -i * 1000003
  o.flags = i * 17
  o.address.street = ("%d Long Street Name Avenue"):format(i)
  o.address.zip = 10000 + i
  for j, it in ipairs(o.items) do
    it.id = i * 10 + j
    it.name = ("%s #%d"):format(it.name, i)
  end
  o.attrs.campaign = "campaign-" .. i
  o.attrs.session = ("s%08x"):format(i * 2654435761 % 4294967296)
  o.created_at = 1700000000000 + i * 1000
  if i % 5 == 0 then o.status = nil end       -- proto3 default: absent
  if i % 7 == 0 then o.token = nil end
  return o
end

local function build()
  local t = { orders = {}, items = {}, notes = {}, generated_at = 1700000009999 }
  for i = 1, NORDERS do t.orders[i] = order(i) end
  for i = 1, NITEMS do
    t.items[i] = { id = 500000 + i, name = ("Catalogue item %d"):format(i), price = i / 4, qty = i % 50 + 1 }
  end
  for i = 1, NNOTES do
    t.notes[i] = ("note %d: the quick brown fox jumps over the lazy dog"):format(i):sub(1, 20 + i % 40)
  end
  return t
end

return { build = build }
