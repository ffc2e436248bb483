-- dynpb.router -- google.api.http rules of a schema and an HTTP router over them.
--
--   local rules = schema:http_rules()            -- or router.http_rules(schema)
--   local r, err = dynpb.http_router(schema)      -- or router.new(rules)
--   local method, vars, rule = r:match("GET", "/v1/shops/42")
--
-- Templates follow google/api/http.proto (HttpRule):
--
--   Template = "/" Segments [ Verb ] ;   Segments = Segment { "/" Segment } ;
--   Segment  = "*" | "**" | LITERAL | Variable ;
--   Variable = "{" FieldPath [ "=" Segments ] "}" ;   Verb = ":" LITERAL ;
--
-- `**` may only be the last segment; variables do not nest; a variable
-- without a pattern is `{v=*}`. Matching runs on the raw (percent-encoded)
-- segments of the path; then a variable matching one segment (`{v}`,
-- `{v=*}`, `{v=lit}`) is fully percent-decoded and one matching several
-- (`{v=a/*}`, `{v=**}`) is decoded except `%2F`/`%2f`. Among the templates
-- that match, the one with more literal segments wins (a verb counts as one),
-- then the one without `**`, then the one declared first.
--
-- Policy only: this file is plain Lua; the schema side (services, methods,
-- options) comes from schema:services() / schema:service(name).
--
-- Errors: a bad template or rule gives nil, err from new/http_router (the
-- message names the method and the template); a malformed path gives
-- nil, err from match; misuse (wrong argument types) raises.

local _M = { _VERSION = "0.1.0" }

local type, error, tostring, setmetatable, getmetatable =
      type, error, tostring, setmetatable, getmetatable
local str_byte, str_sub, str_find, str_format, str_char, str_gsub, str_upper =
      string.byte, string.sub, string.find, string.format, string.char, string.gsub,
      string.upper
local tonumber = tonumber
local concat, sort = table.concat, table.sort

local HTTP_OPTION = "[google.api.http]"
local PATTERNS = { "get", "put", "post", "delete", "patch" }

local router_mt = { __index = _M }

-- ---- rules of a schema

-- v[i] for i = 1.. until nil: works for plain arrays and read-only proxies
local function each(t)
  local i = 0
  return function()
    i = i + 1
    local v = t[i]
    if v ~= nil then return i, v end
  end
end

local function nonempty(s)
  if type(s) == "string" and s ~= "" then return s end
  return nil
end

-- one HttpRule (or an additional binding) of method m -> a rule row, or nil
-- when its pattern is unset
local function binding(b, m)
  local verb, template
  for _, p in each(PATTERNS) do
    local t = nonempty(b[p])
    if t then verb, template = str_upper(p), t break end
  end
  if not verb then
    local c = b.custom
    if type(c) == "table" and (nonempty(c.kind) or nonempty(c.path)) then
      verb, template = c.kind or "", c.path or ""
    end
  end
  if not verb then return nil end
  return { verb = verb, template = template, body = nonempty(b.body),
           response_body = nonempty(b.response_body), method = m }
end

