-- booking.lua -- handlers of the dynpb OpenResty example (examples/openresty/nginx.conf).
--
--   POST /booking          body: a shop.v1.Booking in protobuf binary; answers with
--                          the enum names under the schema this worker has now
--   GET  /constants?enum=  the constants of an enum (default shop.v1.ServiceType)
--   GET  /dynpb/status     this worker's view and the fetcher's counters
--
-- Every answer ends with the worker pid and the schema fingerprint, so a
-- client can see which worker answered with which version.
local resty = require "dynpb.resty"

local _M = {}

local NAME = "domain"
local DECODE_OPTS = { enums = "number" }   -- numbers; names come from the constants table

local function schema_or_503()
  local domain, err = resty.get(NAME)      -- never blocks
  if not domain then
    ngx.status = 503
    ngx.say("no schema yet: ", err)
  end
  return domain
end

local function tail(domain)
  return string.format("pid=%d schema=%s", ngx.worker.pid(), domain.fingerprint:sub(1, 12))
end

function _M.booking()
  local domain = schema_or_503()
  if not domain then return end
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if not body and ngx.req.get_body_file() then
    ngx.status = 413
    ngx.say("body too large for client_body_buffer_size")
    return
  end
  local t, err = domain:decode("shop.v1.Booking", body or "", DECODE_OPTS)
  if not t then
    ngx.status = 400
    ngx.say(err)
    return
  end
  local service = domain:enum("shop.v1.ServiceType")
  local status = domain:enum("shop.v1.BookingStatus")
  ngx.say(string.format("id=%s service=%s status=%s amount_cents=%s %s",
    t.id or "", service[t.service or 0] or ("UNKNOWN(" .. tostring(t.service) .. ")"),
    status[t.status or 0] or ("UNKNOWN(" .. tostring(t.status) .. ")"),
    tostring(t.amount_cents or 0), tail(domain)))
end

function _M.constants()
  local domain = schema_or_503()
  if not domain then return end
  local name = ngx.var.arg_enum or "shop.v1.ServiceType"
  local values, err = domain:enum_values(name)
  if not values then
    ngx.status = 404
    ngx.say(err)
    return
  end
  local C, out = domain:enum(name), {}
  for i, v in ipairs(values) do out[i] = v.name .. "=" .. C[v.name] end
  ngx.say(table.concat(out, " "), " ", tail(domain))
end

function _M.status()
  local s, err = resty.stats(NAME)
  if not s then
    ngx.status = 503
    ngx.say(err)
    return
  end
  local f = s.fetcher
  ngx.say(string.format(
    "pid=%d leader=%s fingerprint=%s shared=%s loads=%d updates=%d errors=%d "
    .. "fetcher_pid=%s fetches=%s not_modified=%s changes=%s fetch_errors=%s version=%s last_error=%s",
    s.pid, tostring(s.leader), tostring(s.fingerprint):sub(1, 12),
    tostring(s.shared_fingerprint):sub(1, 12), s.loads, s.updates, s.errors,
    tostring(f.pid), tostring(f.fetches), tostring(f.not_modified), tostring(f.changes),
    tostring(f.errors), tostring(f.version), tostring(f.last_error)))
end

return _M
