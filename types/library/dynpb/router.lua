---@meta dynpb.router
-- Type annotations for lua-language-server: dynpb.router, the HTTP router
-- over `google.api.http` rules (`dynpb.http_router(schema)` builds one;
-- dynpb.HttpRule is in dynpb.lua).

---The policy module behind `dynpb.http_router` and `schema:http_rules()`.
---@class dynpb.router
---@field _VERSION string
local M = {}

---Routes requests to methods by their HTTP rules; rules are sorted once per verb.
---@class dynpb.Router
local router = {}

---Variables a template bound, by field path of the method's input
---(`{ ["shop.id"] = "s/1", item_id = "42" }`), percent-decoded.
---@alias dynpb.RouteVars table<string, string>

---Every binding of every method of the schema (`schema:http_rules()`).
---A value that is not a schema raises.
---@param schema dynpb.Schema
---@return dynpb.HttpRule[]
function M.http_rules(schema) end

---A router over rule rows (as `http_rules` gives them; `method` may be any value).
---A value that is not an array of tables raises.
---@param rules dynpb.HttpRule[]
---@return dynpb.Router|nil router
---@return string? err names the method and the template of the first bad rule
function M.new(rules) end

---`new(http_rules(schema))`, as `dynpb.http_router(schema)`.
---@param schema dynpb.Schema
---@return dynpb.Router|nil router
---@return string? err
function M.http_router(schema) end

---The rule that fits the request: most literal segments first, then without `**`,
---then the one declared first. A `?query` or `#fragment` in `path` is ignored;
---`verb` is compared exactly. Non-string arguments raise.
---@param verb string an HTTP method ("GET", ...) or a custom kind
---@param path string the request target, still percent-encoded
---@return dynpb.Method|nil method the rule's method (whatever `method` holds for rules given to `new`); nil: no rule matches, or a malformed path
---@return dynpb.RouteVars|string|nil vars the bound variables, or the error for a malformed path (a path without a leading `/`, a bad `%` escape)
---@return dynpb.HttpRule? rule the matching rule row
function router:match(verb, path) end

return M
