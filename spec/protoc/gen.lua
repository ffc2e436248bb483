-- spec/protoc/gen.lua -- random valid .proto files for the dynpb.compile /
-- protoc comparison: proto2 and proto3, packages, imports (public too),
-- nested messages and enums, every scalar type and label, maps, oneofs,
-- proto3 optional, groups, extension ranges and extend blocks, reserved
-- numbers and names, defaults in every form, json_name, standard and custom
-- options (scalar and aggregate values, option paths), services.
--
--   local gen = require("gen"); local files = gen.set(seed)  -- { {name=, text=}, ... }
--   gen.set(seed, { editions = true }): editions 2023 and 2024 files (features on
--   files, messages, fields and enums; delimited, implicit and legacy-required
--   fields, closed enums, 2024's export/local) mixed with proto2 and proto3 ones,
--   for the comparison with buf (spec/protoc/buf_compare.lua)
local _M = {}

local floor, concat, fmt = math.floor, table.concat, string.format

-- a small LCG: the same seed gives the same files on every Lua
local function rng(seed)
  local s = seed % 2147483647
  if s <= 0 then s = s + 2147483646 end
  return function(n)
    s = (s * 48271) % 2147483647
    return s % n + 1
  end
end

local SCALARS = { "double", "float", "int64", "uint64", "int32", "fixed64", "fixed32", "bool",
  "string", "bytes", "uint32", "sfixed32", "sfixed64", "sint32", "sint64" }
local KEYS = { "int64", "uint64", "int32", "fixed64", "fixed32", "bool", "string", "uint32",
  "sfixed32", "sfixed64", "sint32", "sint64" }

local function default_for(R, t, nohex)
  if t == "bool" then return R(2) == 1 and "true" or "false" end
  if t == "string" then
    local forms = { '"hello"', '"a\\tb\\n"', "'sq\\'x'", '"\\x41\\101\\u00e9"', '"con" "cat"', '"\\001\\377"', '""' }
    return forms[R(#forms)]
  end
  if t == "bytes" then
    local forms = { '"\\000\\001\\xff"', '"abc"', '"\\\\q\\""', '"\\U0001F600"' }
    return forms[R(#forms)]
  end
  if t == "double" or t == "float" then
    local forms = { "1.5", "-2.25", "1e10", "-1E-5", "inf", "-inf", "nan", "0x10", "3", ".5", "1.", "0.1", "123456789.123" }
    if nohex then forms[8] = "16" end   -- (buf refuses a hex float default)
    return forms[R(#forms)]
  end
  if t:match("^u") or t:match("^fixed") then
    local forms = { "0", "7", "0x1F", "017", "4294967295" }
    local v = forms[R(#forms)]
    if v == "4294967295" and t:match("64") then v = "18446744073709551615" end
    return v
  end
  local forms = { "0", "-1", "42", "-0x10", "0777", "2147483647", "-2147483648" }
  local v = forms[R(#forms)]
  if t:match("64") and R(3) == 1 then v = "-9223372036854775808" end
  return v
end

local function ident(prefix, n) return prefix .. n end

function _M.set(seed, opts)
  local editions = opts and opts.editions
  local R = rng(seed)
  local files = {}
  local nfiles = R(3)
  local uid = 0
  local function id(p) uid = uid + 1; return ident(p, uid) end

  -- visible types of earlier files, with their full names
  local exported = {}     -- { {full=, kind="msg"|"enum", proto3=, values=} }
  local custom = nil      -- custom option extensions defined in file 1 (if any)

  for fi = 1, nfiles do
    local proto3 = R(2) == 1
    -- editions mode: most files are editions (ed = "2023" / "2024"), the
    -- others proto2 / proto3 as proto3 says
    local ed, fimplicit, fclosed, fexpanded
    if editions then
      local k = R(10)
      if k <= 5 then ed = "2023" elseif k <= 7 then ed = "2024" end
      if ed then proto3 = false end
    end
    local ed24 = ed == "2024"
    local function opt_(l) return (ed and l == "optional ") and "" or l end  -- no labels under editions
    local pkg = R(3) > 1 and ("pk" .. seed % 97 .. ".f" .. fi) or nil
    local L = {}
    -- every line may get comments around it (source info: leading, trailing,
    -- detached, block comments), from a stream of its own so the
    -- declarations do not depend on them
    local RC = rng(seed * 7919 + fi)
    local CMT = { "// lead %d", "/* block %d */", "/** doc %d\n * more\n */", "//", "/*\n  star %d\n*/" }
    local function w(ind, s)
      local pad = string.rep("  ", ind)
      local k = RC(10)
      if k == 1 then L[#L + 1] = pad .. fmt(CMT[RC(#CMT)], uid) end
      if k == 2 then L[#L + 1] = pad .. "// detached " .. uid; L[#L + 1] = "" end
      if k == 3 then s = s .. " // trailing " .. uid end
      if k == 4 then s = s .. " /* trailing block */" end
      if k == 5 then L[#L + 1] = "" end
      L[#L + 1] = pad .. s
    end
    if ed then w(0, 'edition = "' .. ed .. '";')
    else w(0, proto3 and 'syntax = "proto3";' or (R(2) == 1 and 'syntax = "proto2";' or "// no syntax: proto2")) end
    if pkg then w(0, "package " .. pkg .. ";") end
    local imports = {}
    for j = 1, fi - 1 do
      if R(2) == 1 then
        imports[#imports + 1] = j
        w(0, fmt('import %s"g%d_%d.proto";', R(4) == 1 and "public " or "", seed, j))
      end
    end
    local want_custom = fi == 1 and R(2) == 1
    if want_custom then w(0, 'import "google/protobuf/descriptor.proto";') end
    -- file options
    if R(2) == 1 then w(0, 'option java_package = "com.ex' .. fi .. '";') end
    if R(3) == 1 then w(0, "option optimize_for = " .. ({ "SPEED", "CODE_SIZE" })[R(2)] .. ";") end
    if R(3) == 1 then w(0, "option cc_enable_arenas = true;") end
    if R(4) == 1 then w(0, 'option go_package = "ex/f' .. fi .. '";') end
    if ed then
      if R(5) == 1 then fimplicit = true; w(0, "option features.field_presence = IMPLICIT;") end
      if R(6) == 1 then fclosed = true; w(0, "option features.enum_type = CLOSED;") end
      if R(5) == 1 then fexpanded = true; w(0, "option features.repeated_field_encoding = EXPANDED;") end
      if R(5) == 1 then w(0, "option features.utf8_validation = NONE;") end
      if R(6) == 1 then w(0, "option features.json_format = LEGACY_BEST_EFFORT;") end
      if R(6) == 1 then w(0, "option features.message_encoding = DELIMITED;") end
    end

    local visible = {}
    for _, j in ipairs(imports) do
      for _, t in ipairs(exported[j] or {}) do if not t.hidden then visible[#visible + 1] = t end end
    end
    local mine = {}

    if want_custom then
      custom = { pkg = pkg, file = fi }
      local pfx = pkg and (pkg .. ".") or ""
      local function ow(line)
        -- (OptEnum may be closed and the file default IMPLICIT: e keeps presence)
        -- (and an extension of a closed OptEnum under IMPLICIT: buf refuses it, protoc
        -- does not, extensions having presence; OptEnum is made open)
        if ed then
          line = line:gsub("optional OptEnum e = 5;", "OptEnum e = 5 [features.field_presence = EXPLICIT];"):gsub("optional ", "")
            :gsub("enum OptEnum { ", "enum OptEnum { option features.enum_type = OPEN; ")
        end
        w(0, line)
      end
      ow("message OptAgg { optional int32 a = 1; optional string s = 2; repeated int32 r = 3; optional OptAgg sub = 4; optional OptEnum e = 5; }")
      ow("enum OptEnum { OPT_ZERO = 0; OPT_ONE = 1; OPT_NEG = -3; }")
      ow("extend google.protobuf.FileOptions { optional int32 fo_i = 51001; optional OptAgg fo_agg = 51002; }")
      ow("extend google.protobuf.MessageOptions { optional string mo_s = 51003; optional OptAgg mo_agg = 51004; repeated int32 mo_rep = 51005; }")
      ow("extend google.protobuf.FieldOptions { optional sint64 fd_s = 51006; optional OptEnum fd_e = 51007; optional double fd_d = 51008; optional bool fd_b = 51009; optional fixed32 fd_f = 51010; }")
      ow("extend google.protobuf.EnumValueOptions { optional uint64 ev_u = 51011; }")
      ow("extend google.protobuf.ServiceOptions { optional bytes so_b = 51012; }")
      ow("extend google.protobuf.MethodOptions { optional OptAgg mt_agg = 51013; }")
      custom.prefix = pfx
      if not proto3 then
        custom.proto2 = true
      end
      mine[#mine + 1] = { full = pfx .. "OptAgg", kind = "msg", proto3 = proto3 }
      mine[#mine + 1] = { full = pfx .. "OptEnum", kind = "enum", proto3 = proto3 or ed, values = { "OPT_ZERO" },
        closed = not ed and not proto3 }
      -- a repeated scalar in an aggregate value under a file-level EXPANDED:
      -- buf packs it, protoc (features resolved before extension options) does not
      custom.no_r = ed and fexpanded
    end
    local has_custom = custom and (custom.file == fi or (function()
      for _, j in ipairs(imports) do if j == custom.file then return true end end
    end)())
    local function copt(name) -- "(name)" relative to the custom option's package
      return "(" .. (custom.prefix ~= "" and ("." .. custom.prefix) or "") .. name .. ")"
    end
    if has_custom and R(2) == 1 then
      w(0, "option " .. copt("fo_i") .. " = " .. (R(2) == 1 and "-5" or "77") .. ";")
      if R(2) == 1 then
        w(0, "option " .. copt("fo_agg") .. (custom.no_r and " = { a: 1 s: \"x\" sub { a: 2 } e: OPT_ONE };"
          or " = { a: 1 s: \"x\" r: [1, 2] r: 3 sub { a: 2 } e: OPT_ONE };"))
      else
        w(0, "option " .. copt("fo_agg") .. ".sub.a = 9;")
      end
    end

    -- declarations
    local enum_decl
    local function enum_block(ind, name, full, is_proto3, vis)
      local vals = {}
      local alias = R(4) == 1
      w(ind, (vis or "") .. "enum " .. name .. " {")
      if alias then w(ind + 1, "option allow_alias = true;") end
      local closed = ed and fclosed
      if ed and R(4) == 1 then
        closed = R(2) == 1
        w(ind + 1, "option features.enum_type = " .. (closed and "CLOSED" or "OPEN") .. ";")
      end
      vals.closed = closed
      local n = R(4)
      local used = {}
      for k = 1, n do
        local v = id(name:upper() .. "_V")
        local num = (k == 1) and 0 or (R(3) == 1 and -R(100) or R(1000))
        while used[num] do num = num + 1001 end
        used[num] = true
        local opt = ""
        if R(5) == 1 then opt = " [deprecated = true]" end
        if has_custom and R(4) == 1 then opt = " [" .. copt("ev_u") .. " = 18446744073709551615]" end
        w(ind + 1, v .. " = " .. num .. opt .. ";")
        vals[#vals + 1] = v
      end
      if alias then w(ind + 1, vals[1] .. "_ALIAS = 0;") end
      if R(3) == 1 then w(ind + 1, "reserved 5000 to 5010, 6000 to max;") end
      if R(4) == 1 then w(ind + 1, ed and ("reserved OLD_" .. name:upper() .. ";") or ('reserved "OLD_' .. name:upper() .. '";')) end
      w(ind, "}")
      return vals
    end
    enum_decl = enum_block

    local msg_block
    -- 2024: nested types are local unless exported, top-level ones exported
    -- unless local; a local type is not visible to the other files
    local function vis_for(depth)
      if not ed24 then return nil, false end
      if depth > 1 then
        if R(2) == 1 then return "export ", false end
        return nil, true
      end
      if R(6) == 1 then return "local ", true end
      return (R(4) == 1 and "export " or nil), false
    end
    msg_block = function(ind, name, full, depth, vis, hidden)
      local types = {}
      w(ind, (vis or "") .. "message " .. name .. " {")
      if R(4) == 1 then w(ind + 1, "option deprecated = true;") end
      if ed and R(5) == 1 then w(ind + 1, "option features.json_format = " .. (R(2) == 1 and "ALLOW" or "LEGACY_BEST_EFFORT") .. ";") end
      if has_custom and R(3) == 1 then w(ind + 1, "option " .. copt("mo_s") .. ' = "m' .. name .. '";') end
      if has_custom and R(4) == 1 then w(ind + 1, "option " .. copt("mo_rep") .. " = 1;"); w(ind + 1, "option " .. copt("mo_rep") .. " = 2;") end
      if has_custom and R(4) == 1 then w(ind + 1, "option " .. copt("mo_agg") .. " = { sub < s: 'q' > };") end
      local num = 0
      local function nextnum() num = num + R(3); return num end
      -- nested
      if depth < 3 and R(3) == 1 then
        local nn = id("Nested")
        types[#types + 1] = { full = full .. "." .. nn, rel = nn, kind = "msg" }
        local v, h = vis_for(depth + 1)
        msg_block(ind + 1, nn, full .. "." .. nn, depth + 1, v, h)
      end
      if R(2) == 1 then
        local en = id("En")
        local v, h = vis_for(depth + 1)
        local vals = enum_decl(ind + 1, en, full .. "." .. en, proto3, v)
        types[#types + 1] = { full = full .. "." .. en, rel = en, kind = "enum", values = vals, closed = vals.closed }
        mine[#mine + 1] = { full = full .. "." .. en, kind = "enum", proto3 = proto3 or (ed and not vals.closed), values = vals,
          closed = vals.closed or (not proto3 and not ed), hidden = h }
      end
      local nf = R(8)
      local oneof_open = false
      for k = 1, nf do repeat
        local fname = id((R(3) == 1 and not ed24) and "f_" or "fld")
        if R(4) == 1 then fname = fname .. "_x_y" end
        local r = R(12)
        local label
        if proto3 then label = ({ "", "", "repeated ", "optional " })[R(4)]
        else label = ({ "optional ", "required ", "repeated " })[R(3)] end
        local opts = {}
        -- editions: no labels; presence by feature (file default, or the field's)
        local implicit = false
        if ed then
          local req = label == "required "
          label = label == "repeated " and "repeated " or ""
          if label == "" then
            implicit = fimplicit
            if req then opts[#opts + 1] = "features.field_presence = LEGACY_REQUIRED"; implicit = false
            elseif R(5) == 1 then
              implicit = R(2) == 1
              opts[#opts + 1] = "features.field_presence = " .. (implicit and "IMPLICIT" or "EXPLICIT")
            end
          end
        end
        local function explicit() -- a default or a closed enum needs presence
          if implicit then
            for i = #opts, 1, -1 do if opts[i]:match("^features.field_presence") then table.remove(opts, i) end end
            opts[#opts + 1] = "features.field_presence = EXPLICIT"
            implicit = false
          end
        end
        local t
        if r <= 6 then
          t = SCALARS[R(#SCALARS)]
          if not proto3 and label == "optional " and R(2) == 1 then
            opts[#opts + 1] = "default = " .. default_for(R, t, editions)
          end
          if ed and label == "" and R(3) == 1 then
            explicit()
            opts[#opts + 1] = "default = " .. default_for(R, t, editions)
          end
          if label == "repeated " and t ~= "string" and t ~= "bytes" and R(2) == 1 then
            if ed then opts[#opts + 1] = "features.repeated_field_encoding = " .. (R(2) == 1 and "PACKED" or "EXPANDED")
            else opts[#opts + 1] = "packed = " .. (R(2) == 1 and "true" or "false") end
          end
          if ed and t == "string" and R(4) == 1 then
            opts[#opts + 1] = "features.utf8_validation = " .. (R(2) == 1 and "NONE" or "VERIFY")
          end
          if has_custom and R(4) == 1 then
            local cs = { copt("fd_s") .. " = -12", copt("fd_e") .. " = OPT_NEG", copt("fd_d") .. " = -2.5e3",
              copt("fd_d") .. " = 2.5", copt("fd_b") .. " = true", copt("fd_f") .. " = 0xFFFFFFFF" }
            opts[#opts + 1] = cs[R(#cs)]
          end
        elseif r <= 8 then
          -- a visible type, by various spellings
          local pool = {}
          for _, x in ipairs(types) do pool[#pool + 1] = x end
          for _, x in ipairs(visible) do if (not proto3 or x.kind == "msg" or x.proto3) then pool[#pool + 1] = x end end
          for _, x in ipairs(mine) do if x.kind == "msg" or (not proto3 or x.proto3) then pool[#pool + 1] = x end end
          if #pool == 0 then t = "string" else
            local x = pool[R(#pool)]
            if x.kind == "enum" and proto3 and not x.proto3 then x = nil end
            if x then
              t = (x.rel and R(2) == 1) and x.rel or ("." .. x.full)
              if x.kind == "enum" and not proto3 and label == "optional " and x.values and R(2) == 1 then
                opts[#opts + 1] = "default = " .. x.values[R(#x.values)]
              end
              if ed and x.kind == "enum" and label == "" then
                if x.closed then explicit() end
                if x.values and R(3) == 1 then explicit(); opts[#opts + 1] = "default = " .. x.values[R(#x.values)] end
              end
              if ed and x.kind == "msg" then
                -- a message field: presence always; message_encoding may be set
                for i = #opts, 1, -1 do if opts[i]:match("^features.field_presence = [IE]") then table.remove(opts, i) end end
                if R(3) == 1 then opts[#opts + 1] = "features.message_encoding = " .. (R(2) == 1 and "DELIMITED" or "LENGTH_PREFIXED") end
              end
            else t = "int32" end
          end
        elseif r == 9 and not oneof_open then
          local kt = KEYS[R(#KEYS)]
          local vt = SCALARS[R(#SCALARS)]
          if #types > 0 and R(2) == 1 then
            local x = types[R(#types)]
            -- (a closed enum value under IMPLICIT would be an implicit closed enum field)
            if not (ed and fimplicit and x.closed) then vt = x.rel end
          end
          local mo = ""
          if ed and (kt == "string" or vt == "string") and R(3) == 1 then mo = " [features.utf8_validation = NONE]" end
          if proto3 or true then
            w(ind + 1, fmt("map<%s, %s> %s = %d%s;", kt, vt, fname, nextnum(), mo))
          end
          break
        elseif r == 10 and not proto3 and not ed and depth < 3 then
          local gn = id("Grp")
          w(ind + 1, fmt("%sgroup %s = %d {", label, gn, nextnum()))
          w(ind + 2, fmt("optional int32 g%d = %d;", uid, 1))
          w(ind + 1, "}")
          break
        elseif r == 11 then
          local on = id("choice")
          w(ind + 1, "oneof " .. on .. " {")
          w(ind + 2, fmt("%s %s = %d;", SCALARS[R(#SCALARS)], id(ed24 and "o" or "o_"), nextnum()))
          w(ind + 2, fmt("%s %s = %d [json_name = \"J%d\"];", SCALARS[R(#SCALARS)], id(ed24 and "o" or "o_"), nextnum(), uid))
          w(ind + 1, "}")
          break
        else
          t = SCALARS[R(#SCALARS)]
          if R(2) == 1 then opts[#opts + 1] = fmt('json_name = "js%d"', uid) end
          if R(3) == 1 then opts[#opts + 1] = "deprecated = true" end
        end
        do
          local o = #opts > 0 and (" [" .. concat(opts, ", ") .. "]") or ""
          w(ind + 1, fmt("%s%s %s = %d%s;", label, t, fname, nextnum(), o))
        end
      until true end
      if R(3) == 1 then
        w(ind + 1, fmt("reserved %d, %d to %d;", num + 5, num + 10, num + 12))
        w(ind + 1, ed and fmt("reserved gone%d;", uid) or fmt('reserved "gone%d";', uid))
        num = num + 12
      end
      if not proto3 and R(3) == 1 then
        w(ind + 1, fmt("extensions %d to %d;", num + 100, num + 199))
        if R(2) == 1 then w(ind + 1, fmt("extensions %d to max;", num + 1000)) end
        types.ext = { full = full, lo = num + 100 }
      end
      if not proto3 and types.ext and R(2) == 1 then
        w(ind + 1, "extend " .. name .. " {")
        w(ind + 2, fmt("%sint32 %s = %d;", opt_("optional "), id("inner_ext"), types.ext.lo))
        w(ind + 2, fmt("repeated string %s = %d;", id("inner_ext"), types.ext.lo + 1))
        w(ind + 1, "}")
      end
      w(ind, "}")
      local me = { full = full, rel = nil, kind = "msg", proto3 = proto3, ext = types.ext, hidden = hidden }
      mine[#mine + 1] = me
      return me
    end

    local nm = R(4)
    local msgs = {}
    for k = 1, nm do
      local name = id("Msg")
      local full = (pkg and (pkg .. ".") or "") .. name
      local v, h = vis_for(1)
      msgs[#msgs + 1] = msg_block(0, name, full, 1, v, h)
    end
    if R(2) == 1 then
      local en = id("TopEnum")
      local v, h = vis_for(1)
      local vals = enum_decl(0, en, (pkg and (pkg .. ".") or "") .. en, proto3, v)
      mine[#mine + 1] = { full = (pkg and (pkg .. ".") or "") .. en, kind = "enum", proto3 = proto3 or (ed and not vals.closed),
        values = vals, closed = vals.closed or (not proto3 and not ed), hidden = h }
    end
    -- top-level extend (proto2 targets)
    for _, m in ipairs(msgs) do
      if m.ext and not proto3 and R(2) == 1 then
        w(0, "extend ." .. m.full .. " {")
        w(1, fmt("%sstring %s = %d [deprecated = true];", opt_("optional "), id("top_ext"), m.ext.lo + 50))
        w(0, "}")
        break
      end
    end
    -- a service
    if #msgs > 0 and R(2) == 1 then
      w(0, "service " .. id("Svc") .. " {")
      if has_custom and R(2) == 1 then w(1, "option " .. copt("so_b") .. ' = "\\x00\\x01";') end
      for k = 1, R(3) do
        local a, b = msgs[R(#msgs)], msgs[R(#msgs)]
        local body = ({ ";", " {}", " { option deprecated = true; }", " { option idempotency_level = NO_SIDE_EFFECTS; }" })[R(4)]
        if has_custom and R(3) == 1 then body = " { option " .. copt("mt_agg") .. " = { a: 5 }; }" end
        w(1, fmt("rpc %s(%s.%s) returns (%s.%s)%s", id("Call"), R(2) == 1 and "stream " or "", a.full,
          R(2) == 1 and "stream " or "", b.full, body))
      end
      w(0, "}")
    end
    exported[fi] = mine
    files[#files + 1] = { name = fmt("g%d_%d.proto", seed, fi), text = concat(L, "\n") .. "\n" }
  end
  return files
end

-- one random edit of the set's last file (a line dropped or doubled, a
-- number bumped, an identifier changed, a ';' dropped, a number reset): the
-- result may or may not be valid; protoc and dynpb must agree on which, and
-- on the bytes or the error
function _M.mutate(set, seed)
  local last = set[#set]
  local lines = {}
  for l in last.text:gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
  local k = (seed * 7919) % #lines + 1
  local kind = seed % 6
  if kind == 0 then table.remove(lines, k)
  elseif kind == 1 then table.insert(lines, k, lines[k])
  elseif kind == 2 then lines[k] = lines[k]:gsub("%d+", function(n) return tostring(tonumber(n) + 1) end, 1)
  elseif kind == 3 then lines[k] = lines[k]:gsub("(%a+)", "%1x", 1)
  elseif kind == 4 then lines[k] = lines[k]:gsub(";", "", 1)
  else lines[k] = lines[k]:gsub("= %d+", "= 1", 1) end
  last.text = table.concat(lines, "\n") .. "\n"
  return set
end

return _M
