-- Text format for the conformance testee (issue 19): plugs into the
-- `parsers` / `serializers` tables of spec/conformance/testee.lua (the v33
-- testee of the editions branch):
--
--   require("text_format").register(parsers, serializers)
--
-- and the testee passes the request to a serializer as its third argument
-- (`pcall(ser.fn, H, t, req)`), for print_unknown_fields.
--
-- text_payload in: H:from_text (canonical bytes); TEXT_FORMAT out: H:to_text
-- of the canonical bytes (unknown fields printed when the request says
-- print_unknown_fields).
local _M = {}

function _M.register(parsers, serializers)
  -- parsers give canonical protobuf bytes (from_text encodes what it parsed)
  parsers.text_payload = function(H, s)
    return H:from_text(s)
  end
  -- serializers get the canonical bytes
  serializers.TEXT_FORMAT = {
    field = "text_payload",
    fn = function(H, b, req)
      return H:to_text(b, { print_unknown = (req and req.print_unknown_fields) == true })
    end,
  }
end

return _M
