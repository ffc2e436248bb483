---@meta dynpb.grpc
-- Type annotations for lua-language-server: dynpb.grpc, gRPC without
-- generated code: wire helpers, a client over libcurl HTTP/2, server
-- reflection as a schema source. Receivers as in README.md: `grpc` (the
-- module), `c` (a client), `job`, `r` (a reader), `d` (a web-text decoder).

---@class dynpb.grpc
---@field _VERSION string
---@field MAX_LEN integer the default `max_len`, 4 MiB
---@field codes table<string, integer> status names to codes: `grpc.codes.NOT_FOUND == 5`
local grpc = {}

---Options of `grpc.client`. Unknown names and wrong types raise.
---@class dynpb.grpc.ClientOpts
---@field url string `http://host:port`, `https://`, `grpc://` (h2c) or `grpcs://`; a path prefix is kept
---@field schema? dynpb.Schema where methods are looked up
---@field registry? dynpb.Registry methods looked up in its current schema at each call
---@field timeout? number seconds: the deadline of each call (sent as `grpc-timeout`, enforced locally)
---@field connect_timeout? number seconds (default 10)
---@field metadata? table<string, string|string[]> sent with every call; `-bin` keys are base64-encoded; reserved names raise
---@field max_len? integer the largest response message accepted, also decompressed (default 4 MiB)
---@field compress? boolean gzip request messages
---@field json? boolean responses as proto3 JSON strings, requests may be JSON strings (needs a dynpb with JSON)
---@field user_agent? string default "dynpb-grpc/<version>"
---@field cafile? string
---@field capath? string
---@field cert? string
---@field key? string
---@field key_password? string

---Options of one call (`c:call`, `c:stream`, `c:start`). Unknown names raise.
---@class dynpb.grpc.CallOpts
---@field timeout? number seconds
---@field metadata? table<string, string|string[]> added to the client's
---@field compress? boolean
---@field max_len? integer
---@field json? boolean

---The headers and trailers of a successful call (`-bin` values base64-decoded).
---@class dynpb.grpc.Meta
---@field headers table<string, string>
---@field trailers table<string, string>

---The status of a failed (or, from `c:stream`, a finished) call.
---@class dynpb.grpc.Status
---@field code integer 0 (OK) .. 16
---@field name string e.g. "NOT_FOUND"
---@field message string percent-decoded `grpc-message`
---@field details table[] from `grpc-status-details-bin` (see `grpc.status_details`)
---@field metadata table<string, string> the trailers (or the headers of a trailers-only response)
---@field headers? table<string, string> absent when nothing was sent (no method, a request that does not encode)
---@field trailers? table<string, string>

---A decoded `google.rpc.Status`.
---@class dynpb.grpc.StatusDetails
---@field code integer
---@field name string "UNKNOWN" for a code outside 0..16
---@field message string
---@field details table[] each Any decoded through the schema (with `["@type"] = type_url`), else `{ type_url =, value = }`

---@class dynpb.grpc.ReaderOpts
---@field max_len? integer the largest message accepted (default 4 MiB)
---@field encoding? string the stream's `grpc-encoding` ("identity", "gzip", ...)
---@field web? boolean accept gRPC-Web trailer frames (flag 0x80), parsed into `r.trailers`

---An incremental gRPC de-framer.
---@class dynpb.grpc.Reader
---@field trailers? table<string, string> gRPC-Web trailers (`web = true`), once received
local r = {}

---An incremental `application/grpc-web-text` (base64) decoder.
---@class dynpb.grpc.WebTextDecoder
local d = {}

---@class dynpb.grpc.ClientStats
---@field connects integer connections opened
---@field transfers integer calls finished

---A gRPC client: one libcurl multi handle (connection pool), HTTP/2.
---@class dynpb.grpc.Client
local c = {}

---A call started by `c:start`; never blocks unless waited for.
---@class dynpb.grpc.Job
local job = {}

