-- dynpb.grpc wire pieces: framing, the incremental reader (every chunking
-- of a stream), gzip, gRPC-Web frames and text, status codes, timeouts,
-- grpc-message, grpc-status-details-bin, content types.
local grpc = require "dynpb.grpc"
local dynpb = require "dynpb"
local pb = T.pb
-- make asan / valgrind / gc-stress: the exhaustive chunkings on shorter streams
local SLOW = T.gc_stress or os.getenv("DYNPB_VALGRIND") ~= nil or os.getenv("DYNPB_SLOW") ~= nil

-- every way to cut s into consecutive non-empty chunks (2^(#s-1) of them),
-- passed to f as an array of strings
local function each_chunking(s, f)
  local n = #s
  for mask = 0, 2 ^ (n - 1) - 1 do
    local chunks, start, m = {}, 1, mask
    for i = 1, n - 1 do
      if m % 2 == 1 then
        chunks[#chunks + 1] = s:sub(start, i)
        start = i + 1
      end
      m = math.floor(m / 2)
    end
    chunks[#chunks + 1] = s:sub(start)
    f(chunks)
  end
end

local function feed_all(r, chunks)
  local out = {}
  for _, c in ipairs(chunks) do
    local msgs, err = r:feed(c)
    if not msgs then return nil, err end
    for _, m in ipairs(msgs) do out[#out + 1] = m end
  end
  return out
end

describe("grpc.frame", function()
  local rows = {
    { "", "\0\0\0\0\0" },
    { "a", "\0\0\0\0\1a" },
    { ("x"):rep(300), "\0\0\0\1\44" .. ("x"):rep(300) },
    { ("y"):rep(70000), "\0\0\1\17\112" .. ("y"):rep(70000) },
  }
  for i, row in ipairs(rows) do
    it("frames a message of " .. #row[1] .. " bytes (row " .. i .. ")", function()
      assert.are.equal(row[2], grpc.frame(row[1]))
      assert.are.equal(row[2], grpc.web_frame(row[1]))
    end)
  end
  it("compressed = true gzips the message and sets flag 1", function()
    local msg = ("hello "):rep(100)
    local f = grpc.frame(msg, true)
    assert.are.equal(1, f:byte(1))
    assert.is_true(#f < #msg)
    local r = grpc.reader{ encoding = "gzip" }
    assert.are.same({ msg }, r:feed(f))
  end)
  it("raises on a non-string", function()
    assert.has_error(function() grpc.frame({}) end, "dynpb: grpc.frame: expected a string, got table")
  end)
end)

describe("grpc.reader", function()
  local msgs = { "", "ab", "\0\1\2", "hello" }
  local stream = ""
  for _, m in ipairs(msgs) do stream = stream .. grpc.frame(m) end

  local short = SLOW and grpc.frame("") .. grpc.frame("a") or grpc.frame("") .. grpc.frame("a") .. grpc.frame("")
  local expect = SLOW and { "", "a" } or { "", "a", "" }
  it("gives the same messages for every chunking of a stream (2^" .. (#short - 1) .. " chunkings of " .. #short .. " bytes)", function()
    local count = 0
    each_chunking(short, function(chunks)
      local r = grpc.reader()
      local got = assert(feed_all(r, chunks))
      assert.are.same(expect, got)
      assert.is_true(r:finish())
      count = count + 1
    end)
    assert.are.equal(2 ^ (#short - 1), count)
  end)

  it("every split point and every pair of split points of the whole stream", function()
    for i = 0, #stream do
      for j = i, #stream do
        local r = grpc.reader()
        local got = assert(feed_all(r, { stream:sub(1, i), stream:sub(i + 1, j), stream:sub(j + 1) }))
        assert.are.same(msgs, got)
        assert.is_true(r:finish())
      end
    end
  end)

  it("a message split over many chunks (one byte each) and several in one chunk", function()
    local big = ("z"):rep(1000)
    local s = grpc.frame(big) .. grpc.frame("q") .. grpc.frame("w")
    local r = grpc.reader()
    local got = {}
    for i = 1, #grpc.frame(big) do
      local out = assert(r:feed(s:sub(i, i)))
      for _, m in ipairs(out) do got[#got + 1] = m end
    end
    assert.are.same({ big }, got)
    assert.are.same({ "q", "w" }, r:feed(s:sub(#grpc.frame(big) + 1)))
  end)

  it("a 1 MiB message in 4 KiB chunks, with the next frame's header in its last chunk", function()
    local big = ("m"):rep(1024 * 1024)
    local s = grpc.frame(big) .. grpc.frame("tail")
    local r, got = grpc.reader(), {}
    for i = 1, #s, 4096 do
      local out = assert(r:feed(s:sub(i, i + 4095)))
      for _, m in ipairs(out) do got[#got + 1] = m end
      assert.are.same({}, r:feed(""))
    end
    assert.are.equal(2, #got)
    assert.is_true(got[1] == big)
    assert.are.equal("tail", got[2])
    assert.is_true(r:finish())
  end)

  local bad = {
    { "bad flag byte 2", "\2\0\0\0\0", "bad flag byte 0x02 at byte 0" },
    { "bad flag after a message", grpc.frame("ab") .. "\7\0\0\0\0", "bad flag byte 0x07 at byte 7" },
    { "trailer flag outside gRPC-Web", "\128\0\0\0\0", "bad flag byte 0x80 at byte 0" },
    { "length over max_len", "\0\0\64\0\1", "message of 4194305 bytes at byte 0 is larger than max_len %(4194304%)" },
    { "compressed without grpc-encoding", grpc.frame("x", true), "compressed message at byte 0 but grpc%-encoding is not set" },
  }
  for _, row in ipairs(bad) do
    it("errors on " .. row[1] .. " in every chunking", function()
      for cut = 0, #row[2] do
        local r = grpc.reader()
        local got, err = feed_all(r, { row[2]:sub(1, cut), row[2]:sub(cut + 1) })
        assert.is_nil(got)
        assert.matches("^dynpb: grpc reader: " .. row[3], err)
        -- the error sticks
        local again, err2 = r:feed("")
        assert.is_nil(again)
        assert.are.equal(err, err2)
      end
    end)
  end

  it("max_len as a number and in opts; a message of exactly max_len passes", function()
    assert.are.same({ "abc" }, grpc.reader(3):feed(grpc.frame("abc")))
    local m, err = grpc.reader(2):feed(grpc.frame("abc"))
    assert.is_nil(m)
    assert.matches("larger than max_len %(2%)", err)
    assert.is_nil((grpc.reader{ max_len = 2 }:feed(grpc.frame("abc"))))
  end)

  it("gunzips compressed messages when grpc-encoding is gzip, mixed with plain ones", function()
    local a, b = ("abc"):rep(50), "plain"
    local s = grpc.frame(a, true) .. grpc.frame(b) .. grpc.frame("", true)
    for cut = 0, #s do
      local r = grpc.reader{ encoding = "gzip" }
      assert.are.same({ a, b, "" }, assert(feed_all(r, { s:sub(1, cut), s:sub(cut + 1) })))
    end
  end)

  it("a decompressed message over max_len, corrupt gzip and another encoding are clear errors", function()
    local m, err = grpc.reader{ encoding = "gzip", max_len = 100 }:feed(grpc.frame(("a"):rep(101), true))
    assert.is_nil(m)
    assert.matches("message at byte 0: decompressed message larger than max_len %(100 bytes%)", err)
    m, err = grpc.reader{ encoding = "gzip" }:feed("\1\0\0\0\3abc")
    assert.is_nil(m)
    assert.matches("message at byte 0: invalid gzip data", err)
    local gz = grpc.frame("hello", true)
    m, err = grpc.reader{ encoding = "gzip" }:feed(gz:sub(1, 1) .. "\0\0\0" .. string.char(#gz - 7) .. gz:sub(6, -3))
    assert.is_nil(m)
    assert.matches("truncated gzip data", err)
    m, err = grpc.reader{ encoding = "snappy" }:feed(grpc.frame("x", true))
    assert.is_nil(m)
    assert.matches("unsupported grpc%-encoding 'snappy' %(gzip and identity are%)", err)
    -- an uncompressed message is fine whatever the encoding
    assert.are.same({ "x" }, grpc.reader{ encoding = "snappy" }:feed(grpc.frame("x")))
  end)

  it("finish reports a stream that ends inside a frame", function()
    local r = grpc.reader()
    assert.are.same({}, r:feed(grpc.frame("hello"):sub(1, 7)))
    local ok, err = r:finish()
    assert.is_nil(ok)
    assert.matches("stream ended inside a frame at byte 0 %(7 of 10 bytes%)", err)
    r = grpc.reader()
    r:feed("\0\0")
    assert.matches("%(2 of %? bytes%)", select(2, r:finish()))
  end)
end)

describe("gRPC-Web", function()
  it("trailer frames (flag 0x80) round-trip through a web reader in every chunking", function()
    local tr = grpc.web_trailers{ ["grpc-status"] = 5, ["grpc-message"] = "not found: ü 100%" }
    assert.are.equal(128, tr:byte(1))
    assert.are.equal("grpc-message: not found: %C3%BC 100%25\r\ngrpc-status: 5\r\n", tr:sub(6))
    local s = grpc.web_frame("m1") .. tr
    for cut = 0, #s do
      local r = grpc.reader{ web = true }
      assert.are.same({ "m1" }, assert(feed_all(r, { s:sub(1, cut), s:sub(cut + 1) })))
      assert.are.same({ ["grpc-status"] = "5", ["grpc-message"] = "not found: %C3%BC 100%25" }, r.trailers)
      assert.are.equal("not found: ü 100%", grpc.percent_decode(r.trailers["grpc-message"]))
    end
    local r = grpc.reader{ web = true }
    local m, err = r:feed(s .. grpc.web_frame("late"))
    assert.is_nil(m)
    assert.matches("frame after the trailers at byte " .. #s, err)
  end)

  it("grpc-web-text: encode, and decode incrementally in every chunking", function()
    local body = grpc.web_frame("hi") .. grpc.web_trailers{ ["grpc-status"] = 0 }
    local text = grpc.web_text_encode(body)
    assert.are.equal("AAAAAAJoaYAAAAAQZ3JwYy1zdGF0dXM6IDANCg==", text)
    local count = 0
    each_chunking(text:sub(1, 12), function(chunks)
      local d = grpc.web_text_decoder()
      local out = {}
      for _, c in ipairs(chunks) do out[#out + 1] = assert(d:feed(c)) end
      assert.are.equal(body:sub(1, 9), table.concat(out))
      assert.is_true(d:finish())
      count = count + 1
    end)
    assert.are.equal(2 ^ 11, count)
    for cut = 0, #text do
      local d = grpc.web_text_decoder()
      assert.are.equal(body, assert(d:feed(text:sub(1, cut))) .. assert(d:feed(text:sub(cut + 1))))
    end
  end)

  it("grpc-web-text: separately padded pieces decode as one stream; bad input is an error", function()
    local a, b = grpc.web_text_encode(grpc.web_frame("ab")), grpc.web_text_encode(grpc.web_frame("c"))
    assert.matches("=$", a)
    local d = grpc.web_text_decoder()
    assert.are.equal(grpc.web_frame("ab") .. grpc.web_frame("c"), d:feed(a .. b))
    d = grpc.web_text_decoder()
    assert.are.equal("\0\0\0", d:feed("AAAA"))
    local m, err = d:feed("A*AA")
    assert.is_nil(m)
    assert.matches("invalid base64 at byte 5", err)
    d = grpc.web_text_decoder()
    d:feed("AAAAA")
    assert.matches("stream ended inside a base64 quad at byte 4", select(2, d:finish()))
  end)

  local cts = {
    { "grpc", nil, "application/grpc" }, { "grpc", "proto", "application/grpc+proto" },
    { "grpc", "json", "application/grpc+json" }, { "web", nil, "application/grpc-web" },
    { "web", "proto", "application/grpc-web+proto" }, { "web", "json", "application/grpc-web+json" },
    { "web-text", nil, "application/grpc-web-text" }, { "web-text", "proto", "application/grpc-web-text+proto" },
  }
  for _, row in ipairs(cts) do
    it("content type " .. row[3], function()
      assert.are.equal(row[3], grpc.content_type(row[1], row[2]))
      local kind, codec = grpc.parse_content_type(row[3] .. "; charset=utf-8")
      assert.are.equal(row[1], kind)
      assert.are.equal(row[2] or "proto", codec)
    end)
  end
  it("content type errors", function()
    assert.is_nil((grpc.parse_content_type("text/html")))
    assert.matches("not a gRPC content%-type: 'text/html'", select(2, grpc.parse_content_type("text/html")))
    assert.has_error(function() grpc.content_type("web", "xml") end)
  end)
end)

describe("grpc status", function()
  local names = { "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
    "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED" }
  for i, name in ipairs(names) do
    it("code " .. (i - 1) .. " <-> " .. name, function()
      assert.are.equal(name, grpc.status(i - 1))
      assert.are.equal(i - 1, grpc.status(name))
      assert.are.equal(i - 1, grpc.status(name:lower()))
      assert.are.equal(i - 1, grpc.codes[name])
    end)
  end
  it("unknown codes and names", function()
    assert.matches("no status code 17", select(2, grpc.status(17)))
    assert.matches("no status named 'NOPE'", select(2, grpc.status("NOPE")))
    assert.has_error(function() grpc.status({}) end)
  end)

  local http = { { 400, 13 }, { 401, 16 }, { 403, 7 }, { 404, 12 }, { 429, 14 }, { 502, 14 },
                 { 503, 14 }, { 504, 14 }, { 500, 2 }, { 418, 2 }, { 200, 2 } }
  for _, row in ipairs(http) do
    it("HTTP " .. row[1] .. " without grpc-status -> " .. grpc.status(row[2]), function()
      assert.are.equal(row[2], grpc.http_to_code(row[1]))
    end)
  end

  local pct = { { "plain", "plain" }, { "100%25", "100%" }, { "%C3%BC", "ü" }, { "bad %zz %4", "bad %zz %4" },
                { "a%0Ab", "a\nb" } }
  for _, row in ipairs(pct) do
    it("grpc-message '" .. row[1] .. "'", function()
      assert.are.equal(row[2], grpc.percent_decode(row[1]))
    end)
  end
  it("percent_encode escapes % and non-printable bytes only", function()
    assert.are.equal("a b%25%C3%BC%0A", grpc.percent_encode("a b%ü\n"))
    assert.are.equal("x ü\n%", grpc.percent_decode(grpc.percent_encode("x ü\n%")))
  end)
end)

describe("grpc.timeout", function()
  local rows = { { 0.1, "100m" }, { 5, "5S" }, { 120, "2M" }, { 7200, "2H" }, { 1.5, "1500m" },
                 { 0.000001, "1u" }, { 2.5e-9, "3n" }, { 0.0000025, "2500n" }, { 90, "90S" },
                 { 3600 * 99999999, "99999999H" } }
  for _, row in ipairs(rows) do
    it(row[1] .. " s <-> " .. row[2], function()
      assert.are.equal(row[2], grpc.timeout(row[1]))
      local back = grpc.timeout(row[2])
      assert.is_true(math.abs(back - row[1]) <= row[1] * 0.2 + 1e-9)
    end)
  end
  local parse = { { "1H", 3600 }, { "3M", 180 }, { "7S", 7 }, { "250m", 0.25 }, { "10u", 1e-5 }, { "99999999n", 0.099999999 } }
  for _, row in ipairs(parse) do
    it("parses " .. row[1], function()
      assert.is_true(math.abs(grpc.timeout(row[1]) - row[2]) < 1e-12)
    end)
  end
  for _, bad in ipairs({ "", "5", "S", "123456789S", "1.5S", "5s", "-1S", " 5S" }) do
    it("rejects '" .. bad .. "'", function()
      local v, err = grpc.timeout(bad)
      assert.is_nil(v)
      assert.matches("malformed grpc%-timeout", err)
    end)
  end
  it("raises on seconds <= 0", function()
    assert.has_error(function() grpc.timeout(0) end)
    assert.has_error(function() grpc.timeout(-1) end)
  end)
end)

describe("grpc.status_details (google.rpc.Status)", function()
  local set = pb.set(pb.file("d.proto", { package = "d.v1", syntax = "proto3", messages = {
    pb.message("ErrorInfo", { pb.field("reason", 1, 1, 9), pb.field("n", 2, 1, 5) }) } }))
  local schema = assert(dynpb.load(set))
  local info = assert(schema:encode("d.v1.ErrorInfo", { reason = "QUOTA", n = 3 }))
  local function any(url, v) return pb.len(1, url) .. pb.len(2, v) end
  local status = pb.vint(1, 8) .. pb.len(2, "quota exceeded") ..
                 pb.len(3, any("type.googleapis.com/d.v1.ErrorInfo", info)) ..
                 pb.len(3, any("type.googleapis.com/x.Other", "\8\1"))

  it("decodes code, message and details; details in the schema are decoded", function()
    local st = assert(grpc.status_details(status, schema))
    assert.are.equal(8, st.code)
    assert.are.equal("RESOURCE_EXHAUSTED", st.name)
    assert.are.equal("quota exceeded", st.message)
    assert.are.equal(2, #st.details)
    assert.are.equal("QUOTA", st.details[1].reason)
    assert.are.equal(3, st.details[1].n)
    assert.are.equal("type.googleapis.com/d.v1.ErrorInfo", st.details[1]["@type"])
    assert.are.same({ type_url = "type.googleapis.com/x.Other", value = "\8\1" }, st.details[2])
  end)
  it("without a schema every detail stays { type_url =, value = }", function()
    local st = assert(grpc.status_details(status))
    assert.are.same({ type_url = "type.googleapis.com/d.v1.ErrorInfo", value = info }, st.details[1])
  end)
  it("an empty Status is OK; a negative code decodes", function()
    assert.are.same({ code = 0, name = "OK", message = "", details = {} }, grpc.status_details(""))
    local st = grpc.status_details(pb.tag(1, 0) .. ("\255"):rep(9) .. "\1")
    assert.are.equal(-1, st.code)
  end)
  it("truncated bytes are an error naming the offset", function()
    local st, err = grpc.status_details(status:sub(1, 10))
    assert.is_nil(st)
    assert.matches("^dynpb: grpc status details: truncated length%-delimited field 2 at byte 2", err)
  end)
end)

describe("base64 (-bin metadata)", function()
  local rows = { { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" }, { "\0\1\255", "AAH/" } }
  for _, row in ipairs(rows) do
    it("'" .. row[2] .. "'", function()
      assert.are.equal(row[2], grpc.b64encode(row[1]))
      assert.are.equal(row[1], grpc.b64decode(row[2]))
      assert.are.equal(row[1], grpc.b64decode((row[2]:gsub("=", ""))))   -- unpadded, as sent in headers
    end)
  end
  it("rejects bad characters and lengths", function()
    assert.matches("invalid base64 at byte 1", select(2, grpc.b64decode("Z!==")))
    assert.matches("invalid base64 length", select(2, grpc.b64decode("Zm9vZ")))
  end)
end)

describe("adversarial input (seeded random bytes)", function()
  local seed = 20261201
  local function rnd(n)                 -- Park-Miller, exact in doubles
    seed = (seed * 16807) % 2147483647
    return seed % n
  end
  local function bytes(n)
    local t = {}
    for i = 1, n do
      -- biased towards small lengths and valid flags so frames get deep
      local k = rnd(4)
      t[i] = string.char(k == 0 and rnd(2) or k == 1 and 0 or rnd(256))
    end
    return table.concat(t)
  end
  local N = SLOW and 300 or 3000

  it("the reader returns messages or nil, err for " .. N .. " random streams in random chunks; never raises", function()
    for _ = 1, N do
      local s = bytes(rnd(48))
      local r = grpc.reader{ max_len = 1 + rnd(40), web = rnd(2) == 0, encoding = rnd(2) == 0 and "gzip" or nil }
      local i = 1
      while i <= #s do
        local k = 1 + rnd(8)
        local out, err = r:feed(s:sub(i, i + k - 1))
        if out == nil then
          assert.matches("^dynpb: grpc reader: ", err)
          break
        end
        for _, m in ipairs(out) do assert.is_string(m) end
        i = i + k
      end
      local ok, ferr = r:finish()
      assert(ok == true or (ok == nil and ferr:match("^dynpb: grpc reader: ")))
    end
  end)

  it("status_details and the web-text decoder on random bytes: a result or nil, err", function()
    for _ = 1, N do
      local s = bytes(rnd(40))
      local st, err = grpc.status_details(s)
      assert(st ~= nil or err:match("^dynpb: grpc status details"), err)
      local d = grpc.web_text_decoder()
      local out, derr = d:feed(s)
      assert(out ~= nil or derr:match("^dynpb: grpc web%-text: "), derr)
    end
  end)
end)
