---@meta _
-- Type annotations for lua-language-server: dynpb's own .proto compiler
-- (`dynpb.compile`, `dynpb.load_proto`; the `protoc` branch, "Loading .proto
-- files" in README.md). Adds functions to the dynpb module of dynpb.lua.

---Options of `dynpb.compile`. Unknown names and wrong types raise.
---@class dynpb.CompileOpts
---@field files string[] file names as imports spell them (at least one)
---@field paths? string[] import search path, in order (as `protoc -I`)
---@field sources? table<string, string> `name = text`, looked up before `paths`
---@field include_imports? boolean default true: every imported file too, dependencies first
---@field source_info? boolean default false: add `source_code_info` (as `--include_source_info`)

---@class dynpb
local dynpb = {}

---Compiles `.proto` sources to the `FileDescriptorSet` bytes protoc 3.21 writes.
---@param opts dynpb.CompileOpts
---@return string|nil bytes
---@return string? err protoc's message and position: "dynpb: compile: shop.proto:7:3: ..."
function dynpb.compile(opts) end

---`dynpb.load(dynpb.compile(opts), load_opts)`.
---@param opts dynpb.CompileOpts
---@param load_opts? dynpb.LoadOpts
---@return dynpb.Schema|nil schema
---@return string? err
function dynpb.load_proto(opts, load_opts) end
