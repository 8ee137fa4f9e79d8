# Ember: the one build entry point.
#
#   make            build build/ember (BPF objects, skeletons, generated code)
#   make run        install packages, build, start the appliance (127.0.0.1:7070)
#   make test       install packages, build, run every test (unit, ASan/UBSan, e2e)
#   make bench      benchmarks against peers; figures go to BENCHMARKS.md
#   make btf-archive  (re)make the minimized BTF archive; BTF=FILE adds a kernel
#   make test-kernels the kernel matrix in qemu (Debian 6.1, 6.12, no-BTF kernels)
#   make soak       30 min of `ember run` under process churn: RSS must stay flat
#   make deps       install the Debian packages (scripts/setup-deps.sh)
#
# Sources are discovered: every src/**/*.c except src/cmd/ goes into
# build/libember.a; src/cmd/*.c are the subcommands linked into build/ember;
# every tests/unit/test_*.c becomes a cmocka test binary.  Adding a module
# needs no Makefile change.

CC       ?= gcc
CLANG    ?= clang
BPFTOOL  ?= bpftool
PROTOC_C ?= protoc-c
ARCH     := x86

.DEFAULT_GOAL := all

BUILD    := build
GEN      := $(BUILD)/gen

WARN     := -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers
CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 $(WARN) -D_GNU_SOURCE -Isrc -Ibpf/include -I$(GEN) -fno-omit-frame-pointer
LDLIBS   := -lbpf -lelf -ldw -lz -lzstd -lcrypto -lsqlite3 -lmicrohttpd -lprotobuf-c -lstdc++ -lpthread -lm
SAN      := -fsanitize=address,undefined -fno-sanitize-recover=undefined

# ---- BPF: clang -target bpf, then bpftool gen skeleton ------------------
# vmlinux.h is not generated from the build machine's kernel: the BPF code
# includes the UAPI headers and bpf/include/kernel_types.h, a short list of
# CO-RE structs (preserve_access_index) whose fields libbpf relocates at load
# time against the running kernel's BTF.  See docs/build.md.
BPF_SRCS := $(wildcard bpf/*/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.bpf.o,$(BPF_SRCS))
BPF_SKELS := $(foreach o,$(BPF_OBJS),$(GEN)/$(notdir $(o:.bpf.o=.skel.h)))
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Ibpf/include \
	-I/usr/include/$(shell uname -m)-linux-gnu -Wall -Werror -Wno-unused-function

$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/include/*.h) $(wildcard bpf/*/*.bpf.h) | $(BUILD)
	@mkdir -p $(dir $@)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(GEN)/%.skel.h: $(BPF_OBJS) | $(GEN)
	$(BPFTOOL) gen skeleton $(filter %/$*.bpf.o,$(BPF_OBJS)) name $(subst .,_,$*) > $@.tmp && mv $@.tmp $@
# keep the object and skeleton (make would delete them as intermediates)
.SECONDARY: $(BPF_OBJS) $(BPF_SKELS)

# ---- generated C: pprof protobuf and the embedded web UI ----------------
$(GEN)/profile.pb-c.c $(GEN)/profile.pb-c.h: src/pprof/profile.proto | $(GEN)
	$(PROTOC_C) --c_out=$(GEN) --proto_path=src/pprof src/pprof/profile.proto

WEB_FILES := $(shell find web -type f 2>/dev/null | sort)
$(GEN)/web_assets.c: $(WEB_FILES) scripts/embed-web.sh scripts/c-array.sh | $(GEN)
	sh scripts/embed-web.sh web > $@.tmp && mv $@.tmp $@

