# vmlua - build, test, run.  `make help` lists the targets.

PREFIX      ?= /usr/local
LUA_VERSION ?= 5.4
LUA         ?= lua$(LUA_VERSION)
LUA_INCDIR  ?= /usr/include/lua$(LUA_VERSION)
LUA_LIB     ?= -llua$(LUA_VERSION)
LUA_LIBDIR  ?= $(PREFIX)/lib/lua/$(LUA_VERSION)
LUA_SHAREDIR?= $(PREFIX)/share/lua/$(LUA_VERSION)
BUSTED      ?= $(LUA) /usr/bin/busted
BUSTED_ARGS ?=

CC       ?= cc
CFLAGS   ?= -O2 -g
WARN      = -Wall -Wextra -Werror -Wshadow -Wmissing-prototypes
ALL_CFLAGS = -std=gnu11 $(WARN) -fPIC -I$(LUA_INCDIR) -Icore $(CFLAGS)
LDLIBS    = -lslirp -lseccomp -lpthread

ifeq ($(SANITIZE),1)
ALL_CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer
LDFLAGS    += -fsanitize=address,undefined
endif

B = build
SHELL = /bin/bash

# The core, one concept per file.  Both the executable and the Lua
# module are linked from these objects.
CORE_OBJS = \
	$(B)/core/errbuf.o \
	$(B)/core/memory.o \
	$(B)/core/lmemory.o \
	$(B)/core/loader.o \
	$(B)/core/lloader.o \
	$(B)/core/acpi.o \
	$(B)/core/lacpi.o \
	$(B)/core/uart.o \
	$(B)/core/kvm.o \
	$(B)/core/lvm.o \
	$(B)/core/tty.o \
	$(B)/core/virtq.o \
	$(B)/core/lvirtq.o \
	$(B)/core/device.o \
	$(B)/core/ldevice.o \
	$(B)/core/mmio.o \
	$(B)/core/uml.o \
	$(B)/core/luml.o \
	$(B)/core/vhost_user.o \
	$(B)/core/lvhost.o \
	$(B)/core/rng.o \
	$(B)/core/lrng.o \
	$(B)/core/blk.o \
	$(B)/core/cow.o \
	$(B)/core/lblk.o \
	$(B)/core/switch.o \
	$(B)/core/net.o \
	$(B)/core/slirp.o \
	$(B)/core/lnet.o \
	$(B)/core/vcon.o \
	$(B)/core/lconsole.o \
	$(B)/core/sandbox.o \
	$(B)/core/lsandbox.o \
	$(B)/core/lvmlua.o

MAIN_OBJS = $(B)/core/main.o $(B)/core/lreadline.o

VMLUA  = $(B)/vmlua
MODULE = $(B)/lua/vmlua/core.so
SELFTEST = $(B)/guest/selftest.elf

.PHONY: all test run run-selftest guest selftest kernel fuzz bench lint install clean deps help

all: $(VMLUA) $(MODULE) $(SELFTEST)

help:
	@echo "make            build build/vmlua, the Lua module and the selftest guest"
	@echo "make run        build, build the default guest, boot it, run a command"
	@echo "make run-selftest  boot the selftest guest on the kvm backend"
	@echo "make guest      build the default guest (uml) into $(B)/guest"
	@echo "make test       install what is missing (Debian), build, run every spec"
	@echo "make selftest   build the selftest guest ($(SELFTEST))"
	@echo "make bench      boot time beside bare linux.uml and QEMU (BENCH_RUNS=10)"
	@echo "make kernel     fetch Debian's cloud kernel into $(B)/guest-cache"
	@echo "make install    install into PREFIX=$(PREFIX)"
	@echo "make fuzz       fuzz the ring walker (FUZZ_SECONDS=60)"
	@echo "make lint       static checks (cppcheck)"
	@echo "make clean      remove build/"

$(B)/core/%.o: core/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(VMLUA): $(CORE_OBJS) $(MAIN_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LUA_LIB) -lreadline $(LDLIBS) -lm -ldl