---Options of `grpc.reflect`. Unknown names and wrong types raise.
---@class dynpb.grpc.ReflectOpts
---@field url string `grpc://`, `grpcs://`, `http://` or `https://`
---@field services? string[] default: every listed service but the reflection service itself
---@field timeout? number seconds for each exchange (default 10)
---@field connect_timeout? number seconds
---@field metadata? table<string, string|string[]>
---@field max_len? integer the largest reflection response accepted (default 64 MiB)
---@field cafile? string
---@field capath? string
---@field cert? string
---@field key? string
---@field key_password? string

---A method as `call`, `stream` and `start` take it: `"pkg.Svc/M"`, `"/pkg.Svc/M"`,
---`"pkg.Svc.M"` (looked up with `schema:method`), or a method table.
---@alias dynpb.grpc.MethodRef string|dynpb.Method

---What `c:stream` returns first: each call gives the next response, then `nil`
---at a successful end, or once `false, err, st` on a failure.
---@alias dynpb.grpc.StreamIterator fun(): (table|string|false|nil), string?, dynpb.grpc.Status?

-- ---- wire helpers

---The 5-byte length-prefixed message. A non-string `msg` raises.
---@param msg string
---@param compressed? boolean gzip `msg` and set flag 1 (send `grpc-encoding: gzip`)
---@return string
function grpc.frame(msg, compressed) end

---`grpc.frame` (gRPC-Web frames data the same way).
---@param msg string
---@param compressed? boolean
---@return string
function grpc.web_frame(msg, compressed) end

---An incremental de-framer. A bad argument raises.
---@param opts? integer|dynpb.grpc.ReaderOpts `max_len`, or an options table
---@return dynpb.grpc.Reader
function grpc.reader(opts) end

---The messages completed so far (any chunking; possibly none), or the error
---(a bad flag byte, a length over `max_len`, a compressed message without
---`encoding = "gzip"`, corrupt gzip), which sticks. Errors name the byte offset.
---@param chunk string
---@return string[]|nil messages
---@return string? err
function r:feed(chunk) end

---`true`, or `nil, err` when the stream ended inside a frame.
---@return true|nil ok
---@return string? err
function r:finish() end

---A gRPC-Web trailer frame (flag 0x80); `grpc-message` is percent-encoded.
---@param t table<string, string|integer> e.g. `{ ["grpc-status"] = 0, ["grpc-message"] = "..." }`
---@return string
function grpc.web_trailers(t) end

---`application/grpc-web-text` encoding: standard base64.
---@param bytes string
---@return string
function grpc.web_text_encode(bytes) end

---An incremental decoder of `application/grpc-web-text` bodies.
---@return dynpb.grpc.WebTextDecoder
function grpc.web_text_decoder() end

---The bytes decoded so far (any chunking; separately padded pieces may follow
---each other), or the error, which sticks.
---@param chunk string
---@return string|nil bytes
---@return string? err
function d:feed(chunk) end

---`true`, or `nil, err` when the body ended inside a base64 quad.
---@return true|nil ok
---@return string? err
function d:finish() end

---e.g. `grpc.content_type("web", "json") --> "application/grpc-web+json"`. Bad values raise.
---@param kind? "grpc"|"web"|"web-text" default "grpc"
---@param codec? "proto"|"json"
---@return string
function grpc.content_type(kind, codec) end

---Parses a content-type (parameters ignored): `kind, codec` (codec "proto" when not given).
---@param ct string
---@return "grpc"|"web"|"web-text"|nil kind
---@return string codec_or_err the codec, or the error when `ct` is not a gRPC content-type
function grpc.parse_content_type(ct) end

---`5 -> "NOT_FOUND"`, `"NOT_FOUND" -> 5` (any case), for the 17 codes. Other types raise.
---@param x integer|string
---@return string|integer|nil name_or_code
---@return string? err no such code or name
function grpc.status(x) end

---The gRPC spec's mapping of an HTTP status without `grpc-status` (404 -> 12, 503 -> 14, ...; else 2).
---@param http_status integer
---@return integer code
function grpc.http_to_code(http_status) end

---`grpc-message` decoding (a malformed `%` sequence stays as it is).
---@param s string
---@return string
function grpc.percent_decode(s) end

---`grpc-message` encoding.
---@param s string
---@return string
function grpc.percent_encode(s) end

