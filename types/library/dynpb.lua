---@meta dynpb
-- Type annotations for lua-language-server: the dynpb module, its schemas and
-- message handles. Descriptions only; see README.md for the full rules.

---Run-time protobuf schemas: load a compiled FileDescriptorSet, get enum
---constants, decode and encode messages as plain Lua tables.
---@class dynpb
---@field UNKNOWN string the key under which decoded tables keep unknown fields (`"@unknown"`)
---@field _VERSION string
local dynpb = {}

---@class dynpb.LoadOpts
---@field pin? boolean `false`: load without entering the pinned set (default true)

---@class dynpb.Stats
---@field hits integer loads answered from the cache
---@field misses integer loads that had to compile (successful or not)
---@field live integer compiled schemas not yet freed
---@field pinned integer schemas held by the pinned LRU
---@field bytes integer C memory held by the live compiled schemas

---@class dynpb.ConfigureOpts
---@field pin integer how many recently used schemas are kept strongly (0..1000000; default 4)

---Options of `decode`. Unknown names raise.
---@class dynpb.DecodeOpts
---@field max_depth? integer nesting limit (default 100, at most 1000)
---@field int64? "auto"|"string" `"string"`: 64-bit integers as decimal strings always
---@field enums? "name"|"number" enum values as names (default) or numbers
---@field defaults? boolean|"all" `true`: absent singular scalars get their defaults; `"all"`: also empty tables for absent repeated and map fields
---@field array_mt? table a metatable given to every decoded array (e.g. `cjson.array_mt`)
---@field unknown? "keep"|"drop" unknown fields kept under `dynpb.UNKNOWN` (default) or dropped

---Options of `encode`. Unknown names raise.
---@class dynpb.EncodeOpts
---@field max_depth? integer nesting limit (default 100, at most 1000)
---@field unknown? "drop" do not emit kept unknown fields
---@field ignore_unknown_keys? boolean skip keys that are not fields instead of failing

---One field of a message, as `handle:fields()` lists them.
---@class dynpb.Field
---@field name string
---@field number integer
---@field type string the .proto type: "int32", "string", "message", "enum", "group", ...
---@field label "optional"|"required"|"repeated"
---@field type_name? string full name of the message, group or enum type
---@field oneof? string the real oneof it belongs to
---@field packed? boolean
---@field default? any the proto2 default (64-bit values a number cannot hold are decimal strings)
---@field map? boolean true for map fields

---@class dynpb.EnumValue
---@field name string
---@field number integer

---Read-only constants of one enum: `C.NAME --> number`, `C[number] --> "NAME"`.
---@alias dynpb.Constants table<string|integer, integer|string>

---A compiled descriptor set. Loading the same bytes again returns the same object.
---@class dynpb.Schema
---@field fingerprint string lowercase hex SHA-256 of the bytes it was compiled from
local schema = {}

---A message type of a schema, for decoding and encoding without a name lookup.
---@class dynpb.Handle
---@field name string the full message name, e.g. "shop.v1.Order"
---@field schema dynpb.Schema the schema it belongs to (kept alive by the handle)
local handle = {}

---Compiles a FileDescriptorSet (or returns the cached schema of the same bytes).
---Raises on misuse (bytes not a string, unknown option).
---@param bytes string the serialized FileDescriptorSet (`protoc --include_imports --descriptor_set_out=...`)
---@param opts? dynpb.LoadOpts
---@return dynpb.Schema|nil schema
---@return string? err why the bytes are not a valid descriptor set
function dynpb.load(bytes, opts) end

---`dynpb.load` on the contents of a file.
---@param path string
---@param opts? dynpb.LoadOpts
---@return dynpb.Schema|nil schema
---@return string? err
function dynpb.load_file(path, opts) end

---Lowercase hex SHA-256 of the bytes (what `sha256sum` prints), without compiling.
---@param bytes string
---@return string
function dynpb.fingerprint(bytes) end

---The cache counters.
---@return dynpb.Stats
function dynpb.stats() end

---Sets how many recently used schemas stay pinned; returns that number.
---@param opts dynpb.ConfigureOpts
---@return integer pin
function dynpb.configure(opts) end

---Full names of the message types (no leading dot; map entries left out).
---@return string[]
function schema:types() end

---Full names of the enum types.
---@return string[]
function schema:enums() end

---The read-only constants table of an enum.
---@param name string full enum name, with or without a leading dot
---@return dynpb.Constants|nil constants
---@return string? err
function schema:enum(name) end

---The values of an enum in declaration order.
---@param name string
---@return dynpb.EnumValue[]|nil values
---@return string? err
function schema:enum_values(name) end

---A handle for one message type.
---@param name string full message name, with or without a leading dot
---@return dynpb.Handle|nil handle
---@return string? err
function schema:message(name) end

---Decodes protobuf bytes into a plain Lua table. Malformed bytes give nil, err;
---an unknown type name or option raises.
---@param type_name string
---@param bytes string
---@param opts? dynpb.DecodeOpts
---@return table|nil message
---@return string? err names the rule, the field path and the byte offset
function schema:decode(type_name, bytes, opts) end

---Encodes a Lua table (canonical, deterministic bytes). Bad values give nil, err.
---@param type_name string
---@param t table
---@param opts? dynpb.EncodeOpts
---@return string|nil bytes
---@return string? err names the rule and the field path
function schema:encode(type_name, t, opts) end

---The fields of the message, by field number.
---@return dynpb.Field[]
function handle:fields() end

---`schema:decode` for this handle's type.
---@param bytes string
---@param opts? dynpb.DecodeOpts
---@return table|nil message
---@return string? err
function handle:decode(bytes, opts) end

---`schema:encode` for this handle's type.
---@param t table
---@param opts? dynpb.EncodeOpts
---@return string|nil bytes
---@return string? err
function handle:encode(t, opts) end

return dynpb
