-- dynpb.resty.gateway -- JSON/HTTP and gRPC-Web to gRPC in nginx, routed by
-- the google.api.http rules of a schema followed with dynpb.resty.
--
--   location / {
--     access_by_lua_block        { require("dynpb.resty.gateway").access{ schema = "domain" } }
--     grpc_pass                  grpc://backend;
--     header_filter_by_lua_block { require("dynpb.resty.gateway").header_filter() }
--     body_filter_by_lua_block   { require("dynpb.resty.gateway").body_filter() }
--   }
--
-- nginx's grpc_pass speaks HTTP/2 to the backend; this module only
-- transcodes:
--   access         routes the request (dynpb.router over the schema's rules),
--                  builds the input message (path variables, body, query
--                  parameters, each with from_json semantics), and turns the
--                  request into one gRPC call: POST /pkg.Svc/Method, the
--                  message as one frame (ngx.req.set_body_data),
--                  content-type application/grpc, te: trailers,
--                  grpc-timeout, the allowed metadata. Bad requests are
--                  answered here (404, 400, 413, 503) with a
--                  google.rpc.Status JSON body; the backend is not called.
--   header_filter  a Trailers-Only error (grpc-status in the headers) becomes
--                  the HTTP status of google/rpc/code.proto; nginx's own
--                  error pages (backend down) become 503 JSON.
--   body_filter    reassembles gRPC frames across chunks and writes each
--                  output message as JSON (a JSON array or ndjson for server
--                  streams); the grpc-status trailer ($upstream_trailer_*)
--                  read at the end: an error there ends the body with a
--                  Status element (it cannot change the HTTP status any more).
--   gRPC-Web       (grpc_web = true) requests are passed through as gRPC:
--                  frames unchanged (base64 for -text), the trailers appended
--                  as the final frame.
--
-- The router of a followed schema is built once per worker per fingerprint
-- (on the first request after a change); per request there is routing and
-- transcoding only. Nothing here blocks except reading a request body nginx
-- buffered to a file.
--
-- Misuse (unknown option, wrong type) raises; everything a client sends
-- that is wrong is a JSON error response.

local _M = { _VERSION = "0.1.0" }

local resty = require "dynpb.resty"
local grpc = require "dynpb.grpc"
local router = require "dynpb.router"

local ngx = ngx
local type, pairs, ipairs, tostring, tonumber, error, pcall, setmetatable =
      type, pairs, ipairs, tostring, tonumber, error, pcall, setmetatable
local str_byte, str_sub, str_find, str_format, str_gsub, str_match, str_lower, str_rep, str_gmatch =
      string.byte, string.sub, string.find, string.format, string.gsub, string.match,
      string.lower, string.rep, string.gmatch
local concat = table.concat
local floor = math.floor

local MAX_BODY = 4 * 1024 * 1024
local MAX_ARGS = 100

-- google/rpc/code.proto: the HTTP status of each gRPC code
local HTTP_OF = { [0] = 200, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503, 500, 401 }
_M.http_status = HTTP_OF
local C = grpc.codes

-- ------------------------------------------------------------ options

local OPTIONS = {
  schema = "string", emit_defaults = "boolean", proto_names = "boolean", enums = "string",
  max_body = "number", stream = "string", allow_direct = "boolean", grpc_web = "boolean",
  cors = "table", metadata = "table", timeout = "number", services = "table",
  on_request = "function", trailers = "table",
}
local DEFAULT_METADATA = { "authorization", "x-request-id" }

local function set_of(list, what, lower)
  local s = {}
  for i, v in ipairs(list) do
    if type(v) ~= "string" then
      error(str_format("dynpb: gateway: option '%s'[%d] must be a string, got %s", what, i, type(v)), 4)
    end
    s[lower and str_lower(v) or v] = true
  end
  return s
end

local compiled = setmetatable({}, { __mode = "k" })
local defined = {}           -- define(name, opts): name -> compiled options

-- opts (a table, or a name given to define) --> the checked configuration
-- (cached per options table)
local function compile(o)
  if type(o) == "string" then
    local d = defined[o]
    if not d then error(str_format("dynpb: gateway: no configuration named '%s' (call define first)", o), 3) end
    return d
  end
  local c = compiled[o]
  if c then return c end
  if type(o) ~= "table" then error("dynpb: gateway: options must be a table", 3) end
  for k, v in pairs(o) do
    local t = OPTIONS[k]
    if not t then error(str_format("dynpb: gateway: unknown option '%s'", tostring(k)), 3) end
    if type(v) ~= t then
      error(str_format("dynpb: gateway: option '%s' must be a %s, got %s", k, t, type(v)), 3)
    end
  end
  if not o.schema then error("dynpb: gateway: option 'schema' (a followed name) is required", 3) end
  if o.stream ~= nil and o.stream ~= "array" and o.stream ~= "ndjson" then
    error("dynpb: gateway: option 'stream' must be \"array\" or \"ndjson\"", 3)
  end
  if o.enums ~= nil and o.enums ~= "name" and o.enums ~= "number" then
    error("dynpb: gateway: option 'enums' must be \"name\" or \"number\"", 3)
  end
  if o.max_body ~= nil and not (o.max_body >= 0) then
    error("dynpb: gateway: option 'max_body' must be >= 0", 3)
  end
  if o.timeout ~= nil and not (o.timeout > 0) then
    error("dynpb: gateway: option 'timeout' must be > 0", 3)
  end
  c = {
    schema = o.schema, stream = o.stream or "array", allow_direct = o.allow_direct or false,
    grpc_web = o.grpc_web or false, max_body = o.max_body or MAX_BODY, timeout = o.timeout,
    on_request = o.on_request,
    json = { emit_defaults = o.emit_defaults, proto_names = o.proto_names, enums = o.enums,
             unresolved_any = "raw" },
    json_sparse = { proto_names = o.proto_names, enums = o.enums, unresolved_any = "raw" },
    metadata = set_of(o.metadata or DEFAULT_METADATA, "metadata", true),
    services = o.services and set_of(o.services, "services"),
    trailers = {},
  }
  for i, name in ipairs(o.trailers or {}) do
    if type(name) ~= "string" or not str_find(name, "^[%w%-_]+$") then
      error(str_format("dynpb: gateway: option 'trailers'[%d] must be a header name", i), 3)
    end
    c.trailers[#c.trailers + 1] = { name = str_lower(name),
                                    var = "upstream_trailer_" .. str_gsub(str_lower(name), "-", "_") }
  end
  if o.cors then
    local origins = o.cors.origins
    if origins ~= "*" and type(origins) ~= "table" then
      error("dynpb: gateway: option 'cors': origins must be \"*\" or an array of origins", 3)
    end
    for k in pairs(o.cors) do
      if k ~= "origins" and k ~= "max_age" and k ~= "headers" then
        error(str_format("dynpb: gateway: option 'cors': unknown key '%s'", tostring(k)), 3)
      end
    end
    c.cors = { any = origins == "*", origins = origins ~= "*" and set_of(origins, "cors.origins") or {},
               max_age = tostring(o.cors.max_age or 600),
               headers = o.cors.headers and concat(o.cors.headers, ", ") }
  end
  compiled[o] = c
  return c
end
_M._compile = compile

-- define(name, opts): checks opts once (init_by_lua or init_worker_by_lua);
-- access(name) then uses them without any per-request option work
function _M.define(name, o)
  if type(name) ~= "string" then error("dynpb: gateway: define: name must be a string", 2) end
  defined[name] = compile(o)
  return true
end

-- -------------------------------------------------------- JSON pieces

local ESC = { ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f', ['\n'] = '\\n',
              ['\r'] = '\\r', ['\t'] = '\\t' }
local function json_string(s)
  return '"' .. str_gsub(s, '[%c"\\]', function(ch)
    return ESC[ch] or str_format("\\u%04x", str_byte(ch))
  end) .. '"'
end

local function b64decode(s)
  s = str_gsub(s, "%s", "")
  local r = #s % 4
  if r > 0 then s = s .. str_rep("=", 4 - r) end
  return ngx.decode_base64(s)
end

-- google.rpc.Status as JSON: code, message, details (each Any decoded with
-- the schema when its type is in it, else {"@type", "@value": base64})
local function status_json(schema, code, message, details_bin, jopts)
  local parts = { '{"code":', tostring(code), ',"message":', json_string(message or ""), ',"details":[' }
  if details_bin and details_bin ~= "" then
    local raw = b64decode(details_bin)
    local st = raw and grpc.status_details(raw)
    for i, d in ipairs(st and st.details or {}) do
      local tname = str_match(d.type_url, "([^/]+)$")
      local h = tname and schema and schema:message(tname)
      local j = h and h:to_json(d.value, jopts)
      local item
      if j and str_sub(j, 1, 1) == "{" then
        item = '{"@type":' .. json_string(d.type_url) .. (j == "{}" and "}" or "," .. str_sub(j, 2))
      elseif j then              -- a well-known type with a non-object JSON form
        item = '{"@type":' .. json_string(d.type_url) .. ',"value":' .. j .. "}"
      else
        item = '{"@type":' .. json_string(d.type_url) .. ',"@value":"' .. ngx.encode_base64(d.value) .. '"}'
      end
      parts[#parts + 1] = (i > 1 and "," or "") .. item
    end
  end
  parts[#parts + 1] = "]}"
  return concat(parts)
end
_M._status_json = status_json

-- -------------------------------------------------- per-schema state

local states = {}      -- followed name -> { fingerprint, schema, router, fields = {}, params = {} }

-- the state of the current schema of conf.schema; rebuilt when its
-- fingerprint changed (once per worker per change). A schema whose rules
-- do not make a router keeps the previous state (reported once).
local function state(name)
  local schema, err = resty.get(name)
  if not schema then return nil, err end
  local st = states[name]
  if st and st.fingerprint == schema.fingerprint then return st end
  if st and st.bad == schema.fingerprint then return st end
  local r, rerr = router.http_router(schema)
  if not r then
    ngx.log(ngx.ERR, "dynpb: gateway[", name, "]: schema ", str_sub(schema.fingerprint, 1, 12),
            " gives no router, the previous one stays: ", rerr)
    if st then st.bad = schema.fingerprint return st end
    return nil, rerr
  end
  st = { fingerprint = schema.fingerprint, schema = schema, router = r, fields = {}, params = {},
         builds = (st and st.builds or 0) + 1 }
  states[name] = st
  ngx.log(ngx.INFO, "dynpb: gateway[", name, "]: router for schema ", str_sub(schema.fingerprint, 1, 12))
  return st
end

-- stats(name) --> { fingerprint =, builds = } of this worker, or nil
function _M.stats(name)
  local st = states[name]
  if not st then return nil end
  return { fingerprint = st.fingerprint, builds = st.builds }
end

-- fields of handle h by name and JSON name (cached per schema state)
local function lower_camel(n)
  return (str_gsub(n, "_(%l)", function(ch) return ch:upper() end))
end
local function fields_of(st, h)
  local f = st.fields[h.name]
  if f then return f end
  f = {}
  for _, row in ipairs(h:fields()) do
    f[row.name] = row
    f[lower_camel(row.name)] = f[lower_camel(row.name)] or row
  end
  st.fields[h.name] = f
  return f
end

local BOOL_WKT = { ["google.protobuf.BoolValue"] = true }
local STRING_LEAF_WKT = {
  ["google.protobuf.Timestamp"] = true, ["google.protobuf.Duration"] = true,
  ["google.protobuf.FieldMask"] = true, ["google.protobuf.StringValue"] = true,
  ["google.protobuf.BytesValue"] = true, ["google.protobuf.Int32Value"] = true,
  ["google.protobuf.Int64Value"] = true, ["google.protobuf.UInt32Value"] = true,
  ["google.protobuf.UInt64Value"] = true, ["google.protobuf.FloatValue"] = true,
  ["google.protobuf.DoubleValue"] = true,
}

-- a field path "a.b.c" of the input type h --> { pre =, post =, kind =,
-- repeated = } (the JSON around a leaf value) | nil, err. Cached per schema
-- when resolved (only paths the schema has: the cache is bounded).
local function param_template(st, h, path)
  local key = h.name .. "\0" .. path
  local t = st.params[key]
  if t then return t end
  local pre, post = {}, {}
  local cur = h
  local segs = {}
  for seg in str_gmatch(path, "[^.]+") do segs[#segs + 1] = seg end
  if #segs == 0 or str_find(path, "%.%.") or str_find(path, "^%.") or str_find(path, "%.$") then
    return nil, "not a field path"
  end
  local row
  for i, seg in ipairs(segs) do
    row = fields_of(st, cur)[seg]
    if not row then return nil, str_format("%s has no field '%s'", cur.name, seg) end
    pre[#pre + 1] = "{" .. json_string(row.name) .. ":"
    post[#post + 1] = "}"
    if i < #segs then
      if row.type ~= "message" or row.label == "repeated" or row.map then
        return nil, str_format("field '%s' of %s is not a singular message", seg, cur.name)
      end
      cur = st.schema:message(row.type_name)
    end
  end
  local kind
  if row.map then
    return nil, "a map field cannot be set from a parameter"
  elseif row.type == "bool" or (row.type == "message" and BOOL_WKT[row.type_name]) then
    kind = "bool"
  elseif row.type == "enum" then
    kind = "enum"
  elseif row.type == "message" then
    if not STRING_LEAF_WKT[row.type_name] then
      return nil, str_format("field '%s' is a message (%s)", row.name, row.type_name)
    end
    kind = "string"
  else
    kind = "string"     -- numbers too: proto3 JSON takes them as strings
  end
  t = { pre = concat(pre), post = concat(post), kind = kind, repeated = row.label == "repeated" }
  st.params[key] = t
  return t
end

local function leaf(kind, v)
  if v == true then v = kind == "bool" and "true" or "" end
  if kind == "bool" and (v == "true" or v == "false") then return v end
  if kind == "enum" and str_find(v, "^%-?%d+$") then return v end
  return json_string(v)
end

-- the protobuf bytes of input h with field path = value(s) (a string, or an
-- array of strings for a repeated parameter) | nil, err
local function param_bytes(st, h, path, value, what)
  local t, err = param_template(st, h, path)
  if not t then return nil, str_format("%s '%s': %s", what, path, err) end
  local v
  if type(value) == "table" then
    if not t.repeated then
      return nil, str_format("%s '%s' given %d times for a field that is not repeated", what, path, #value)
    end
    local items = {}
    for i, x in ipairs(value) do items[i] = leaf(t.kind, x) end
    v = "[" .. concat(items, ",") .. "]"
  else
    v = leaf(t.kind, value)
    if t.repeated then v = "[" .. v .. "]" end
  end
  local bytes, jerr = h:from_json(t.pre .. v .. t.post)
  if not bytes then
    -- the byte offset is in the JSON made here, not in anything the client sent
    jerr = str_gsub(jerr, " at byte %d+$", "")
    return nil, str_format("%s '%s': %s", what, path, jerr)
  end
  return bytes
end

-- the wire bytes of every occurrence of field number num in msg (in order),
-- and the payloads of its length-delimited occurrences (an array)
local function varint_end(s, i)
  for k = i, i + 9 do
    local b = str_byte(s, k)
    if not b then return nil end
    if b < 128 then return k + 1 end
  end
  return nil
end
local function field_slices(s, num)
  local out, payloads, i, n = {}, {}, 1, #s
  while i <= n do
    local j = varint_end(s, i)
    if not j then return nil end
    -- the key: up to 5 bytes (field numbers < 2^29)
    local key, mul = 0, 1
    for k = i, j - 1 do key = key + (str_byte(s, k) % 128) * mul; mul = mul * 128 end
    local fnum, wt = floor(key / 8), key % 8
    local e
    if wt == 0 then
      e = varint_end(s, j)
    elseif wt == 1 then
      e = j + 8
    elseif wt == 5 then
      e = j + 4
    elseif wt == 2 then
      local k = varint_end(s, j)
      if not k then return nil end
      local len, m2 = 0, 1
      for x = j, k - 1 do len = len + (str_byte(s, x) % 128) * m2; m2 = m2 * 128 end
      e = k + len
      if fnum == num and e - 1 <= n then payloads[#payloads + 1] = str_sub(s, k, e - 1) end
    else
      return nil               -- groups: not in a response_body
    end
    if not e or e - 1 > n then return nil end
    if fnum == num then out[#out + 1] = str_sub(s, i, e - 1) end
    i = e
  end
  return concat(out), payloads
end

local ZERO = { bool = "false", string = '""', bytes = '""' }

-- msg (bytes of output type h) --> JSON text, or nil, err; with rb (the
-- response_body field row) only that field's value
local function output_json(ctx, msg)
  local h, jopts = ctx.output, ctx.conf.json
  local rb = ctx.rb
  if not rb then return h:to_json(msg, jopts) end
  local only, payloads = field_slices(msg, rb.number)
  if not only then return nil, "dynpb: gateway: malformed response message" end
  if rb.type == "message" and not rb.map then
    -- the field's own type, so every to_json option applies inside it
    local sub = ctx.rb_handle
    if rb.label ~= "repeated" then return sub:to_json(concat(payloads), jopts) end
    local items = {}
    for i, p in ipairs(payloads) do
      local j, err = sub:to_json(p, jopts)
      if not j then return nil, err end
      items[i] = j
    end
    return "[" .. concat(items, ",") .. "]"
  end
  -- other fields: the output message with only that field, unwrapped
  local j, err = h:to_json(only, ctx.conf.json_sparse)
  if not j then return nil, err end
  local v = str_match(j, '^{"[^"]*":(.*)}$')
  if v then return v end
  -- the field is unset: its zero value
  if rb.map then return "{}" end
  if rb.label == "repeated" then return "[]" end
  if rb.type == "message" then return "{}" end
  if rb.type == "enum" then
    if jopts.enums == "number" then return "0" end
    local vals = h.schema:enum_values(rb.type_name)
    return json_string(vals and vals[1] and vals[1].name or "0")
  end
  local z = ZERO[rb.type]
  if z then return z end
  local is64 = str_find(rb.type, "64$")
  return is64 and '"0"' or "0"
end

-- ------------------------------------------------------- the request

local function ctx_of() return ngx.ctx.dynpb_gateway end

-- answer here, with a google.rpc.Status body; the filters let it pass
local function reply(http, code, message, extra_headers)
  local ctx = ngx.ctx
  local g = ctx.dynpb_gateway or {}
  g.kind = "local"
  ctx.dynpb_gateway = g
  ngx.status = http
  local h = ngx.header
  h["Content-Type"] = "application/json"
  if g.origin then                 -- cross-origin callers may read the error too
    h["Access-Control-Allow-Origin"] = g.conf.cors.any and "*" or g.origin
    if not g.conf.cors.any then h["Vary"] = "Origin" end
  end
  if extra_headers then for k, v in pairs(extra_headers) do h[k] = v end end
  ngx.print(status_json(nil, code, message))
  return ngx.exit(http)
end

-- answer a gRPC-Web request here: HTTP 200, the status in the headers
-- (Trailers-Only), no body
local function web_reply(code, message, text)
  local ctx = ngx.ctx
  local g = ctx.dynpb_gateway
  g.kind = "local"
  ngx.status = 200
  local h = ngx.header
  h["Content-Type"] = text and "application/grpc-web-text+proto" or "application/grpc-web+proto"
  h["grpc-status"] = tostring(code)
  h["grpc-message"] = grpc.percent_encode(message)
  if g.origin then
    h["Access-Control-Allow-Origin"] = g.conf.cors.any and "*" or g.origin
    h["Access-Control-Expose-Headers"] = "grpc-status, grpc-message, grpc-status-details-bin"
    if not g.conf.cors.any then h["Vary"] = "Origin" end
  end
  return ngx.exit(200)
end

local function read_body(conf)
  local len = tonumber(ngx.var.http_content_length)
  if len and len > conf.max_body then return nil, len end
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if not body then
    local path = ngx.req.get_body_file()
    if path then
      local f, err = io.open(path, "rb")
      if not f then return nil, nil, "dynpb: gateway: cannot read the buffered body: " .. tostring(err) end
      body = f:read("*a")
      f:close()
    end
  end
  body = body or ""
  if #body > conf.max_body then return nil, #body end
  return body
end

-- the input message of method m from the rule's body, the query and the
-- path variables --> bytes | nil, err
local function build(st, m, rule, vars, body, args)
  local h = m.input
  local parts = {}
  local bfield = rule.body
  if bfield == "*" then
    if str_find(body, "%S") then
      local b, err = h:from_json(body)
      if not b then return nil, err end
      parts[#parts + 1] = b
    end
  elseif bfield then
    if str_find(body, "%S") then
      local row = fields_of(st, h)[bfield]
      if not row then return nil, "dynpb: gateway: the rule's body field '" .. bfield .. "' is not in " .. h.name end
      local b, err
      if row.type == "message" and row.label ~= "repeated" and not row.map then
        local sub = st.schema:message(row.type_name)
        b, err = sub:from_json(body)
        if b then b = grpc._pb_len(row.number, b) end
      else
        b, err = h:from_json("{" .. json_string(row.name) .. ":" .. body .. "}")
      end
      if not b then return nil, "dynpb: gateway: body (field '" .. bfield .. "'): " .. err end
      parts[#parts + 1] = b
    end
  end
  if bfield ~= "*" then
    for name, value in pairs(args) do
      local first = str_match(name, "^[^.]+")
      local skip = vars[name] ~= nil
      if bfield and first then
        local row = fields_of(st, h)[first]
        skip = skip or (row and row.name == bfield)
      end
      if not skip then
        local b, err = param_bytes(st, h, name, value, "dynpb: gateway: query parameter")
        if not b then return nil, err end
        parts[#parts + 1] = b
      end
    end
  end
  for path, value in pairs(vars) do
    local b, err = param_bytes(st, h, path, value, "dynpb: gateway: path variable")
    if not b then return nil, err end
    parts[#parts + 1] = b
  end
  return concat(parts)
end

-- request headers: only the allowed metadata (and what grpc_pass needs) go on
local KEEP = { host = true, ["content-length"] = true, ["content-type"] = true, te = true }
local function filter_headers(conf, headers, keep_extra)
  for k in pairs(headers) do
    local lk = str_lower(k)
    if not KEEP[lk] and not conf.metadata[lk] and not (keep_extra and keep_extra[lk]) then
      ngx.req.clear_header(k)
    end
  end
end

local function set_timeout(conf, headers)
  local t = conf.timeout
  local x = tonumber(headers["x-timeout"])
  if x and x > 0 and (not t or x < t) then t = x end
  if t then ngx.req.set_header("grpc-timeout", grpc.timeout(t)) end
end

local function origin_allowed(conf, origin)
  local c = conf.cors
  return c and origin and (c.any or c.origins[origin]) or false
end

local function decode_web_text(s)
  s = str_gsub(s, "%s", "")
  local out = {}
  -- padded pieces may be concatenated: decode up to each run of '='
  for piece in str_gmatch(s, "[^=]+=*") do
    local d = b64decode(piece)
    if not d then return nil end
    out[#out + 1] = d
  end
  return concat(out)
end

local WEB_KEEP = { ["grpc-timeout"] = true }

-- a gRPC-Web request: passed on as gRPC
local function web_access(conf, st, headers, kind, codec)
  local text = kind == "web-text"
  if codec ~= "proto" then
    return web_reply(C.INVALID_ARGUMENT, "dynpb: gateway: grpc-web+" .. codec .. " is not bridged (proto is)", text)
  end
  local path = ngx.var.uri
  if ngx.req.get_method() ~= "POST" then
    return web_reply(C.UNIMPLEMENTED, "dynpb: gateway: gRPC-Web requests are POST", text)
  end
  local m = st.schema:method(path)
  if conf.services and not (m and conf.services[m.service]) then
    return web_reply(C.UNIMPLEMENTED, "dynpb: gateway: method " .. path .. " is not served here", text)
  end
  local body, too_big, rerr = read_body(conf)
  if rerr then return web_reply(C.INTERNAL, rerr, text) end
  if not body then
    return web_reply(C.RESOURCE_EXHAUSTED, str_format("dynpb: gateway: request body of %d bytes is larger than max_body (%d)",
                                                      too_big, conf.max_body), text)
  end
  if text then
    local d = decode_web_text(body)
    if not d then return web_reply(C.INVALID_ARGUMENT, "dynpb: gateway: grpc-web-text body is not base64", text) end
    body = d
  end
  filter_headers(conf, headers, WEB_KEEP)
  ngx.req.set_body_data(body)
  ngx.req.set_header("Content-Type", "application/grpc")
  ngx.req.clear_header("TE")
  ngx.req.set_uri_args("")
  if not headers["grpc-timeout"] then set_timeout(conf, headers) end
  local g = ngx.ctx.dynpb_gateway
  g.kind = "web"
  g.text = text
  g.content_type = text and "application/grpc-web-text+proto" or "application/grpc-web+proto"
  g.conf = conf
end

-- access{ opts }: route and transcode the request (access_by_lua)
function _M.access(opts)
  local conf = compile(opts)
  -- "pending" until the call is ready: a response nginx makes before that
  -- (a Lua error here, client_max_body_size) passes the filters untouched
  local g = { conf = conf, kind = "pending" }
  ngx.ctx.dynpb_gateway = g
  local headers = ngx.req.get_headers(200)
  local origin = headers.origin
  if type(origin) == "table" then origin = origin[1] end
  local verb = ngx.req.get_method()
  if conf.cors and origin then
    if not origin_allowed(conf, origin) then
      if verb == "OPTIONS" then
        return reply(403, C.PERMISSION_DENIED, "dynpb: gateway: origin " .. origin .. " is not allowed")
      end
    else
      g.origin = origin
      if verb == "OPTIONS" and headers["access-control-request-method"] then
        g.kind = "local"
        local h = ngx.header
        h["Access-Control-Allow-Origin"] = conf.cors.any and "*" or origin
        h["Access-Control-Allow-Methods"] = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
        local want = headers["access-control-request-headers"]
        if type(want) == "table" then want = concat(want, ", ") end
        h["Access-Control-Allow-Headers"] = conf.cors.headers or want
        h["Access-Control-Max-Age"] = conf.cors.max_age
        if not conf.cors.any then h["Vary"] = "Origin" end
        return ngx.exit(204)
      end
    end
  end
  local st, serr = state(conf.schema)
  if not st then return reply(503, C.UNAVAILABLE, serr) end
  local ct = headers["content-type"]
  if type(ct) == "table" then ct = ct[1] end
  if conf.grpc_web and ct and str_find(str_lower(ct), "^%s*application/grpc%-web") then
    local kind, codec = grpc.parse_content_type(ct)
    if kind == "web" or kind == "web-text" then return web_access(conf, st, headers, kind, codec) end
  end
  local raw = ngx.var.request_uri
  local path = str_match(raw, "^[^?#]*")
  local m, vars, rule = st.router:match(verb, path)
  if not m and vars then return reply(400, C.INVALID_ARGUMENT, vars) end
  if not m and conf.allow_direct and verb == "POST" then
    m = st.schema:method(path)
    if m then vars, rule = {}, { body = "*" } end
  end
  if not m or (conf.services and not conf.services[m.service]) then
    return reply(404, C.NOT_FOUND, str_format("dynpb: gateway: no route for %s %s", verb, path))
  end
  if m.client_streaming then
    return reply(501, C.UNIMPLEMENTED, "dynpb: gateway: " .. m.full_name .. " is client streaming: not bridged from JSON")
  end
  local body, too_big, rerr = read_body(conf)
  if rerr then return reply(500, C.INTERNAL, rerr) end
  if not body then
    return reply(413, C.RESOURCE_EXHAUSTED, str_format("dynpb: gateway: request body of %d bytes is larger than max_body (%d)", too_big, conf.max_body))
  end
  local args = ngx.req.get_uri_args(MAX_ARGS)
  local msg, err = build(st, m, rule, vars, body, args)
  if not msg then return reply(400, C.INVALID_ARGUMENT, err) end
  local extra_md
  if conf.on_request then
    local req, derr = m.input:decode(msg)
    if not req then return reply(400, C.INVALID_ARGUMENT, derr) end
    local http = { verb = verb, path = path, vars = vars, headers = headers, metadata = {} }
    local ok, res, status, message = pcall(conf.on_request, m, req, http)
    if not ok then
      ngx.log(ngx.ERR, "dynpb: gateway: on_request raised: ", tostring(res))
      return reply(500, C.INTERNAL, "dynpb: gateway: on_request failed")
    end
    if res == false then
      status = tonumber(status) or 403
      return reply(status, grpc.http_to_code(status) == C.UNKNOWN and C.PERMISSION_DENIED or grpc.http_to_code(status),
                   message or "dynpb: gateway: refused")
    end
    local enc, eerr = m.input:encode(req)
    if not enc then return reply(400, C.INVALID_ARGUMENT, eerr) end
    msg = enc
    extra_md = http.metadata
  end
  filter_headers(conf, headers)
  set_timeout(conf, headers)
  if extra_md then for k, v in pairs(extra_md) do ngx.req.set_header(k, v) end end
  ngx.req.set_body_data(grpc.frame(msg))
  ngx.req.set_method(ngx.HTTP_POST)
  ngx.req.set_uri(m.path)
  ngx.req.set_uri_args("")
  ngx.req.set_header("Content-Type", "application/grpc")
  ngx.req.clear_header("TE")
  g.kind = "json"
  g.method = m
  g.output = m.output
  g.schema = st.schema
  g.stream = m.server_streaming and conf.stream or nil
  if rule.response_body then
    local rb = fields_of(st, m.output)[rule.response_body]
    g.rb = rb
    if rb and rb.type == "message" then g.rb_handle = st.schema:message(rb.type_name) end
  end
end

-- ------------------------------------------------------------ response

local GRPC_HEADERS = { "grpc-status", "grpc-message", "grpc-status-details-bin", "grpc-encoding",
                       "grpc-accept-encoding" }

local function cors_headers(g, web)
  if not g.origin then return end
  local h = ngx.header
  h["Access-Control-Allow-Origin"] = g.conf.cors.any and "*" or g.origin
  if not g.conf.cors.any then h["Vary"] = "Origin" end
  if web then h["Access-Control-Expose-Headers"] = "grpc-status, grpc-message, grpc-status-details-bin" end
end

local function is_grpc_response()
  local ct = ngx.header["Content-Type"]
  if type(ct) == "table" then ct = ct[1] end
  return ngx.status == 200 and ct and str_find(str_lower(ct), "^application/grpc") ~= nil
end

local te_hinted = false        -- the missing-TE hint is logged once per worker

local function backend_failure()
  local st = ngx.status
  local http, code = 503, C.UNAVAILABLE
  if st == 504 then http, code = 504, C.DEADLINE_EXCEEDED end
  return http, code, str_format("dynpb: gateway: the backend did not answer with gRPC (nginx status %d, upstream %s)",
                                st, tostring(ngx.var.upstream_addr))
end

-- header_filter(): the HTTP status and headers of the response (header_filter_by_lua)
function _M.header_filter()
  local g = ctx_of()
  if not g or g.kind == "local" or g.kind == "pending" then return end
  local h = ngx.header
  if g.kind == "web" then
    cors_headers(g, true)
    if not is_grpc_response() then
      local _, code, msg = backend_failure()
      ngx.status = 200
      h["grpc-status"] = tostring(code)
      h["grpc-message"] = grpc.percent_encode(msg)
      g.drop = true
    end
    h["Content-Type"] = g.content_type
    h["Content-Length"] = nil
    local v = ngx.var
    local gs = v.upstream_http_grpc_status
    if gs and not g.drop then     -- Trailers-Only: the status stays in the headers
      -- (set again: the configuration may hide them, for the trailers' sake)
      h["grpc-status"] = gs
      h["grpc-message"] = v.upstream_http_grpc_message
      h["grpc-status-details-bin"] = v.upstream_http_grpc_status_details_bin
    end
    if h["grpc-status"] then g.trailers_only = true end
    if g.text then g.carry = "" end
    return
  end
  cors_headers(g, false)
  local v = ngx.var
  local gs = v.upstream_http_grpc_status
  if not is_grpc_response() then
    local http, code, msg = backend_failure()
    ngx.log(ngx.WARN, msg)
    ngx.status = http
    g.replace = status_json(nil, code, msg)
  elseif gs then             -- Trailers-Only: the status is known now
    local code = tonumber(gs) or C.UNKNOWN
    if code == 0 then
      g.replace = g.stream == "array" and "[]" or (g.stream == "ndjson" and "" or "{}")
    else
      if not te_hinted and str_find(str_lower(v.upstream_http_grpc_message or ""), "te header", 1, true) then
        te_hinted = true
        ngx.log(ngx.ERR, "dynpb: gateway: the backend refused the call for its te header: the location needs ",
                "`grpc_set_header TE trailers;` (grpc_pass sends te: trailers only when the client did)")
      end
      ngx.status = HTTP_OF[code] or 500
      g.replace = status_json(g.schema, code, grpc.percent_decode(v.upstream_http_grpc_message or ""),
                              v.upstream_http_grpc_status_details_bin, g.conf.json)
    end
  else
    local enc = h["grpc-encoding"]
    g.reader = grpc.reader{ encoding = enc }
    g.n = 0
  end
  for _, k in ipairs(GRPC_HEADERS) do h[k] = nil end
  h["Content-Type"] = g.stream == "ndjson" and "application/x-ndjson" or "application/json"
  h["Content-Length"] = nil
end

local function b64_carry(g, data, eof)
  data = g.carry .. data
  local cut = eof and #data or #data - #data % 3
  g.carry = str_sub(data, cut + 1)
  if cut == 0 then return "" end
  return ngx.encode_base64(str_sub(data, 1, cut))
end

local function web_trailer_frame(g)
  local v = ngx.var
  local status = v.upstream_trailer_grpc_status
  local t = {}
  if status then
    t["grpc-status"] = status
    local msg = v.upstream_trailer_grpc_message
    if msg and msg ~= "" then t["grpc-message"] = grpc.percent_decode(msg) end
    local det = v.upstream_trailer_grpc_status_details_bin
    if det and det ~= "" then t["grpc-status-details-bin"] = det end
  else
    t["grpc-status"] = tostring(C.INTERNAL)
    t["grpc-message"] = "dynpb: gateway: the backend sent no grpc-status"
  end
  for _, tr in ipairs(g.conf.trailers) do
    local x = v[tr.var]
    if x and x ~= "" then t[tr.name] = x end
  end
  return grpc.web_trailers(t)
end

local function web_body(g)
  local chunk, eof = ngx.arg[1], ngx.arg[2]
  if g.drop then chunk = "" end
  if eof and not g.trailers_only then chunk = chunk .. web_trailer_frame(g) end
  if g.text then chunk = b64_carry(g, chunk, eof) end
  ngx.arg[1] = chunk
end

local function status_element(g, code, message, details)
  ngx.log(ngx.WARN, "dynpb: gateway: ", g.method.full_name, " ended with grpc-status ", code, " after the headers: ",
          message)
  return status_json(g.schema, code, message, details, g.conf.json)
end

-- body_filter(): gRPC frames in, JSON out (body_filter_by_lua)
function _M.body_filter()
  local g = ctx_of()
  if not g or g.kind == "local" or g.kind == "pending" then return end
  if g.kind == "web" then return web_body(g) end
  local eof = ngx.arg[2]
  if g.replace then
    ngx.arg[1] = eof and g.replace or ""
    if eof then g.replace = nil; g.done = true end
    return
  end
  if g.done or not g.reader then ngx.arg[1] = "" return end
  local out = {}
  local msgs, err = g.reader:feed(ngx.arg[1])
  if not msgs then
    g.broken = err
    msgs = {}
  end
  for _, msg in ipairs(msgs) do
    local j, jerr = output_json(g, msg)
    if not j then
      g.broken = jerr
      break
    end
    local stream = g.stream
    if stream == "array" then
      out[#out + 1] = (g.n == 0 and "[" or ",") .. j
    elseif stream == "ndjson" then
      out[#out + 1] = j .. "\n"
    elseif g.n == 0 then
      out[#out + 1] = j
    end
    g.n = g.n + 1
  end
  if eof then
    local v = ngx.var
    local code, message, details
    if g.broken then
      code, message = C.INTERNAL, g.broken
    else
      local ok, ferr = g.reader:finish()
      if not ok then code, message = C.INTERNAL, ferr end
    end
    if not code then
      local s = v.upstream_trailer_grpc_status
      if not s then
        code, message = C.INTERNAL, "dynpb: gateway: the backend sent no grpc-status"
      else
        code = tonumber(s) or C.UNKNOWN
        message = grpc.percent_decode(v.upstream_trailer_grpc_message or "")
        details = v.upstream_trailer_grpc_status_details_bin
      end
    end
    local stream = g.stream
    if code ~= 0 then
      local sj = status_element(g, code, message, details)
      if stream == "array" then
        out[#out + 1] = (g.n == 0 and "[" or ",") .. sj .. "]"
      elseif stream == "ndjson" then
        out[#out + 1] = sj .. "\n"
      elseif g.n == 0 then
        out[#out + 1] = sj
      end
    elseif stream == "array" then
      out[#out + 1] = g.n == 0 and "[]" or "]"
    elseif not stream and g.n == 0 then
      out[#out + 1] = "{}"
    end
    g.done = true
  end
  ngx.arg[1] = concat(out)
end

return _M
