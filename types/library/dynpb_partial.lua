---@meta _
-- Type annotations for lua-language-server: partial decode (the `perf`
-- branch: decode option `fields`). Re-opens dynpb.DecodeOpts of dynpb.lua;
-- not a module of its own. Remove this file if that option does not land.

---@class dynpb.DecodeOpts
---@field fields? string[] decode only these paths (`{ "id", "customer.name", "items.qty" }`): nested tables only along picked paths; a map, a oneof member or a message named without a sub-path is picked whole; unknown fields are not kept; a step that is not a field, or goes past a scalar or into a map, raises