---Decodes a `google.rpc.Status` (the base64-decoded `grpc-status-details-bin`).
---A non-string `bytes` raises.
---@param bytes string
---@param schema? dynpb.Schema detail types found here are decoded
---@return dynpb.grpc.StatusDetails|nil status
---@return string? err
function grpc.status_details(bytes, schema) end

---`grpc-timeout` both ways: seconds -> `"100m"`, `"5S"` (the coarsest exact unit,
---else the finest that fits 8 digits, rounded up); a header value -> seconds.
---Seconds <= 0 and other types raise.
---@param x number|string seconds, or a `grpc-timeout` value
---@return string|number|nil value
---@return string? err a malformed `grpc-timeout` value
function grpc.timeout(x) end

---Base64 (standard, padded) of `-bin` metadata.
---@param s string
---@return string
function grpc.b64encode(s) end

---Base64 decoding of `-bin` metadata (unpadded input accepted).
---@param s string
---@return string|nil bytes
---@return string? err
function grpc.b64decode(s) end

-- ---- the client

---A client; no connection is made before the first call. Misuse (unknown
---options, a URL that is not `http://`, `https://`, `grpc://`, `grpcs://`) raises.
---@param opts dynpb.grpc.ClientOpts
---@return dynpb.grpc.Client
function grpc.client(opts) end

---A unary or client-streaming call (client streaming: `req` is an array of
---request tables). A server-streaming method raises (use `c:stream`).
---@param method dynpb.grpc.MethodRef
---@param req table|string a request table (a JSON string with `json = true`), or an array of them
---@param opts? dynpb.grpc.CallOpts
---@return table|string|nil res the decoded response (a JSON string with `json = true`)
---@return dynpb.grpc.Meta|string meta_or_err `meta`, or "dynpb: grpc /pkg.Svc/M at URL: NAME: message"
---@return dynpb.grpc.Status? st on failure
function c:call(method, req, opts) end

---A server-streaming or bidi call (bidi: `req` is an array of request tables).
---The iterator gives each response as it arrives; a failure ends with one
---iteration of `false, err, st`. After the end `st` holds the status (`code = 0`
---and the trailers on success). A unary or client-streaming method raises.
---@param method dynpb.grpc.MethodRef
---@param req table|string
---@param opts? dynpb.grpc.CallOpts
---@return dynpb.grpc.StreamIterator iterator
---@return dynpb.grpc.Status st filled when the stream ends
function c:stream(method, req, opts) end

---The same call as a job that never blocks (for event loops).
---@param method dynpb.grpc.MethodRef
---@param req table|string
---@param opts? dynpb.grpc.CallOpts
---@return dynpb.grpc.Job
function c:start(method, req, opts) end

---@return dynpb.grpc.ClientStats
function c:stats() end

---Frees the connection pool once no call uses it.
function c:close() end

---`nil` while running; then once `res, meta` (a streaming method: the array of
---responses, `meta`) or `false, err, st`. Polling again raises.
---@return table|string|false|nil res
---@return dynpb.grpc.Meta|string|nil meta_or_err
---@return dynpb.grpc.Status? st
function job:poll() end

---Blocks until the call ends; returns what `job:poll()` would.
---@return table|string|false res
---@return dynpb.grpc.Meta|string meta_or_err
---@return dynpb.grpc.Status? st
function job:wait() end

---Aborts the call; a later poll gives `CANCELLED`.
function job:cancel() end

-- ---- server reflection

---Asks a server for its schema (`grpc.reflection.v1`, then `v1alpha`):
---descriptor-set bytes, the same for the same server every time. Misuse raises.
---@param opts dynpb.grpc.ReflectOpts
---@return string|nil bytes a FileDescriptorSet for `dynpb.load`
---@return string? err
function grpc.reflect(opts) end

---The registry transport behind `strategy = "reflection"` (`fetch`, `start`, `now`):
---`req.url` the gRPC URL, `res.body` the assembled set.
---@param services? string[]
---@return dynpb.Transport
function grpc.reflection_transport(services) end

return grpc
