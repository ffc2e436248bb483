---@meta dynpb.registry
-- Type annotations for lua-language-server: dynpb.registry, live schemas
-- from a schema registry (or a file:// URL).

---@class dynpb.registry
---@field _VERSION string
local registry = {}

---A request given to a transport.
---@class dynpb.Request
---@field url string
---@field headers? table<string, string>
---@field timeout? number seconds for the whole transfer
---@field connect_timeout? number seconds for the connection
---@field max_bytes? integer the largest body accepted
---@field max_redirects? integer (dynpb.http only; default 5)
---@field cafile? string
---@field capath? string
---@field cert? string
---@field key? string
---@field key_password? string
---@field forward_headers? boolean also send `headers` to a redirect target of another scheme, host or port
---@field allow_insecure_redirect? boolean (dynpb.http only) follow an https -> http redirect

---A completed HTTP exchange, whatever its status.
---@class dynpb.Response
---@field status integer
---@field body string
---@field headers table<string, string> lowercase names: etag, last-modified, retry-after, content-type
---@field url? string the URL after redirects

---A running background fetch (`transport.start`).
---@class dynpb.Job
local job = {}

---nil while running, then once the response, or false and the error.
---@return dynpb.Response|false|nil res
---@return string? err
function job:poll() end

---Aborts the transfer and joins its thread.
function job:cancel() end

---What fetches descriptor sets for a registry: libcurl by default
---(`registry.curl_transport()`), OpenResty cosockets in dynpb.resty, gRPC
---server reflection (`grpc.reflection_transport`). `save(path, bytes)` writes
---the snapshot (default `dynpb.write_durable`; may yield).
---@class dynpb.Transport
---@field fetch fun(req: dynpb.Request): dynpb.Response|nil, string?
---@field start? fun(req: dynpb.Request): dynpb.Job|nil, string?
---@field now? fun(): number
---@field save? fun(path: string, bytes: string): true|nil, string?

---@class dynpb.RegistryOpts
---@field url string `http://`, `https://` or `file://`; for strategy "versions", the schema's base URL; for "reflection", `grpc://` or `grpcs://`
---@field headers? table<string, string> sent only to the scheme, host and port of `url` (strategy "reflection": as gRPC metadata)
---@field forward_headers? boolean send `headers` to every redirect hop too
---@field timeout? number seconds (default 5)
---@field connect_timeout? number seconds (default 2)
---@field refresh? number seconds between successful refreshes (default 30); also the backoff cap
---@field jitter? number fraction in [0, 1) (default 0.1)
---@field strategy? "latest"|"versions"|"reflection" "reflection": the gRPC server at `url`, by server reflection (`dynpb.grpc`)
---@field services? string[] strategy "reflection": the services whose files make the schema (default every listed one)
---@field snapshot? string file with the last good bytes (written with `dynpb.write_durable`)
---@field max_bytes? integer default 64 MiB
---@field background? boolean fetch on a C thread from poll()
---@field on_update? fun(schema: dynpb.Schema, previous: dynpb.Schema|nil)
---@field on_error? fun(err: string)
---@field cafile? string
---@field capath? string
---@field cert? string
---@field key? string
---@field key_password? string
---@field transport? dynpb.Transport

---@class dynpb.RegistryStats
---@field fetches integer
---@field not_modified integer
---@field changes integer
---@field errors integer
---@field last_error? string
---@field last_ok_time? integer os.time() of the last successful attempt
---@field fingerprint string the current schema's

---A followed registry: always has a schema once `new` succeeded.
---@class dynpb.Registry
local reg = {}

---Makes the first fetch (bounded by `timeout`); falls back to the snapshot.
---Unknown options and wrong types raise.
---@param opts dynpb.RegistryOpts
---@return dynpb.Registry|nil reg
---@return string? err when neither the registry nor the snapshot gives a schema
function registry.new(opts) end

---The default transport (libcurl, dynpb.http).
---@return dynpb.Transport|nil transport
---@return string? err when dynpb.http cannot be loaded
function registry.curl_transport() end

---The current schema.
---@return dynpb.Schema
function reg:schema() end

---One attempt now (blocking): true (changed), false (unchanged) or nil, err (schema kept).
---@return boolean|nil changed
---@return string? err
function reg:refresh() end

---Starts an attempt when one is due; in background mode adopts a finished fetch.
---@return boolean|nil changed false when nothing completed in this call
---@return string? err
function reg:poll() end

---The constants table of an enum of the current schema.
---@param name string
---@return dynpb.Constants|nil constants
---@return string? err
function reg:enum(name) end

---`schema:decode` on the current schema.
---@param type_name string
---@param bytes string
---@param opts? dynpb.DecodeOpts
---@return table|nil message
---@return string? err
function reg:decode(type_name, bytes, opts) end

---`schema:encode` on the current schema.
---@param type_name string
---@param t table
---@param opts? dynpb.EncodeOpts
---@return string|nil bytes
---@return string? err
function reg:encode(type_name, t, opts) end

---`schema:to_text` on the current schema.
---@param type_name string
---@param bytes string
---@param opts? dynpb.ToTextOpts
---@return string|nil text
---@return string? err
function reg:to_text(type_name, bytes, opts) end

---`schema:from_text` on the current schema.
---@param type_name string
---@param text string
---@param opts? dynpb.FromTextOpts
---@return string|nil bytes
---@return string? err
function reg:from_text(type_name, text, opts) end

---@return dynpb.RegistryStats
function reg:stats() end

---Cancels a background fetch; refresh/poll then return nil, err. Idempotent.
---@return true
function reg:close() end

return registry