$(MODULE): $(CORE_OBJS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -shared -o $@ $^ $(LDLIBS)

selftest: $(SELFTEST)
$(SELFTEST): $(wildcard guest/selftest/*.c guest/selftest/*.h guest/selftest/*.S guest/selftest/*.ld guest/selftest/*.sh guest/selftest/Makefile)
	$(MAKE) -C guest/selftest OUT=$(abspath $(SELFTEST))

deps:
	@sh scripts/deps.sh

# Debian's cloud kernel, for the stock-kernel smoke spec (cached).
kernel: deps
	@sh scripts/fetch-kernel.sh $(B)/guest-cache

# Every spec, as TAP (kept in build/test.tap), then one summary line.
test: deps all kernel guest $(B)/vu-peer $(B)/fake-uml
	@set -o pipefail; $(BUSTED) -o TAP $(BUSTED_ARGS) | tee $(B)/test.tap | \
	awk '/^ok .*# SKIP/ { s++; print; next } /^ok / { p++ } /^not ok / { f++ } { print } \
	     END { printf "%d passed, %d failed, %d skipped\n", p, f, s }'


# Benchmarks, each side by side with a peer in the same run.
bench: all guest kernel
	@sh scripts/deps.sh qemu-system-x86 hyperfine
	$(VMLUA) bench/notify_hook.lua
	bash bench/boot.sh $(BENCH_RUNS)
	bash bench/blk.sh

# A linux.uml that halts, then aborts (spec/uml_spec.lua).
$(B)/fake-uml: spec/helpers/fake_uml.c
	@mkdir -p $(B)
	$(CC) $(ALL_CFLAGS) -o $@ $<

# A vhost-user frontend the specs play, well-behaved or hostile.
$(B)/vu-peer: spec/helpers/vu_peer.c
	@mkdir -p $(B)
	$(CC) -std=gnu11 $(WARN) $(CFLAGS) -o $@ $<

# The default guest for the uml backend (cached in build/guest-cache).
GUEST = $(B)/guest/uml/initramfs.cpio
guest: $(VMLUA) deps kernel
	$(VMLUA) scripts/build-guest.lua --cache $(B)/guest-cache --out $(B)/guest/uml

# The main job: build, build the guest, boot it, run a command, power off.
# RUN_CMD is taken as written ($(value)), quoted for the shell, so
# quotes and $(...) reach the guest: make run RUN_CMD='ls -l $(which sh)'.
RUN_CMD ?= echo "hello from $(uname -sr) on $(hostname), $(grep -c ^processor /proc/cpuinfo) CPU, $(free -m | awk '/Mem/ {print $2}') MiB"
run: all guest
	$(VMLUA) scripts/boot.lua --backend auto --timeout 120 --run '$(subst ','\'',$(value RUN_CMD))'

# The kvm backend's own guest.
run-selftest: all
	$(VMLUA) scripts/boot.lua --backend kvm --kernel $(SELFTEST) --cpus 2 --mem 256 --cmdline "selftest.cpus=2 selftest.mem=268435456" --timeout 120 --stats

# libFuzzer + ASan + UBSan on the ring walker.  New inputs go to
# build/fuzz-corpus; the seeds in fuzz/corpus/ are only read.
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
$(B)/fuzz_virtq: fuzz/fuzz_virtq.c core/virtq.c core/memory.c core/virtq.h core/memory.h
	@mkdir -p $(@D)
	$(FUZZ_CC) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-Icore -o $@ fuzz/fuzz_virtq.c core/virtq.c core/memory.c

fuzz: $(B)/fuzz_virtq
	@mkdir -p $(B)/fuzz-corpus/virtq
	$(B)/fuzz_virtq -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
		$(B)/fuzz-corpus/virtq fuzz/corpus/virtq

lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability -Icore core/

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(LUA_LIBDIR)/vmlua $(DESTDIR)$(LUA_SHAREDIR)/vmlua
	install -m 755 $(VMLUA) $(DESTDIR)$(PREFIX)/bin/vmlua
	install -m 755 $(MODULE) $(DESTDIR)$(LUA_LIBDIR)/vmlua/core.so
	install -m 644 lua/vmlua/*.lua $(DESTDIR)$(LUA_SHAREDIR)/vmlua/

clean:
	rm -rf $(B)
	$(MAKE) -C guest/selftest clean

-include $(CORE_OBJS:.o=.d) $(MAIN_OBJS:.o=.d)