-- every binding of every method of the schema, in service, method and
-- binding order: { verb=, template=, body=, response_body=, method= }
function _M.http_rules(schema)
  if type(schema) ~= "table" or type(schema.services) ~= "function" then
    error("dynpb: http_rules: a schema object expected, got " .. type(schema), 2)
  end
  local rules = {}
  for _, sname in each(schema:services()) do
    local svc = schema:service(sname)
    for _, m in each(svc and svc.methods or {}) do
      local rule = m.options and m.options[HTTP_OPTION]
      if type(rule) == "table" then
        local r = binding(rule, m)
        if r then rules[#rules + 1] = r end
        local extra = rule.additional_bindings
        if type(extra) == "table" then
          -- bindings of an additional binding are ignored (http.proto)
          for _, b in each(extra) do
            r = binding(b, m)
            if r then rules[#rules + 1] = r end
          end
        end
      end
    end
  end
  return rules
end

-- ---- template parsing

-- LITERAL: RFC 3986 pchar minus ':' (the verb separator) and '*'
local function valid_literal(s)
  if s == "" then return false end
  if str_find(s, "[^%w%-%._~!%$&'%(%)%+,;=@%%]") then return false end
  local i = 1
  while true do
    local p = str_find(s, "%", i, true)
    if not p then return true end
    if not str_find(str_sub(s, p + 1, p + 2), "^%x%x$") then return false end
    i = p + 3
  end
end

-- Parses template t. Returns { segs = { {kind = "lit"|"*"|"**", text=}... },
-- vars = { {path=, from=, to=} ... } (segment ranges), verb = string|nil,
-- nlit =, wild = has **, nsegs = } or nil, err (with the column).
local function parse_template(t)
  if type(t) ~= "string" then return nil, "template is not a string" end
  local n = #t
  if n == 0 or str_byte(t, 1) ~= 47 then return nil, "must start with '/'" end
  local res = { segs = {}, vars = {}, nlit = 0, wild = false }
  if t == "/" then res.nsegs = 0 return res end
  local segs, vars = res.segs, res.vars
  local pos = 2
  local cur_var        -- the variable being parsed
  local seen = {}
  local function fail(msg, at) return nil, str_format("%s at column %d", msg, at or pos) end
  while true do
    -- one segment starting at pos: a variable's start, then plain segments
    local c = str_sub(t, pos, pos)
    local closed = false      -- a '{v}' without pattern ended here
    if c == "{" then
      if cur_var then return fail("nested variable") end
      local s, e, path = str_find(t, "^{([%a_][%w_%.]*)", pos)
      if not s or str_find(path, "%.%.") or str_find(path, "%.$") or str_find(path, "%.[^%a_]") then
        return fail("bad variable field path")
      end
      if seen[path] then return fail("variable '" .. path .. "' given twice") end
      seen[path] = true
      cur_var = { path = path, from = #segs + 1 }
      vars[#vars + 1] = cur_var
      pos = e + 1
      c = str_sub(t, pos, pos)
      if c == "}" then
        segs[#segs + 1] = { kind = "*" }
        cur_var.to = #segs
        cur_var = nil
        pos = pos + 1
        closed = true
      elseif c == "=" then
        pos = pos + 1
      else
        return fail("expected '=' or '}' after variable '" .. path .. "'")
      end
    end
    if not closed then
      -- a plain segment: up to / { } : or the end
      local s, e = str_find(t, "^[^/{}:]*", pos)
      local text = str_sub(t, s, e)
      if text == "*" or text == "**" then
        segs[#segs + 1] = { kind = text }
        if text == "**" then res.wild = true end
      elseif text == "" then
        if str_sub(t, pos, pos) == "{" then return fail("nested variable") end
        return fail("empty segment")
      elseif str_find(text, "*", 1, true) or not valid_literal(text) then
        return fail("bad literal segment '" .. text .. "'")
      else
        segs[#segs + 1] = { kind = "lit", text = text }
        res.nlit = res.nlit + 1
      end
      pos = e + 1
      if cur_var and str_sub(t, pos, pos) == "}" then
        cur_var.to = #segs
        cur_var = nil
        pos = pos + 1
      end
    end
    if pos > n then break end
    c = str_sub(t, pos, pos)
    if c == "/" then
      pos = pos + 1
    elseif c == ":" and not cur_var then
      local verb = str_sub(t, pos + 1)
      if not valid_literal(verb) then return fail("bad verb '" .. verb .. "'") end
      res.verb = verb
      res.nlit = res.nlit + 1
      break
    else
      return fail("unexpected '" .. c .. "'")
    end
  end
  if cur_var then return fail("variable '" .. cur_var.path .. "' not closed", n + 1) end
  for i, sg in each(segs) do
    if sg.kind == "**" and i ~= #segs then
      return nil, "'**' must be the last segment"
    end
  end
  res.nsegs = #segs
  return res
end
_M.parse_template = parse_template

-- ---- router

local function rule_name(r)
  local m = r.method
  local name = type(m) == "table" and (m.full_name or m.name) or tostring(m)
  return tostring(name)
end

-- new(rules): rules as http_rules returns them (method may be any value).
-- Returns a router, or nil, err for the first bad rule.
function _M.new(rules)
  if type(rules) ~= "table" then
    error("dynpb: http_router: a rules array expected, got " .. type(rules), 2)
  end
  local byverb, order = {}, {}
  for i, r in each(rules) do
    if type(r) ~= "table" then
      error("dynpb: http_router: rule " .. i .. " is not a table", 2)
    end
    local where = str_format("method %s, %s '%s'", rule_name(r), tostring(r.verb), tostring(r.template))
    if type(r.verb) ~= "string" or r.verb == "" then
      return nil, "dynpb: http_router: " .. where .. ": no HTTP verb (custom kind is empty)"
    end
    local tpl, err = parse_template(r.template)
    if not tpl then
      return nil, "dynpb: http_router: " .. where .. ": bad template: " .. err
    end
    if r.body ~= nil and r.body ~= "*" and type(r.body) == "string"
       and not str_find(r.body, "^[%a_][%w_]*$") then
      return nil, "dynpb: http_router: " .. where .. ": bad body field '" .. r.body .. "'"
    end
    local e = { tpl = tpl, rule = r, index = i }
    local list = byverb[r.verb]
    if not list then list = {} byverb[r.verb] = list order[#order + 1] = r.verb end
    list[#list + 1] = e
  end
  for _, v in each(order) do
    sort(byverb[v], function(a, b)
      if a.tpl.nlit ~= b.tpl.nlit then return a.tpl.nlit > b.tpl.nlit end
      if a.tpl.wild ~= b.tpl.wild then return not a.tpl.wild end
      return a.index < b.index
    end)
  end
  return setmetatable({ byverb = byverb }, router_mt)
end

-- http_router(schema): new(http_rules(schema))
function _M.http_router(schema)
  if type(schema) ~= "table" or type(schema.services) ~= "function" then
    error("dynpb: http_router: a schema object expected, got " .. type(schema), 2)
  end
  return _M.new(_M.http_rules(schema))
end

local function hexval(h) return str_char(tonumber(h, 16)) end
local function decode_all(s) return (str_gsub(s, "%%(%x%x)", hexval)) end
local function decode_keep_slash(s)
  return (str_gsub(s, "%%(%x%x)", function(h)
    if h == "2F" or h == "2f" then return "%" .. h end
    return hexval(h)
  end))
end

-- does template tpl match raw segments segs[1..nseg]? fills vars when so
local function try(tpl, segs, nseg)
  local ts = tpl.segs
  local nt = tpl.nsegs
  if tpl.wild then
    if nseg < nt - 1 then return nil end
  elseif nseg ~= nt then
    return nil
  end
  for i = 1, nt do
    local sg = ts[i]
    local k = sg.kind
    if k == "**" then break end
    local raw = segs[i]
    if k == "lit" then
      if raw ~= sg.text then return nil end
    elseif raw == "" then            -- '*' matches one non-empty segment
      return nil
    end
  end
  local vars = {}
  for _, v in each(tpl.vars) do
    local to = v.to
    if ts[to].kind == "**" then to = nseg end
    if to == v.from and ts[to].kind ~= "**" then
      vars[v.path] = decode_all(segs[v.from])
    else
      vars[v.path] = decode_keep_slash(concat(segs, "/", v.from, to))
    end
  end
  return vars
end

-- router:match(verb, path) -> method, vars, rule | nil [, err]
-- path is the request target's path (a '?query' or '#fragment' is ignored).
function _M.match(self, verb, path)
  if type(self) ~= "table" or getmetatable(self) ~= router_mt then
    error("dynpb: router:match: a router expected (call it as router:match(verb, path))", 2)
  end
  if type(verb) ~= "string" then
    error("dynpb: router:match: verb must be a string, got " .. type(verb), 2)
  end
  if type(path) ~= "string" then
    error("dynpb: router:match: path must be a string, got " .. type(path), 2)
  end
  local list = self.byverb[verb]
  if not list then return nil end
  local q = str_find(path, "[?#]")
  if q then path = str_sub(path, 1, q - 1) end
  if str_byte(path, 1) ~= 47 then
    return nil, "dynpb: router:match: path must start with '/'"
  end
  local bad = str_find(path, "%%%X") or str_find(path, "%%%x%X") or str_find(path, "%%.?$")
  if bad then
    return nil, str_format("dynpb: router:match: bad percent-encoding at byte %d of the path", bad)
  end
  -- raw segments of the path, and of the path without a trailing ":verb"
  local segs, nseg = {}, 0
  if path ~= "/" then
    local pos = 2
    while true do
      local s = str_find(path, "/", pos, true)
      nseg = nseg + 1
      if not s then segs[nseg] = str_sub(path, pos) break end
      segs[nseg] = str_sub(path, pos, s - 1)
      pos = s + 1
    end
  end
  local last = segs[nseg]
  for _, e in each(list) do
    local tpl = e.tpl
    local vars
    if tpl.verb then
      local vl = #tpl.verb
      if last and #last > vl and str_sub(last, -vl - 1) == ":" .. tpl.verb then
        segs[nseg] = str_sub(last, 1, -vl - 2)
        vars = try(tpl, segs, nseg)
        segs[nseg] = last
      end
    else
      vars = try(tpl, segs, nseg)
    end
    if vars then return e.rule.method, vars, e.rule end
  end
  return nil
end

return _M
