---@meta _
-- Type annotations for lua-language-server: proto3 JSON (`to_json` /
-- `from_json` on handles, schemas and registries: the `json` branch,
-- "Proto3 JSON" in README.md). Adds methods to the classes of dynpb.lua and
-- dynpb/registry.lua; not a module of its own.

---Options of `to_json`. Unknown names, and options of `from_json`, raise.
---@class dynpb.ToJsonOpts
---@field emit_defaults? boolean print fields without presence when unset (zeros, `[]`, `{}`)
---@field proto_names? boolean member names as declared instead of the JSON names
---@field enums? "name"|"number" enum values as names (default) or numbers
---@field indent? integer pretty-print with this many spaces per level (0..16; default compact)
---@field unresolved_any? "error"|"raw" `"raw"`: an Any of a type not in the schema prints as `{"@type": url, "@value": base64}`
---@field max_depth? integer nesting limit (1..1000, default 100)

---Options of `from_json`. Unknown names, and options of `to_json`, raise.
---@class dynpb.FromJsonOpts
---@field ignore_unknown_fields? boolean skip members that are not fields and unknown enum names
---@field max_depth? integer nesting limit (1..1000, default 100)

---@class dynpb.Schema
local schema = {}

---@class dynpb.Handle
local handle = {}

---@class dynpb.registry
local registry = {}

---@class dynpb.Registry
local reg = {}

---Canonical proto3 JSON of protobuf bytes.
---@param bytes string
---@param opts? dynpb.ToJsonOpts
---@return string|nil json
---@return string? err bytes that do not decode, or a value JSON cannot hold (names the field path)
function handle:to_json(bytes, opts) end

---Protobuf bytes of proto3 JSON, canonical as `encode` writes them.
---@param json string
---@param opts? dynpb.FromJsonOpts
---@return string|nil bytes
---@return string? err names the field path and the byte offset
function handle:from_json(json, opts) end

---`handle:to_json` naming the message type.
---@param type_name string
---@param bytes string
---@param opts? dynpb.ToJsonOpts
---@return string|nil json
---@return string? err
function schema:to_json(type_name, bytes, opts) end

---`handle:from_json` naming the message type.
---@param type_name string
---@param json string
---@param opts? dynpb.FromJsonOpts
---@return string|nil bytes
---@return string? err
function schema:from_json(type_name, json, opts) end

---`schema:to_json` on the registry's current schema.
---@param type_name string
---@param bytes string
---@param opts? dynpb.ToJsonOpts
---@return string|nil json
---@return string? err
function reg:to_json(type_name, bytes, opts) end

---`schema:from_json` on the registry's current schema.
---@param type_name string
---@param json string
---@param opts? dynpb.FromJsonOpts
---@return string|nil bytes
---@return string? err
function reg:from_json(type_name, json, opts) end

---`reg:to_json(...)`, called through the module (as README's table shows it).
---@param reg dynpb.Registry
---@param type_name string
---@param bytes string
---@param opts? dynpb.ToJsonOpts
---@return string|nil json
---@return string? err
function registry.to_json(reg, type_name, bytes, opts) end

---`reg:from_json(...)`, called through the module.
---@param reg dynpb.Registry
---@param type_name string
---@param json string
---@param opts? dynpb.FromJsonOpts
---@return string|nil bytes
---@return string? err
function registry.from_json(reg, type_name, json, opts) end
