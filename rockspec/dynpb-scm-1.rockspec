-- Install from a checkout, offline:  luarocks make rockspec/dynpb-scm-1.rockspec
-- (add --lua-version 5.1 / 5.3 / 5.4; LuaJIT uses the 5.1 build)
rockspec_format = "3.0"
package = "dynpb"
version = "scm-1"
source = {
  url = "git+file:///dev/null",   -- unused by `luarocks make` from a checkout
}
description = {
  summary = "Run-time protobuf schemas for Lua: load descriptor sets, live enum constants, decode and encode",
  detailed = [[
dynpb loads protobuf FileDescriptorSets at run time (bytes, a file, or a schema
registry over HTTP), compiles each once into a cache keyed by its SHA-256,
exposes enums as live constant tables, and decodes/encodes messages as plain
Lua tables. Schemas nobody uses are freed; reloading the same bytes is a hit.
]],
  license = "MIT",
  labels = {"protobuf", "schema", "registry"},
}
dependencies = {
  "lua >= 5.1, < 5.5",
}
-- Lua modules (make install copies lua/dynpb/*.lua and lua/dynpb/resty/*.lua): dynpb.registry,
-- dynpb.router, dynpb.grpc, dynpb.resty, dynpb.resty.gateway (the last two need nginx + lua-nginx-module)
-- Debian packages needed to build: libcurl4-openssl-dev, zlib1g-dev
-- (their headers sit on the compiler's default paths, multiarch included).
build = {
  type = "make",
  makefile = "Makefile",
  build_target = "all",
  build_variables = {
    CFLAGS = "$(CFLAGS)",
    LUA = "$(LUA)",
    LUA_INC = "$(LUA_INCDIR)",
  },
  install_target = "install",
  install_variables = {
    LUA = "$(LUA)",
    LUA_INC = "$(LUA_INCDIR)",
    INSTALL_CMOD = "$(LIBDIR)",
    INSTALL_LMOD = "$(LUADIR)",
    -- LuaLS annotations: deployed to <tree>/share/lua/<version>/dynpb/types/library
    INSTALL_TYPES = "$(LUADIR)/dynpb/types",
    PREFIX = "$(PREFIX)",
  },
}
