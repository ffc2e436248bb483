# dynpb -- build, test and install.
#
#   make                   build for Lua 5.4 (build/lua5.4/dynpb.so)
#   make LUA=luajit        build for LuaJIT (also LUA=5.1, 5.3, lua5.1, ...)
#   make test              build and run the busted specs on 5.1, 5.3, 5.4, LuaJIT
#   make check LUA=...     run the specs on one Lua
#   make install LUA=...   install into $(PREFIX) (default /usr/local)
#   make regen             regenerate csrc/gen from the system descriptor.proto

LUA ?= lua5.4
override LUA := $(patsubst 5.%,lua5.%,$(LUA))
ifeq ($(LUA),luajit)
  LUA_INC ?= /usr/include/luajit-2.1
  LUA_ABI := 5.1
else
  LUA_INC ?= /usr/include/$(LUA)
  LUA_ABI := $(patsubst lua%,%,$(LUA))
endif

CC ?= cc
OPT ?= -O2
CFLAGS ?= $(OPT) -g
WARN := -std=c99 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter
ALL_CFLAGS := $(WARN) -fPIC -fvisibility=hidden -I$(LUA_INC) -Icsrc -Icsrc/gen $(CFLAGS) $(XCFLAGS)
LDFLAGS_SO := -shared $(LDFLAGS) $(XLDFLAGS)

BUILD := build/$(LUA)$(VARIANT)
SRCS := csrc/sha256.c csrc/wire.c csrc/schema.c csrc/cache.c csrc/reflect.c \
        csrc/dynpb.c csrc/gen/google/protobuf/descriptor.pb-c.c
OBJS := $(patsubst csrc/%.c,$(BUILD)/obj/%.o,$(SRCS))
HDRS := $(wildcard csrc/*.h) csrc/gen/google/protobuf/descriptor.pb-c.h
SO := $(BUILD)/dynpb.so

PREFIX ?= /usr/local
INSTALL_CMOD ?= $(PREFIX)/lib/lua/$(LUA_ABI)
INSTALL_LMOD ?= $(PREFIX)/share/lua/$(LUA_ABI)

TEST_LUAS ?= lua5.1 lua5.3 lua5.4 luajit
BUSTED_ARGS ?=

.PHONY: all test check install regen clean example

all: $(SO)

$(BUILD)/obj/%.o: csrc/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(SO): $(OBJS)
	$(CC) $(LDFLAGS_SO) -o $@ $(OBJS) -lprotobuf-c

# the specs find the module through DYNPB_CPATH/DYNPB_LPATH (spec/helper.lua)
check: $(SO)
	DYNPB_CPATH="$(CURDIR)/$(BUILD)/?.so" DYNPB_LPATH="$(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua" \
	DYNPB_LUA=$(LUA) $(LUA) /usr/bin/busted --helper=spec/helper.lua $(BUSTED_ARGS) spec

test:
	@set -e; for l in $(TEST_LUAS); do \
	  echo "=== $$l"; $(MAKE) --no-print-directory check LUA=$$l; done

example: $(SO)
	cd examples && LUA_CPATH="$(CURDIR)/$(BUILD)/?.so;;" LUA_PATH="$(CURDIR)/lua/?.lua;;" \
	  $(LUA) domain_constants.lua

install: $(SO)
	install -d $(DESTDIR)$(INSTALL_CMOD) $(DESTDIR)$(INSTALL_LMOD)/dynpb
	install -m 0755 $(SO) $(DESTDIR)$(INSTALL_CMOD)/dynpb.so
	for f in lua/dynpb/*.lua; do [ -e "$$f" ] || continue; \
	  install -m 0644 $$f $(DESTDIR)$(INSTALL_LMOD)/dynpb/; done

regen:
	cd /usr/include && protoc-c --c_out=$(CURDIR)/csrc/gen google/protobuf/descriptor.proto

clean:
	rm -rf build
