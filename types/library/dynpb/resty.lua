---@meta dynpb.resty
-- Type annotations for lua-language-server: dynpb.resty, live schemas in
-- OpenResty (nginx + lua-nginx-module).

---@class dynpb.resty
---@field _VERSION string
local resty = {}

---@class dynpb.RestyFollowOpts
---@field name string the name handlers pass to get()
---@field url string http(s) URL of the registry
---@field shared_dict string a `lua_shared_dict` of nginx.conf
---@field refresh? number seconds (default 30)
---@field headers? table<string, string>
---@field timeout? number seconds (default 5)
---@field connect_timeout? number seconds (default 2)
---@field max_bytes? integer default 64 MiB
---@field strategy? "latest"|"versions"
---@field snapshot? string file with the last good bytes (writable by the workers)
---@field jitter? number
---@field poll? number seconds between looks at the shared dict (default min(1, refresh / 4))
---@field on_update? fun(schema: dynpb.Schema, previous: dynpb.Schema|nil) runs in every worker
---@field on_error? fun(err: string) runs in the fetching worker
---@field forward_headers? boolean send `headers` to every redirect hop, whatever its host
---@field thread_pool? string the nginx `thread_pool` the snapshot is written on (default "dynpb")
---@field cert? string PEM client certificate (`tcpsock:setclientcert`)
---@field key? string PEM key of `cert` (not encrypted)

---@class dynpb.RestyInitOpts
---@field name string
---@field snapshot? string
---@field url? string
---@field shared_dict? string
---@field headers? table<string, string>
---@field timeout? number
---@field connect_timeout? number
---@field max_bytes? integer
---@field strategy? "latest"|"versions"
---@field cafile? string
---@field capath? string
---@field forward_headers? boolean
---@field cert? string
---@field key? string
---@field key_password? string

---@class dynpb.RestyFetchOpts
---@field url string
---@field headers? table<string, string>
---@field timeout? number
---@field connect_timeout? number
---@field max_bytes? integer
---@field forward_headers? boolean
---@field cert? string
---@field key? string

---@class dynpb.RestyStats
---@field pid integer
---@field leader boolean
---@field fingerprint? string
---@field shared_fingerprint? string
---@field loads integer
---@field updates integer
---@field errors integer
---@field last_error? string
---@field ticks? integer
---@field published? integer
---@field fetcher? table the fetching worker's dynpb.registry stats (pid, version, fetches, ...)

---In init_worker_by_lua: follow a registry from every worker. Raises on misuse.
---@param opts dynpb.RestyFollowOpts
---@return true
function resty.follow(opts) end

---The current schema of a followed name; never yields.
---@param name string
---@return dynpb.Schema|nil schema
---@return string? err when none was ever loaded
function resty.get(name) end

---In init_by_lua: load a schema in the master (registry, else snapshot).
---@param opts dynpb.RestyInitOpts
---@return dynpb.Schema|nil schema
---@return "registry"|"snapshot"|string source or the error
function resty.init(opts) end

---This worker's counters for a followed name.
---@param name string
---@return dynpb.RestyStats|nil stats
---@return string? err
function resty.stats(name) end

---This worker stops following the name (its timer ends at the next tick).
---@param name string
---@return boolean stopped false when the name was not followed
function resty.stop(name) end

---The cosocket HTTP client on its own (cosocket contexts only).
---@param req dynpb.RestyFetchOpts
---@return dynpb.Response|nil res
---@return string? err
function resty.fetch(req) end

---ngx.now()-based seconds (the cosocket transport's clock).
---@return number
function resty.now() end

---A cosocket transport for dynpb.registry.
---@return dynpb.Transport
function resty.transport() end

return resty
