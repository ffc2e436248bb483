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
---@field fields? string[] partial decode: only these paths (`{ "id", "customer.name", "items.qty" }`); nested tables only along picked paths, a map, a oneof member or a message named without a sub-path picked whole, unknown fields not kept; a step that is not a field, or goes past a scalar or into a map, raises

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
---@field oneof? string the real oneof it belongs to (not a proto3 `optional` field's synthetic one)
---@field packed boolean how encode writes it (resolved, also from editions features)
---@field default? any the proto2 default (64-bit values a number cannot hold are decimal strings)
---@field map? boolean true for map fields
---@field presence? "explicit"|"implicit" singular fields only (nil for repeated and map fields): whether the field tells "unset" from its zero value
---@field options dynpb.Options the field's options (`packed`, `deprecated`, custom ones under `"[pkg.ext]"`; `{}` when none)

---An extension of a message, as `handle:extensions()` lists them: a `fields()` row
---whose `name` is the extension's full name.
---@class dynpb.Extension: dynpb.Field
---@field key string the key it decodes into and encodes from, e.g. `"[pkg.ext]"`
---@field extendee string full name of the extended message

---@class dynpb.EnumValue
---@field name string
---@field number integer
---@field options dynpb.Options the value's options (`{}` when none)

---Options of a declaration, decoded: standard options under their field names
---(`deprecated = true`, `idempotency_level = "NO_SIDE_EFFECTS"`), custom ones under
---`"[full.extension.name]"`, undeclared ones raw under `options[dynpb.UNKNOWN]`.
---@alias dynpb.Options table<string, any>

---A method of a service, as `schema:method` and `schema:service(name).methods` give it.
---@class dynpb.Method
---@field name string e.g. "GetShop"
---@field full_name string e.g. "pkg.Svc.GetShop"
---@field path string the gRPC path, e.g. "/pkg.Svc/GetShop"
---@field service string the service's full name
---@field input? dynpb.Handle the request type's handle (nil when that type is not in the set)
---@field output? dynpb.Handle the response type's handle (nil when that type is not in the set)
---@field input_type string full name of the request type (no leading dot)
---@field output_type string full name of the response type
---@field client_streaming boolean
---@field server_streaming boolean
---@field options dynpb.Options `MethodOptions` (`["[google.api.http]"]`, ...)

---@class dynpb.Service
---@field name string full service name
---@field file string the file that declares it
---@field methods dynpb.Method[] in declaration order
---@field options dynpb.Options `ServiceOptions`

---One file of the set, as `schema:files()` lists them.
---@class dynpb.File
---@field name string e.g. "shop/v1/shop.proto"
---@field package string "" when the file has none
---@field syntax "proto2"|"proto3"|"editions" "proto2" when the descriptor leaves it out
---@field edition? string editions files: e.g. "EDITION_2023"
---@field dependencies string[] the imported file names
---@field options dynpb.Options `FileOptions`

---@class dynpb.Oneof
---@field name string
---@field options dynpb.Options `OneofOptions`

---One binding of a `google.api.http` rule (additional bindings are rows of their own).
---@class dynpb.HttpRule
---@field verb string "GET", "PUT", "POST", "DELETE", "PATCH" or a custom pattern's kind
---@field template string the path template, e.g. "/v1/{name=shops/*}"
---@field body? string "*" or a field name (nil: no body)
---@field response_body? string a field name
---@field method dynpb.Method the method it binds (any value in hand-made rows given to `dynpb.router`'s `new`)

---Options of `to_text`. Unknown names raise.
---@class dynpb.ToTextOpts
---@field indent? integer spaces before every line (0..1000)
---@field one_line? boolean `a: 1 b { c: 2 }`
---@field print_unknown? boolean unknown fields by number after the known ones, as protoc prints them
---@field expand_any? boolean `false`: print an Any's `type_url` and `value` instead of `[type.googleapis.com/pkg.T] { ... }` (default true)
---@field max_depth? integer nesting limit (default 100, at most 1000)

---Options of `from_text`. Unknown names raise.
---@class dynpb.FromTextOpts
---@field max_depth? integer nesting limit (default 100, at most 1000)

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

---Replaces the file at `path` so that a crash or power loss leaves the old or the
---new contents, whole (temp file in the same directory, `fsync`, `rename`, `fsync`
---of the directory). Non-string arguments raise.
---@param path string
---@param bytes string
---@return true|nil ok
---@return string? err "dynpb: write_durable <path>: <step>: <strerror>"
function dynpb.write_durable(path, bytes) end

---A router over `schema:http_rules()` (`dynpb.router`). A value that is not a schema raises.
---@param schema dynpb.Schema
---@return dynpb.Router|nil router
---@return string? err names the method and the template of the first bad rule
function dynpb.http_router(schema) end

---Whether an io file handle is a terminal. Raises unless `file` is an open io file.
---@param file file*
---@return boolean
function dynpb.isatty(file) end

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

---Full names of the services, in file order.
---@return string[]
function schema:services() end

---A service with its methods and options (a fresh copy on every call).
---@param name string full service name, with or without a leading dot
---@return dynpb.Service|nil service
---@return string? err no such service
function schema:service(name) end

---A method by `"pkg.Svc.GetShop"`, `"pkg.Svc/GetShop"` or the gRPC path `"/pkg.Svc/GetShop"`.
---@param x string
---@return dynpb.Method|nil method
---@return string? err no such method
function schema:method(x) end

---The files of the set, in set order.
---@return dynpb.File[]
function schema:files() end

---The options of an enum.
---@param name string full enum name, with or without a leading dot
---@return dynpb.Options|nil options
---@return string? err no such enum
function schema:enum_options(name) end

---Every binding of every method's `google.api.http` option, in service, method and binding order.
---@return dynpb.HttpRule[]
function schema:http_rules() end

---protobuf text format of the bytes, byte-equal to `protoc --decode=TYPE`.
---@param type_name string
---@param bytes string
---@param opts? dynpb.ToTextOpts
---@return string|nil text
---@return string? err bytes that do not decode ("dynpb: to_text TYPE: ...")
function schema:to_text(type_name, bytes, opts) end

---Reads text format (what `to_text` and `protoc --decode` print) into canonical bytes.
---@param type_name string
---@param text string
---@param opts? dynpb.FromTextOpts
---@return string|nil bytes
---@return string? err with line:column and field path ("dynpb: from_text TYPE: 3:9: field '...': ...")
function schema:from_text(type_name, text, opts) end

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

---The extensions of this message, wherever declared in the set.
---@return dynpb.Extension[]
function handle:extensions() end

---The message's options (`map_entry`, `deprecated`, custom ones, ...).
---@return dynpb.Options
function handle:options() end

---The oneofs of the message as the descriptor declares them, in declaration order:
---proto3 `optional` fields' synthetic oneofs (`_name`) included, unlike `fields()`'s `oneof`.
---@return dynpb.Oneof[]
function handle:oneofs() end

---`schema:to_text` for this handle's type.
---@param bytes string
---@param opts? dynpb.ToTextOpts
---@return string|nil text
---@return string? err
function handle:to_text(bytes, opts) end

---`schema:from_text` for this handle's type.
---@param text string
---@param opts? dynpb.FromTextOpts
---@return string|nil bytes
---@return string? err
function handle:from_text(text, opts) end

return dynpb
