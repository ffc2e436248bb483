-- Text format for the conformance testee (issue 19): plugs into the
-- `parsers` / `serializers` tables of spec/conformance/testee.lua (the v33
-- testee of the editions branch):
--
--   require("text_format").register(parsers, serializers)
--
-- and the testee passes the request to a serializer as its third argument
-- (`pcall(ser.fn, H, t, req)`), for print_unknown_fields.
--
-- text_payload in: H:from_text, then H:decode (the testee's message value);
-- TEXT_FORMAT out: H:encode, then H:to_text (unknown fields printed when the
-- request says print_unknown_fields).
local _M = {}

function _M.register(parsers, serializers)
  parsers.text_payload = function(H, s)
    local b, err = H:from_text(s)
    if not b then return nil, err end
    return H:decode(b)
  end
  serializers.TEXT_FORMAT = {
    field = "text_payload",
    fn = function(H, t, req)
      local b, err = H:encode(t)
      if not b then return nil, err end
      return H:to_text(b, { print_unknown = (req and req.print_unknown_fields) == true })
    end,
  }
end

return _M
