-- the options of the variant server of spec/openresty/gateway_test.conf:
-- one table (require caches it), so dynpb.resty.gateway checks it once
return {
  schema = "gateway", stream = "ndjson", services = { "gw.v1.Shops" }, allow_direct = true,
  max_body = 64 * 1024, emit_defaults = true, proto_names = true, metadata = { "x-tenant" },
  timeout = 5, grpc_web = true, cors = { origins = "*" },
  on_request = function(method, req, http)
    if req.shop == "forbidden" then return false, 403, "shop " .. req.shop .. " is forbidden" end
    if req.shop == "boom" then error("hook failed on purpose") end
    if req.text == "hook" then
      req.text = "changed by on_request in " .. method.name
      http.metadata["x-hook"] = "1"
    end
  end,
}
