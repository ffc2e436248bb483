---@meta dynpb.http
-- Type annotations for lua-language-server: dynpb.http, the libcurl
-- transport (dynpb.Request, dynpb.Response and dynpb.Job are in registry.lua).

---@class dynpb.http
---@field curl_version string libcurl's version, e.g. "7.88.1"
local http = {}

---One GET; blocks up to `req.timeout` (default 30 s). Misuse raises.
---@param req dynpb.Request
---@return dynpb.Response|nil res
---@return string? err "GET <url>: <reason>"
function http.fetch(req) end

---The same GET on a POSIX thread that never touches the Lua state.
---@param req dynpb.Request
---@return dynpb.Job|nil job
---@return string? err
function http.start(req) end

---CLOCK_MONOTONIC seconds.
---@return number
function http.now() end

---Sleeps (blocks the calling thread), 0..3600 seconds.
---@param seconds number
function http.sleep(seconds) end

return http
