# dynpb -- build, test and install.
#
#   make                   build for Lua 5.4 (build/lua5.4/dynpb.so)
#   make LUA=luajit        build for LuaJIT (also LUA=5.1, 5.3, lua5.1, ...)
#   make test              build and run the busted specs on 5.1, 5.3, 5.4, LuaJIT
#   make check LUA=...     run the specs on one Lua
#   make install LUA=...   install into $(PREFIX) (default /usr/local)
#   make regen             regenerate csrc/gen from the system descriptor.proto

LUA ?= lua5.4
override LUA := $(patsubst 5.%,lua5.%,$(notdir $(LUA)))
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
        csrc/codec.c csrc/decode.c csrc/encode.c csrc/dynpb.c csrc/gen/google/protobuf/descriptor.pb-c.c
OBJS := $(patsubst csrc/%.c,$(BUILD)/obj/%.o,$(SRCS))
HDRS := $(wildcard csrc/*.h) csrc/gen/google/protobuf/descriptor.pb-c.h
SO := $(BUILD)/dynpb.so

PREFIX ?= /usr/local
INSTALL_CMOD ?= $(PREFIX)/lib/lua/$(LUA_ABI)
INSTALL_LMOD ?= $(PREFIX)/share/lua/$(LUA_ABI)

TEST_LUAS ?= lua5.1 lua5.3 lua5.4 luajit
BUSTED_ARGS ?=

.DEFAULT_GOAL := all

# ---- HTTP transport (issue: live schemas): build/$(LUA)/dynpb/http.so
HTTP_SO := $(BUILD)/dynpb/http.so
ifneq ($(wildcard csrc/http.c),)
HTTP_TARGET := $(HTTP_SO)
endif
$(HTTP_SO): csrc/http.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS_SO) -o $@ csrc/http.c -lcurl -lpthread
# ---- end of HTTP section

# ---- robustness: sanitizers, valgrind, aggressive GC, fuzzing, soak
# ---- end of robustness section

# ---- benchmarks
# make bench              dynpb vs its floors, Lua 5.4 and LuaJIT (bench/README.md)
# make bench-callgrind    instructions per decode/encode under callgrind (Lua 5.4)
# Knobs: BENCH_LUAS, BENCH_TIME (CPU seconds per run), BENCH_RUNS, CG_N.
# Outputs in bench/work/: results-<lua>.tsv, callgrind.tsv, callgrind/*.out.
BENCH_LUAS ?= lua5.4 luajit
BENCH_TIME ?= 0.2
BENCH_RUNS ?= 7
CG_N ?= 2000
BENCH_W := bench/work
BENCH_FLOOR := $(BENCH_W)/$(LUA)/bench_floor.so
PBC_BENCH := $(BENCH_W)/pbc_bench

.PHONY: bench bench-one bench-callgrind bench-callgrind-one bench-fixtures

$(BENCH_FLOOR): bench/floor.c
	@mkdir -p $(dir $@)
	$(CC) $(WARN) -fPIC -I$(LUA_INC) -O2 -shared -o $@ bench/floor.c

$(BENCH_W)/pbc/bench.pb-c.c: bench/fixtures/bench.proto bench/fixtures/large.proto
	@mkdir -p $(dir $@)
	protoc-c --c_out=$(BENCH_W)/pbc -Ibench/fixtures bench.proto large.proto

$(PBC_BENCH): bench/pbc_bench.c $(BENCH_W)/pbc/bench.pb-c.c
	$(CC) -std=c99 -O2 -Wall -Wextra -I$(BENCH_W)/pbc -o $@ bench/pbc_bench.c \
	  $(BENCH_W)/pbc/bench.pb-c.c $(BENCH_W)/pbc/large.pb-c.c -lprotobuf-c

bench:
	@for l in $(BENCH_LUAS); do $(MAKE) --no-print-directory bench-one LUA=$$l || exit 1; done

bench-one: $(SO) $(BENCH_FLOOR) $(PBC_BENCH)
	@LUA_CPATH="$(CURDIR)/$(BUILD)/?.so;$(CURDIR)/$(BENCH_W)/$(LUA)/?.so;;" \
	  $(LUA) bench/run.lua bench $(BENCH_W)/results-$(LUA).tsv $(BENCH_TIME) $(BENCH_RUNS) $(PBC_BENCH)

# callgrind runs Lua 5.4 through bench/cg_host (static liblua5.4.a: Lua's
# internal functions get names in the profile)
CG_HOST := $(BENCH_W)/cg_host
$(CG_HOST): bench/cg_host.c
	@mkdir -p $(dir $@)
	$(CC) -std=c99 -O2 -Wall -Wextra -I/usr/include/lua5.4 -o $@ bench/cg_host.c \
	  -Wl,-E /usr/lib/$(shell $(CC) -print-multiarch)/liblua5.4.a -lm -ldl

bench-callgrind:
	@$(MAKE) --no-print-directory bench-callgrind-one LUA=lua5.4

bench-callgrind-one: $(SO) $(CG_HOST)
	@LUA_CPATH="$(CURDIR)/$(BUILD)/?.so;;" $(LUA) bench/callgrind.lua bench $(BENCH_W) $(CG_N) $(CG_HOST)

# regenerate bench/fixtures (needs protoc and lua5.4); the outputs are committed
bench-fixtures:
	sh bench/make_fixtures.sh
# ---- end of benchmarks section

# ---- conformance: Google's protobuf conformance suite (spec/conformance/)
# Needs (apt): g++ protobuf-compiler libprotobuf-dev dpkg-dev (+ the Luas).
# First run fetches Debian's protobuf source with a private apt state into
# spec/conformance/work/ and builds conformance_test_runner (~40 s).
CONFORMANCE_LUAS ?= lua5.4 luajit

.PHONY: conformance
conformance:
	@set -e; for l in $(CONFORMANCE_LUAS); do spec/conformance/run.sh $$l; done
# ---- end of conformance section

.PHONY: all test check install regen clean example example-constants deps

all: $(SO) $(HTTP_TARGET)

$(BUILD)/obj/%.o: csrc/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(SO): $(OBJS)
	$(CC) $(LDFLAGS_SO) -o $@ $(OBJS) -lprotobuf-c

# the specs find the module through DYNPB_CPATH/DYNPB_LPATH (spec/helper.lua)
check: $(SO) $(HTTP_TARGET)
	DYNPB_CPATH="$(CURDIR)/$(BUILD)/?.so" DYNPB_LPATH="$(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua" \
	DYNPB_LUA=$(LUA) $(LUA) /usr/bin/busted --helper=spec/helper.lua $(BUSTED_ARGS) spec

# every Lua in turn; the last line totals them as "N passed, N failed"
test: deps
	@mkdir -p build; rm -f build/test-summary; status=0; \
	for l in $(TEST_LUAS); do \
	  echo "=== $$l"; \
	  $(MAKE) --no-print-directory check LUA=$$l > build/test-$$l.log 2>&1 || status=1; \
	  cat build/test-$$l.log; \
	  grep -E '^[0-9]+ success' build/test-$$l.log | tail -1 >> build/test-summary || status=1; \
	done; \
	awk '{ p += $$1; f += $$4 + $$7 } END { printf "%d passed, %d failed\n", p, f }' build/test-summary; \
	exit $$status

deps:
	@sh .ci/deps.sh

# the main example: live constants from a registry (a file:// URL here)
example: deps $(SO) $(HTTP_TARGET)
	cd examples && LUA_CPATH="$(CURDIR)/$(BUILD)/?.so;;" LUA_PATH="$(CURDIR)/lua/?.lua;;" \
	  $(LUA) live_constants.lua

example-constants: deps $(SO)
	cd examples && LUA_CPATH="$(CURDIR)/$(BUILD)/?.so;;" LUA_PATH="$(CURDIR)/lua/?.lua;;" \
	  $(LUA) domain_constants.lua

install: $(SO)
	install -d $(DESTDIR)$(INSTALL_CMOD) $(DESTDIR)$(INSTALL_LMOD)/dynpb
	install -m 0755 $(SO) $(DESTDIR)$(INSTALL_CMOD)/dynpb.so
	if [ -n "$(HTTP_TARGET)" ]; then install -d $(DESTDIR)$(INSTALL_CMOD)/dynpb && \
	  install -m 0755 $(HTTP_SO) $(DESTDIR)$(INSTALL_CMOD)/dynpb/http.so; fi
	for f in lua/dynpb/*.lua; do [ -e "$$f" ] || continue; \
	  install -m 0644 $$f $(DESTDIR)$(INSTALL_LMOD)/dynpb/; done

regen:
	cd /usr/include && protoc-c --c_out=$(CURDIR)/csrc/gen google/protobuf/descriptor.proto

clean:
	rm -rf build
