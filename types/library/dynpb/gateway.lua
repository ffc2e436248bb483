---@meta dynpb.resty.gateway
-- Type annotations for lua-language-server: dynpb.resty.gateway, JSON/HTTP
-- and gRPC-Web in front of nginx's grpc_pass, routed by google.api.http rules
-- of a schema followed with dynpb.resty.

---@class dynpb.resty.gateway
---@field _VERSION string
---@field http_status table<integer, integer> google/rpc/code.proto: HTTP status of each gRPC code
local gateway = {}

---@class dynpb.GatewayCors
---@field origins "*"|string[] allowed `Origin` values
---@field max_age? number seconds a preflight may be cached (default 600)
---@field headers? string[] `Access-Control-Allow-Headers` (default: the requested ones)

---The options of `access`/`define`. Unknown keys and wrong types raise.
---@class dynpb.GatewayOpts
---@field schema string a name followed with `dynpb.resty.follow` (or `init`)
---@field emit_defaults? boolean to_json option for responses
---@field proto_names? boolean to_json option for responses
---@field enums? "name"|"number" to_json option for responses
---@field max_body? integer request body limit in bytes (default 4 MiB); larger: 413
---@field stream? "array"|"ndjson" server streams as a JSON array (default) or one JSON per line
---@field allow_direct? boolean `POST /pkg.Svc/Method` with a JSON body for methods without a rule
---@field grpc_web? boolean also bridge `application/grpc-web(+proto)` and `-text` requests
---@field cors? dynpb.GatewayCors preflight answers and `Access-Control-*` response headers
---@field metadata? string[] request headers forwarded as gRPC metadata (default authorization, x-request-id)
---@field timeout? number seconds, sent as grpc-timeout; a request's `X-Timeout` may lower it
---@field services? string[] allow-list of full service names
---@field on_request? fun(method: dynpb.Method, req: table, http: dynpb.GatewayRequest): boolean?, integer?, string? return false, status, message to refuse
---@field trailers? string[] upstream trailers put in the gRPC-Web trailer frame besides grpc-status/-message/-status-details-bin

---What `on_request` gets besides the method and the decoded request message.
---@class dynpb.GatewayRequest
---@field verb string the HTTP method
---@field path string the request path
---@field vars dynpb.RouteVars the path variables
---@field headers table<string, string|string[]> the request headers
---@field metadata table<string, string> set entries here: sent as gRPC metadata

---Checks opts once and names them; `access(name)` then uses them (init_by_lua).
---@param name string
---@param opts dynpb.GatewayOpts
---@return true
function gateway.define(name, opts) end

---access_by_lua: routes the request and turns it into one gRPC call for
---grpc_pass, or answers it (404, 400, 413, 503 ... with a google.rpc.Status
---JSON body; CORS preflights with 204).
---@param opts dynpb.GatewayOpts|string the options, or a name given to `define`
function gateway.access(opts) end

---header_filter_by_lua: HTTP status (a Trailers-Only gRPC error through
---google/rpc/code.proto; 503 when the backend is down) and content-type.
function gateway.header_filter() end

---body_filter_by_lua: gRPC frames to JSON (arrays or ndjson for streams), the
---final status from the upstream trailers; for gRPC-Web the trailer frame.
function gateway.body_filter() end

---This worker's router for a followed name: its schema's fingerprint and how
---many routers it built (one per schema version), or nil before the first request.
---@param name string
---@return { fingerprint: string, builds: integer }|nil
function gateway.stats(name) end

return gateway
