-- spec/protoc/buf.lua -- dynpb.compile against buf (npm @bufbuild/buf, the
-- reference for editions sources: protoc 3.21 cannot read them), compared
-- as parsed messages: both sets are decoded with the newer descriptor.proto
-- (csrc/gen/src, with the cpp/java/go feature extensions) and printed with
-- to_text, file by file. Byte identity is counted too.
--
--   local buf = require("buf")
--   buf.bin()                                  -- the buf binary, or nil and why
--   buf.compare(dynpb, dir, files, source_info) -- "bytes" | "same" | "both-fail" | nil, detail
local _M = {}
local lib = require("lib")
local q = function(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec/protoc"
local root = here .. "/../.."
do -- absolute: buf runs in the module's directory
  local p = io.popen("cd " .. q(root) .. " && pwd")
  root = p:read("*l") or root
  p:close()
end

-- BUF, else the copy `make buf-compare` installs (build/buf-npm)
function _M.bin()
  local b = os.getenv("BUF")
  if not b or b == "" then b = root .. "/build/buf-npm/node_modules/@bufbuild/buf-linux-x64/bin/buf" end
  local f = io.open(b, "rb")
  if not f then return nil, "no buf binary at " .. b .. " (make buf-compare installs it)" end
  f:close()
  return b
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

-- buf build DIR --path f... --as-file-descriptor-set: bytes, or nil and the message
function _M.build(dir, files, source_info)
  local bin = assert(_M.bin())
  local out = os.tmpname()
  local cmd = { "cd " .. q(dir) .. " && BUF_CACHE_DIR=" .. q(root .. "/build/buf-cache"), q(bin), "build", ".",
    "--as-file-descriptor-set", "-o", q(out) }
  if not source_info then cmd[#cmd + 1] = "--exclude-source-info" end
  for _, f in ipairs(files) do cmd[#cmd + 1] = "--path " .. q(f) end
  local p = io.popen(table.concat(cmd, " ") .. " 2>&1")
  local msg = p:read("*a")
  local ok = p:close()
  local s = read(out)
  os.remove(out)
  if not ok or not s or s == "" then return nil, msg end
  return s
end

local schema
local function desc_schema(dynpb)
  if schema then return schema end
  schema = assert(dynpb.load_proto { files = { "google/protobuf/descriptor.proto", "google/protobuf/cpp_features.proto",
    "google/protobuf/java_features.proto", "google/protobuf/go_features.proto" }, paths = { root .. "/csrc/gen/src" } })
  return schema
end

-- { names in set order }, { name = text format of that FileDescriptorProto },
-- { name = its source_code_info locations, in the set's order }, whether the
-- set has an editions file. The text has
-- the locations sorted: buf records a declaration's parts in another order
-- than protoc (e.g. an enum value's number before its name), the same
-- locations otherwise
-- buf's habits that differ from protoc (3.21 and current alike), normalized
-- on both sides: a float default is printed from its float value widened to
-- double ("8.999999488e+09" where protoc's SimpleFtoa writes "9e+09"), a
-- double one in Go's shortest form ("1.23456789123e+08" for protoc's
-- "123456789.123"); in
-- source info, a trailing line comment loses its newline, a default value's
-- span starts at "default" (protoc's: at the value), and a field's options
-- location is missing when its brackets hold only default / json_name (so
-- field options locations are left out of the comparison), and a statement
-- kind given twice in a scope (two `reserved` lines) gets one location (so
-- only the first location of each path is compared), the fields inside an
-- aggregate option value get locations of their own (left out), and an
-- aggregate option's span leaves out `option` and `;` (custom options'
-- locations compare by path and lines)
local function f32(s)
  local x = tonumber(s)
  if not x or x ~= x or not string.pack then return s end
  return ("%.9g"):format((string.unpack("f", string.pack("f", x))))
end
local function norm_fields(list)
  for _, fd in ipairs(list or {}) do
    if fd.type == "TYPE_FLOAT" and fd.default_value then fd.default_value = f32(fd.default_value) end
    if fd.type == "TYPE_DOUBLE" and fd.default_value and tonumber(fd.default_value) then
      fd.default_value = ("%.17g"):format(tonumber(fd.default_value))
    end
  end
end
local function norm_msg(m)
  norm_fields(m.field)
  norm_fields(m.extension)
  for _, n in ipairs(m.nested_type or {}) do norm_msg(n) end
end

function _M.parse(dynpb, set, S, nocomments)
  S = S or desc_schema(dynpb)
  local t = assert(S:message("google.protobuf.FileDescriptorSet"):decode(set))
  local FD = S:message("google.protobuf.FileDescriptorProto")
  local LOC = S:message("google.protobuf.SourceCodeInfo.Location")
  local names, texts, locs, any_ed, has_desc = {}, {}, {}, false, false
  for i, f in ipairs(t.file or {}) do
    names[i] = f.name
    has_desc = has_desc or f.name == "google/protobuf/descriptor.proto"
    any_ed = any_ed or f.syntax == "editions"
    local sci = f.source_code_info
    f.source_code_info = nil
    -- proto2/proto3 files: source info is protoc 3.21's (make protoc-compare
    -- checks those bytes); buf's differs there (a group's type is a type_name
    -- location), so only editions files' source info is compared with buf
    if f.syntax ~= "editions" then sci = nil end
    for _, m in ipairs(f.message_type or {}) do norm_msg(m) end
    norm_fields(f.extension)
    if sci then
      local kept, seen = {}, {}
      for _, loc in ipairs(sci.location or {}) do
        local key = table.concat(loc.path or {}, ".")
        local dup = seen[key]
        seen[key] = true
        if loc.trailing_comments then loc.trailing_comments = loc.trailing_comments:gsub("\n$", "") end
        if nocomments then loc.leading_comments, loc.trailing_comments, loc.leading_detached_comments = nil, nil, nil end
        local p, n = loc.path or {}, #(loc.path or {})
        local of_field = n >= 3 and n % 2 == 1 and (p[n - 2] == 2 or p[n - 2] == 6 or (n == 3 and p[1] == 7))
        if of_field and p[n] == 7 then
          -- a field's default value: protoc's span is the value, buf's starts at "default"
          local sp = loc.span
          loc.span = #sp == 3 and { sp[1], sp[3] } or { sp[3], sp[4] }
        end
        -- a field's [ ... ] with only default / json_name in it: buf records no options location
        -- a statement given twice (two `reserved` lines): buf records its location once
        if not (of_field and p[n] == 8) and not dup then kept[#kept + 1] = loc end
      end
      -- buf also records the fields inside an aggregate option value
      -- ({ sub < s: 'q' > }): locations under a custom option's location,
      -- within its span; protoc records none, so those are left out
      local opt = {}
      for _, loc in ipairs(kept) do
        local p = loc.path or {}
        if p[#p] and p[#p] >= 1000 then opt[#opt + 1] = loc end
      end
      local function inside(a, b) -- a's path under b's, a's span within b's
        local pa, pb = a.path or {}, b.path or {}
        if #pa <= #pb then return false end
        for i = 1, #pb do if pa[i] ~= pb[i] then return false end end
        local sa, sb = a.span, b.span
        local ea, eb = #sa == 3 and sa[1] or sa[3], #sb == 3 and sb[1] or sb[3]
        local ca, cb = sa[#sa], sb[#sb]
        return (sa[1] > sb[1] or (sa[1] == sb[1] and sa[2] >= sb[2])) and (ea < eb or (ea == eb and ca <= cb))
      end
      if #opt > 0 then
        local k2 = {}
        for _, loc in ipairs(kept) do
          local drop = false
          for _, o in ipairs(opt) do if inside(loc, o) then drop = true; break end end
          if not drop then k2[#k2 + 1] = loc end
        end
        kept = k2
      end
      -- buf's span of an aggregate-valued option statement leaves out
      -- `option` and `;`: custom option locations compare by path and lines
      for _, o in ipairs(opt) do
        local sp = o.span
        o.span = { sp[1], #sp == 3 and sp[1] or sp[3] }
      end
      sci.location = kept
    end
    local txt = assert(FD:to_text(assert(FD:encode(f)), { print_unknown = true }))
    if sci then
      local l = {}
      for k, loc in ipairs(sci.location or {}) do l[k] = assert(LOC:to_text(assert(LOC:encode(loc)))) end
      locs[f.name] = table.concat(l, "--\n")
      table.sort(l)
      txt = txt .. "source_code_info (sorted locations):\n" .. table.concat(l, "--\n")
    end
    texts[f.name] = txt
  end
  return names, texts, locs, any_ed, has_desc
end

local function linediff(a, b)
  local la, lb = {}, {}
  for l in a:gmatch("[^\n]*") do la[#la + 1] = l end
  for l in b:gmatch("[^\n]*") do lb[#lb + 1] = l end
  for i = 1, math.max(#la, #lb) do
    if la[i] ~= lb[i] then
      local out = {}
      for k = math.max(1, i - 3), math.min(math.max(#la, #lb), i + 3) do
        out[#out + 1] = ("  %4d dynpb: %s\n       buf:   %s"):format(k, la[k] or "<end>", lb[k] or "<end>")
      end
      return table.concat(out, "\n")
    end
  end
  return "(no line differs)"
end

-- compares the sets as parsed messages, file by file (the order may differ:
-- both are dependencies first, buf breaks ties its own way): nil and the
-- first difference, or true and whether the order of the files and of the
-- source locations is the same too
function _M.same_sets(dynpb, got, ref, nocomments)
  -- decoded with buf's set itself when it has descriptor.proto: custom options
  -- are then known extensions, so their order (protoc: as written; buf: by
  -- number) and a repeated one's packing (protoc: never packed; buf: packed
  -- when the extension's encoding is) compare as values
  local S
  local _, _, _, _, has_desc = _M.parse(dynpb, ref)
  if has_desc then S = assert(dynpb.load(ref)) end
  local gn, gt, gl, ged = _M.parse(dynpb, got, S, nocomments)
  local rn, rt, rl = _M.parse(dynpb, ref, S, nocomments)
  if #gn ~= #rn then
    return nil, ("dynpb has %d files (%s), buf %d (%s)"):format(#gn, table.concat(gn, " "), #rn, table.concat(rn, " "))
  end
  for _, n in ipairs(gn) do
    if not rt[n] then return nil, "buf's set has no " .. n end
    -- without an editions file, dynpb's built-ins are Debian's (protoc 3.21's
    -- bytes, make protoc-compare), buf's are its own newer copies
    if not ged and n:match("^google/protobuf/") then rt[n] = gt[n] end
    if gt[n] ~= rt[n] then return nil, n .. " differs:\n" .. linediff(gt[n], rt[n]) end
  end
  local order = true
  for i = 1, #gn do order = order and gn[i] == rn[i] and gl[gn[i]] == rl[gn[i]] end
  return true, order
end

-- dynpb.compile { files, paths = { dir } } against buf build of dir:
-- "bytes" (identical bytes), "same" (equal parsed messages), "both-fail"
-- (a, b: the two messages), or nil and what differs. nocomments: also
-- "same-but-comments" when only comments differ (buf attributes some
-- comments in other ways than protoc: drops a detached comment after a
-- trailing block comment, ...; dynpb's are protoc's, make protoc-compare
-- checks them byte for byte on proto2/proto3 sources, same code)
function _M.compare(dynpb, dir, files, source_info, nocomments)
  local ref, berr = _M.build(dir, files, source_info)
  local got, err = dynpb.compile { files = files, paths = { dir }, source_info = source_info }
  if ref and got then
    if ref == got then return "bytes" end
    local ok, why = _M.same_sets(dynpb, got, ref)
    if ok then return "same", why end
    if nocomments and source_info then
      local ok2, why2 = _M.same_sets(dynpb, got, ref, true)
      if ok2 then return "same-but-comments", why2 end
      why = why2
    end
    return nil, why
  end
  if not ref and not got then return "both-fail", err, berr end
  if not got then return nil, "dynpb failed, buf did not: " .. tostring(err) end
  return nil, "buf failed, dynpb did not: " .. tostring(berr):gsub("\n$", "")
end

_M.read = read
_M.q = q
_M.lib = lib
return _M