# ---- the BTF archive (btf-archive/README.md) -----------------------------
# Whole kernels' BTF lives in btf-archive/sources/; the entries compiled
# into ember are reduced from it against the BPF objects just built, so
# they are regenerated whenever an object changes and are never stale.
BTF_SOURCES := $(wildcard btf-archive/sources/index btf-archive/sources/*/*.btf.zst)
BTF_ARCHIVE_OUT ?= $(BUILD)/btf-archive

$(BUILD)/btf-archive/index: $(BPF_OBJS) $(BTF_SOURCES) btf-archive/btfgen.sh
	sh btf-archive/btfgen.sh min $(BUILD)/btf-archive $(BPF_OBJS)

$(GEN)/btf_archive_data.c: $(BUILD)/btf-archive/index scripts/c-array.sh | $(GEN)
	sh btf-archive/btfgen.sh embed $(BUILD)/btf-archive > $@.tmp && mv $@.tmp $@

# make btf-archive [BTF=FILE [ORIGIN="where it came from"]] [BTF_ARCHIVE_OUT=DIR]
.PHONY: btf-archive
btf-archive: $(BPF_OBJS)
	$(if $(BTF),sh btf-archive/btfgen.sh add "$(BTF)" "$(ORIGIN)")
	sh btf-archive/btfgen.sh min $(BTF_ARCHIVE_OUT) $(BPF_OBJS)
	sh btf-archive/btfgen.sh stats $(BTF_ARCHIVE_OUT)

GEN_SRCS := $(GEN)/profile.pb-c.c $(GEN)/web_assets.c $(GEN)/btf_archive_data.c
GEN_HDRS := $(BPF_SKELS) $(GEN)/profile.pb-c.h

# ---- the library and the binary -----------------------------------------
LIB_SRCS := $(shell find src -name '*.c' -not -path 'src/cmd/*' | sort)
CMD_SRCS := $(wildcard src/cmd/*.c)

define objs # $(1) = variant dir, $(2) = sources
$(patsubst %.c,$(BUILD)/$(1)/%.o,$(2))
endef

LIB_OBJS := $(call objs,obj,$(LIB_SRCS)) $(patsubst $(GEN)/%.c,$(BUILD)/obj/gen/%.o,$(GEN_SRCS))
CMD_OBJS := $(call objs,obj,$(CMD_SRCS))
SAN_LIB_OBJS := $(call objs,asan,$(LIB_SRCS)) $(patsubst $(GEN)/%.c,$(BUILD)/asan/gen/%.o,$(GEN_SRCS))

.PHONY: all
all: $(BUILD)/ember

$(BUILD) $(GEN):
	@mkdir -p $@

$(BUILD)/obj/gen/%.o: $(GEN)/%.c $(GEN_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wno-error -c $< -o $@

$(BUILD)/asan/gen/%.o: $(GEN)/%.c $(GEN_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wno-error $(SAN) -c $< -o $@

$(BUILD)/obj/%.o: %.c | $(GEN_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/asan/%.o: %.c | $(GEN_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) -MMD -MP -c $< -o $@

$(BUILD)/libember.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libember-asan.a: $(SAN_LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/ember: $(CMD_OBJS) $(BUILD)/libember.a
	$(CC) $(CFLAGS) -o $@ $(CMD_OBJS) $(BUILD)/libember.a $(LDLIBS)

-include $(shell find $(BUILD)/obj $(BUILD)/asan -name '*.d' -type f 2>/dev/null)

# ---- tests ---------------------------------------------------------------
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
UNIT_SAN_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests-asan/%,$(UNIT_SRCS))

# Extra libraries of single tests; libunwind is for the test oracle only and
# never links into build/ember.
TEST_LIBS_test_oracle := -lunwind-generic -lunwind
TEST_DEPS := $(wildcard tests/unit/*.h) $(wildcard tests/oracle/*)

$(BUILD)/tests/%: tests/unit/%.c $(TEST_DEPS) $(BUILD)/libember.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(BUILD)/libember.a $(LDLIBS) -lcmocka $(TEST_LIBS_$*)

$(BUILD)/tests-asan/%: tests/unit/%.c $(TEST_DEPS) $(BUILD)/libember-asan.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) -Itests/unit -o $@ $< $(BUILD)/libember-asan.a $(LDLIBS) -lcmocka $(TEST_LIBS_$*)

# Test tools: small programs the end-to-end tests drive (they may link
# libunwind, the oracle; build/ember never does).
TOOL_SRCS := $(wildcard tests/tools/*.c)
TOOL_BINS := $(patsubst tests/tools/%.c,$(BUILD)/tools/%,$(TOOL_SRCS))

$(BUILD)/tools/%: tests/tools/%.c $(TEST_DEPS) $(BUILD)/libember.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(BUILD)/libember.a $(LDLIBS) -lunwind-generic -lunwind

# Programs the tests profile and inspect (C++ with and without frame
# pointers, Go).  Built from tests/programs/ by tests/programs/build.sh.
.PHONY: test-programs
test-programs:
	sh tests/programs/build.sh $(BUILD)/progs

.PHONY: build-tests
build-tests: $(BUILD)/ember $(UNIT_BINS) $(UNIT_SAN_BINS) $(TOOL_BINS) test-programs

.PHONY: deps
deps:
	sh scripts/setup-deps.sh

.PHONY: test
test: deps
	$(MAKE) build-tests
	sh tests/run-tests.sh

# The kernel matrix in qemu (tests/kernels/, docs/kernels.md): Debian's 6.1
# and 6.12 cloud kernels, 6.1 with /sys/kernel/btf hidden, and a 6.1 built
# without BTF (built once, ~15-25 min, cached in build/kernels/).
# KERNELS="deb61 ..." picks cases from tests/kernels/cases.conf.
.PHONY: test-kernels
test-kernels: deps
	$(MAKE) all test-programs $(BUILD)/tools/validate_unwind
	sh tests/kernels/run.sh $(KERNELS)

# The system group `ember` may read the database and reports (files are
# 0640 root:ember); ember itself never creates it, this setup does.
.PHONY: run
run: deps
	$(MAKE) all
	getent group ember > /dev/null || groupadd --system ember
	$(BUILD)/ember run --db $${EMBER_DB:-/var/lib/ember/ember.db}

.PHONY: bench
bench: deps
	$(MAKE) all test-programs
	bash tests/bench/run.sh

# Every fuzz target for FUZZ_SECONDS each (default 300; `make test` runs
# them for 10 s); one line per target with its run count.
.PHONY: fuzz
fuzz: deps
	FUZZ_SECONDS=$${FUZZ_SECONDS:-300} sh tests/fuzz/run.sh | tee build/fuzz-summary.txt

.PHONY: soak
soak: deps
	$(MAKE) all test-programs
	sh tests/soak/soak.sh

# build/kernels/ (downloaded and built kernels of the matrix, slow to
# remake) survives `make clean`; `make distclean` removes it too.
.PHONY: clean distclean
clean:
	rm -rf $(filter-out $(BUILD)/kernels,$(wildcard $(BUILD)/*))

distclean:
	rm -rf $(BUILD)
