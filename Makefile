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

# Built programs go to B; the guests (kernel cache, initramfs, selftest)
# to G, which both builds share.  SANITIZE=1 builds everything with ASan
# and UBSan into build-san/, so neither build ever reuses the other's
# objects, and `make test SANITIZE=1` runs the specs against it.  It
# builds with clang: GCC 12's UBSan, beside its ASan, ignores log_path
# and prints to a stderr that a spec may swallow (see test below).
G = build
ifeq ($(SANITIZE),1)
B = build-san
ifeq ($(origin CC),default)
CC = clang
endif
SAN = -fsanitize=address,undefined -fno-sanitize-recover=all
ALL_CFLAGS += $(SAN) -fno-omit-frame-pointer
LDFLAGS    += $(SAN)
DEPS_EXTRA = clang
else
B = build
endif
SHELL = /bin/bash

# The core, one concept per file.  Both the executable and the Lua
# module are linked from these objects.
CORE_OBJS = \
	$(B)/core/errbuf.o \
	$(B)/core/calendar.o \
	$(B)/core/memory.o \
	$(B)/core/lmemory.o \
	$(B)/core/loader.o \
	$(B)/core/lloader.o \
	$(B)/core/acpi.o \
	$(B)/core/lacpi.o \
	$(B)/core/uart.o \
	$(B)/core/kvm.o \
	$(B)/core/kvm_vcpu.o \
	$(B)/core/kvm_board.o \
	$(B)/core/lvm.o \
	$(B)/core/tty.o \
	$(B)/core/ttyesc.o \
	$(B)/core/virtq.o \
	$(B)/core/lvirtq.o \
	$(B)/core/device.o \
	$(B)/core/ldevice.o \
	$(B)/core/mmio.o \
	$(B)/core/uml.o \
	$(B)/core/jail.o \
	$(B)/core/mconsole.o \
	$(B)/core/luml.o \
	$(B)/core/vhost_user.o \
	$(B)/core/lvhost.o \
	$(B)/core/rng.o \
	$(B)/core/lrng.o \
	$(B)/core/blk.o \
	$(B)/core/cow.o \
	$(B)/core/image.o \
	$(B)/core/fileio.o \
	$(B)/core/loop.o \
	$(B)/core/lblk.o \
	$(B)/core/switch.o \
	$(B)/core/net.o \
	$(B)/core/slirp.o \
	$(B)/core/lnet.o \
	$(B)/core/vcon.o \
	$(B)/core/lconsole.o \
	$(B)/core/sandbox.o \
	$(B)/core/lsandbox.o \
	$(B)/core/lhelpers.o \
	$(B)/core/linit.o

MAIN_OBJS = $(B)/core/main.o $(B)/core/lreadline.o

VMLUA  = $(B)/vmlua
MODULE = $(B)/lua/vmlua/core.so
SELFTEST = $(G)/guest/selftest.elf

.PHONY: all test test-nested run run-selftest guest guest-debian selftest kernel fuzz bench lint install uninstall clean deps deps-run help

all: $(VMLUA) $(MODULE) $(SELFTEST)

help:
	@echo "make            build build/vmlua, the Lua module and the selftest guest"
	@echo "make run        build, build the default guest, boot it, run a command"
	@echo "make run-selftest  boot the selftest guest on the kvm backend"
	@echo "make guest      build the default guest (uml) into $(G)/guest, with vmlua's own"
	@echo "                UML kernel (UML_KERNEL=debian: Debian's linux.uml; FORCE=1 rebuilds)"
	@echo "make test       install what is missing (Debian), build, run every spec"
	@echo "                (spec/valgrind_spec.lua boots the uml guest under valgrind), then the"
	@echo "                uml specs again with the guest on Debian's linux.uml (make guest-debian)"
	@echo "make test SANITIZE=1  every spec against an ASan+UBSan build in build-san/;"
	@echo "                any sanitizer report fails the run (docs/hardening.md)"
	@echo "make test-nested  the kvm backend nested in QEMU TCG (SVM emulated): L1 boots,"
	@echo "                vmlua runs the selftest, Debian's kernel and every device in it"
	@echo "                (docs/kvm-nested.md; NESTED_STEPS=a,b picks steps,"
	@echo "                NESTED_FLAKE=50 adds the flake hunt)"
	@echo "make guest-debian  the default guest on Debian's linux.uml, in $(DEBIAN_GUEST)"
	@echo "                (vmlua finds it first with VMLUA_GUEST_DIR=$(DEBIAN_GUEST))"
	@echo "make selftest   build the selftest guest ($(SELFTEST))"
	@echo "make bench      measure beside the peers; writes bench/results.json (BENCH_RUNS=10)"
	@echo "make kernel     fetch Debian's cloud kernel into $(G)/guest-cache"
	@echo "make install    install into PREFIX=$(PREFIX)"
	@echo "make fuzz       fuzz rings, vhost-user, loader (FUZZ_SECONDS=60 each)"
	@echo "make lint       static checks (cppcheck on core/, luacheck on the Lua)"
	@echo "make clean      remove build/ and build-san/"

# Every object waits for the packages it builds with (deps-run installs
# only the missing ones, as root; it says what to do otherwise).
$(B)/core/%.o: core/%.c | deps-run
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(VMLUA): $(CORE_OBJS) $(MAIN_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LUA_LIB) -lreadline $(LDLIBS) -lm -ldl

$(MODULE): $(CORE_OBJS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -shared -o $@ $^ $(LDLIBS)

selftest: $(SELFTEST)
$(SELFTEST): $(wildcard guest/selftest/*.c guest/selftest/*.h guest/selftest/*.S guest/selftest/*.ld guest/selftest/*.sh guest/selftest/Makefile) | deps-run
	$(MAKE) -C guest/selftest OUT=$(abspath $(SELFTEST))

# What make and make run need, and what make test needs besides.
deps-run:
	@sh scripts/deps.sh run $(DEPS_EXTRA)
deps:
	@sh scripts/deps.sh test $(DEPS_EXTRA)

# Debian's cloud kernel, for the stock-kernel smoke spec (cached), put
# where vmlua.guest("kvm") finds it.
kernel: deps-run
	@sh scripts/fetch-kernel.sh $(G)/guest-cache
	@mkdir -p $(GUEST_DIR)/kvm
	@cmp -s $(G)/guest-cache/kvm/vmlinuz $(GUEST_DIR)/kvm/vmlinuz || cp $(G)/guest-cache/kvm/vmlinuz $(GUEST_DIR)/kvm/vmlinuz

# Under SANITIZE=1 busted runs in $(B)/lua-san, a Lua interpreter linked
# with the sanitizers (see spec/helpers/lua_san.c), loads $(B)'s module,
# and the specs run $(B)'s programs (VMLUA_BUILD, spec/helpers/env.lua).
# Every instrumented process writes its reports to $(SAN_LOG)/report.PID
# instead of a stderr a spec may swallow; any such file fails the run.
ifeq ($(SANITIZE),1)
SAN_LOG   = $(abspath $(B))/sanitizer
BUSTED    = $(B)/lua-san /usr/bin/busted --cpath='$(B)/lua/?.so'
TEST_DEPS = $(B)/lua-san $(B)/guest
TEST_ENV  = VMLUA_BUILD=$(B) \
	ASAN_OPTIONS=log_path=$(SAN_LOG)/report:detect_leaks=1 \
	UBSAN_OPTIONS=log_path=$(SAN_LOG)/report:print_stacktrace=1:halt_on_error=1 \
	LSAN_OPTIONS=log_path=$(SAN_LOG)/report:suppressions=$(abspath spec/helpers/lsan.supp):print_suppressions=0
SAN_START = rm -rf $(SAN_LOG); mkdir -p $(SAN_LOG);
SAN_CHECK = if [ -n "$$(ls -A $(SAN_LOG))" ]; then \
	  for r in $(SAN_LOG)/*; do echo "=== $$r"; head -n 60 "$$r"; done; \
	  echo "sanitizer reports: $(SAN_LOG)"; rc=1; fi;
# vmlua finds the default guest beside its executable: $(B)'s is $(G)'s.
$(B)/guest: | guest
	@mkdir -p $(B)
	ln -sfn $(abspath $(G))/guest $@
endif

# Every spec, as TAP (kept in $(B)/test.tap), then one summary line.
# The specs run with TMPDIR in a directory of their own, which must be
# empty when they end, and must leave no /tmp/lua_* (os.tmpname ignores
# TMPDIR) that was not there before: nothing is left behind by a run.
# That directory is on /dev/shm where there is one: linux.uml keeps the
# guest's memory in a file under TMPDIR, and warns when it is not tmpfs.
test: deps all kernel guest guest-debian $(B)/vu-peer $(B)/fake-uml $(B)/fake-mconsole $(TEST_DEPS)
	@$(call run_specs,$(BUSTED_ARGS),,$(B)/test.tap)
	@echo "the uml specs again, the default guest on Debian's linux.uml ($(DEBIAN_GUEST)):"
	@$(call run_specs,--tags uml --exclude-tags slow $(DEBIAN_SPECS),VMLUA_GUEST_DIR=$(abspath $(DEBIAN_GUEST)),$(B)/test-debian.tap)

# One busted run ($(1): its arguments, $(2): more environment, $(3): the
# TAP file), as described above.
define run_specs
$(SAN_START) t=$$(mktemp -d /dev/shm/vmlua-test.XXXXXX 2>/dev/null || mktemp -d $(abspath $(B))/test-tmp.XXXXXX); \
	ls /tmp | grep '^lua_' | sort >$$t.before; \
	set -o pipefail; TMPDIR=$$t $(TEST_ENV) $(2) $(BUSTED) -o TAP $(1) | tee $(3) | \
	awk '/^ok .*# SKIP/ { s++; print; next } /^ok / { p++ } /^not ok / { f++ } { print } \
	     END { printf "%d passed, %d failed, %d skipped\n", p, f, s }'; \
	rc=$$?; $(SAN_CHECK) \
	left="$$(ls -A $$t; ls /tmp | grep '^lua_' | sort | comm -13 $$t.before - | sed 's|^|/tmp/|')"; \
	if [ -n "$$left" ]; then echo "make test left these behind in $$t and /tmp:"; \
	  echo "$$left" | sed 's/^/    /'; rc=1; fi; \
	rm -rf $$t $$t.before; exit $$rc
endef

# The default guest on Debian's linux.uml, the fallback where vmlua's own
# kernel cannot be built (docs/uml.md): make test runs the uml specs
# (tagged #uml, less the #slow ones, which test vmlua rather than the
# kernel) of DEBIAN_SPECS once more against it, through VMLUA_GUEST_DIR,
# so that the fallback keeps working.
DEBIAN_GUEST = $(G)/guest-debian
DEBIAN_SPECS = spec/uml_spec.lua spec/scenario_spec.lua spec/boot_spec.lua
guest-debian: $(VMLUA) deps-run
	$(VMLUA) scripts/build-guest.lua --cache $(G)/guest-cache --out $(DEBIAN_GUEST) --kernel debian

# The kvm backend nested in QEMU TCG, where the host has no vmx/svm
# (docs/kvm-nested.md): L1's initramfs packed, L1 booted, its steps'
# TAP passed on.  spec/nested_spec.lua runs the same under make test.
NESTED_STEPS ?=
NESTED_FLAKE ?=
test-nested: deps all guest kernel
	$(VMLUA) scripts/build-nested.lua --cache $(G)/guest-cache --guest $(GUEST_DIR) --out $(G)/nested
	$(VMLUA) scripts/nested.lua --dir $(G)/nested --kernel $(GUEST_DIR)/kvm/vmlinuz \
		$(if $(NESTED_STEPS),--steps $(NESTED_STEPS)) $(if $(NESTED_FLAKE),--flake $(NESTED_FLAKE))

# The interpreter busted runs in under SANITIZE=1.
$(B)/lua-san: spec/helpers/lua_san.c
	@mkdir -p $(B)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(LUA_LIB) -lm -ldl


# Benchmarks, each side by side with a peer (or the other kind of device)
# in the same run, medians of at least 5 runs; the report gathers them
# into bench/results.json and the tables of docs/performance.md.
BENCH_RUNS ?= 10
FLAKE_RUNS ?= 100
bench: all guest kernel $(B)/vu-peer
	@sh scripts/deps.sh test qemu-system-x86 hyperfine
	bash bench/boot.sh $(BENCH_RUNS)
	$(VMLUA) bench/uml_time.lua 20
	$(VMLUA) bench/console.lua 30
	$(VMLUA) bench/notify_hook.lua
	$(VMLUA) bench/rng.lua
	$(VMLUA) bench/vhost_latency.lua
	$(VMLUA) bench/kvm_virtio.lua
	bash bench/blk.sh 5 256
	$(VMLUA) bench/hostfs.lua 5
	$(VMLUA) bench/flake.lua $(FLAKE_RUNS)
	$(VMLUA) bench/nested.lua 5
	$(VMLUA) bench/report.lua

# A linux.uml that halts, then aborts (spec/uml_spec.lua).
$(B)/fake-uml: spec/helpers/fake_uml.c
	@mkdir -p $(B)
	$(CC) $(ALL_CFLAGS) -o $@ $<

# An mconsole socket that answers well or badly (spec/uml_spec.lua).
$(B)/fake-mconsole: spec/helpers/fake_mconsole.c
	@mkdir -p $(B)
	$(CC) -std=gnu11 $(WARN) $(CFLAGS) -o $@ $<

# A vhost-user frontend the specs play, well-behaved or hostile.
$(B)/vu-peer: spec/helpers/vu_peer.c
	@mkdir -p $(B)
	$(CC) -std=gnu11 $(WARN) $(CFLAGS) -o $@ $<

# The default guest: linux.uml and its initramfs in GUEST_DIR/uml, the
# cloud kernel in GUEST_DIR/kvm; the packages cached in build/guest-cache.
# GUEST_DIR defaults to the build tree, beside build/vmlua, where
# vmlua.guest() looks first; make guest GUEST_DIR=~/.cache/vmlua/guest
# builds the per-user one an installed vmlua finds.
#
# Its linux.uml is vmlua's own (UML_KERNEL=vmlua): built once from
# Debian's linux-source with guest/uml/vmlua.config and guest/uml/patches
# (scripts/build-uml-kernel.sh), falling back to Debian's linux.uml, with
# a line saying why, where it cannot be built.  UML_KERNEL=debian (or
# VMLUA_UML_KERNEL=debian in the environment) takes Debian's directly;
# FORCE=1 rebuilds what is cached and retries a kernel that failed.
GUEST_DIR ?= $(G)/guest
UML_KERNEL ?= $(or $(VMLUA_UML_KERNEL),vmlua)
guest: $(VMLUA) deps-run kernel
	$(VMLUA) scripts/build-guest.lua --cache $(G)/guest-cache --out $(GUEST_DIR) --kernel $(UML_KERNEL)$(if $(filter 1,$(FORCE)), --force)

# The main job: build, build the guest, boot it, run a command, power off.
# RUN_CMD is taken as written ($(value)), quoted for the shell, so
# quotes and $(...) reach the guest: make run RUN_CMD='ls -l $(which sh)'.
RUN_CMD ?= echo "hello from $(uname -sr) on $(hostname), $(grep -c ^processor /proc/cpuinfo) CPU, $(free -m | awk '/Mem/ {print $2}') MiB"
run: all guest
	$(VMLUA) scripts/boot.lua --backend auto --timeout 120 --run '$(subst ','\'',$(value RUN_CMD))'

# The kvm backend's own guest.
run-selftest: all
	$(VMLUA) scripts/boot.lua --backend kvm --kernel $(SELFTEST) --cpus 2 --mem 256 --cmdline "selftest.cpus=2 selftest.mem=268435456" --timeout 120 --stats

# libFuzzer + ASan + UBSan on what a guest or a frontend controls: the
# ring walker, the vhost-user server (with the rng device behind it) and
# the kernel loader.  Each target runs FUZZ_SECONDS; new inputs go to
# build/fuzz-corpus/<target>, crashes to build/fuzz-artifacts/<target>;
# the seeds in fuzz/corpus/ are only read.  Any crash fails the run,
# after every target has had its turn.
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_CFLAGS = -std=gnu11 $(WARN) -g -O1 -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=all -Icore
FUZZ_TARGETS = virtq vhost_user loader scenario

$(B)/fuzz_virtq: fuzz/fuzz_virtq.c core/virtq.c core/memory.c core/virtq.h core/memory.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(filter %.c,$^)

$(B)/fuzz_vhost_user: fuzz/fuzz_vhost_user.c core/vhost_user.c core/device.c core/rng.c \
		core/virtq.c core/memory.c core/vhost_user.h core/device.h core/rng.h \
		core/virtq.h core/memory.h core/virtio.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(filter %.c,$^) -lpthread

$(B)/fuzz_loader: fuzz/fuzz_loader.c core/loader.c core/fileio.c core/memory.c core/loader.h core/fileio.h \
		core/memory.h core/x86.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(filter %.c,$^)

# The Lua side of vmlua test: Lua embedded, coverage from a line hook.
$(B)/fuzz_scenario: fuzz/fuzz_scenario.c fuzz/fuzz_scenario.lua lua/vmlua/test.lua
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -I$(LUA_INCDIR) -DVMLUA_SRC='"$(abspath .)"' -o $@ $(filter %.c,$^) \
		$(LUA_LIB) -lm -ldl

fuzz: $(FUZZ_TARGETS:%=$(B)/fuzz_%)
	@rc=0; for t in $(FUZZ_TARGETS); do \
		mkdir -p $(B)/fuzz-corpus/$$t $(B)/fuzz-artifacts/$$t; \
		echo "== fuzz_$$t for $(FUZZ_SECONDS) s"; \
		$(B)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 \
			-artifact_prefix=$(B)/fuzz-artifacts/$$t/ \
			$$(test -f fuzz/$$t.dict && echo -dict=fuzz/$$t.dict) \
			$(B)/fuzz-corpus/$$t fuzz/corpus/$$t || { rc=1; echo "== fuzz_$$t FAILED"; }; \
	done; exit $$rc

lint:
	@sh scripts/deps.sh test cppcheck lua-check
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability -Icore core/
	luacheck --no-color --quiet .

# Installed like a package: the executable; the Lua modules where the
# installed vmlua finds them (beside it, under PREFIX/share/lua), and
# the C module for lua5.4; the boot script (run as `vmlua boot`), the
# guest builder, the scenarios and example devices in PREFIX/share/vmlua;
# the default guest, when make guest has built it; docs and vmlua(1).
SHAREDIR = $(PREFIX)/share/vmlua
DOCDIR   = $(PREFIX)/share/doc/vmlua
MANDIR   = $(PREFIX)/share/man/man1
SHIPPED  = scripts/boot.lua scripts/build-guest.lua scripts/uml-virtio-rng.sh scripts/build-uml-kernel.sh \
	scripts/fetch-kernel.sh scripts/deps.sh
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(LUA_LIBDIR)/vmlua $(DESTDIR)$(LUA_SHAREDIR)/vmlua \
		$(DESTDIR)$(SHAREDIR)/scenarios $(DESTDIR)$(SHAREDIR)/devices $(DESTDIR)$(DOCDIR) $(DESTDIR)$(MANDIR) \
		$(DESTDIR)$(SHAREDIR)/uml/patches
	install -m 755 $(VMLUA) $(DESTDIR)$(PREFIX)/bin/vmlua
	install -m 755 $(MODULE) $(DESTDIR)$(LUA_LIBDIR)/vmlua/core.so
	install -m 644 lua/vmlua/*.lua $(DESTDIR)$(LUA_SHAREDIR)/vmlua/
	install -m 755 $(SHIPPED) $(DESTDIR)$(SHAREDIR)/
	install -m 644 scripts/scenarios/*.lua $(DESTDIR)$(SHAREDIR)/scenarios/
	install -m 644 scripts/devices/*.lua $(DESTDIR)$(SHAREDIR)/devices/
	install -m 644 guest/uml/vmlua.config $(DESTDIR)$(SHAREDIR)/uml/
	install -m 644 guest/uml/patches/*.patch $(DESTDIR)$(SHAREDIR)/uml/patches/
	@for f in uml/linux.uml:755 uml/initramfs.cpio:644 kvm/vmlinuz:644 kvm/initramfs.cpio:644; do \
		if [ -f $(GUEST_DIR)/$${f%:*} ]; then \
			echo "install $(GUEST_DIR)/$${f%:*}"; \
			install -D -m $${f#*:} $(GUEST_DIR)/$${f%:*} $(DESTDIR)$(SHAREDIR)/guest/$${f%:*} || exit 1; \
		fi; done
	@[ -f $(GUEST_DIR)/uml/initramfs.cpio ] || echo "install: no default guest in $(GUEST_DIR) (make guest first, or make guest GUEST_DIR=~/.cache/vmlua/guest later)"
	install -m 644 README.md docs/*.md $(DESTDIR)$(DOCDIR)/
	install -m 644 docs/vmlua.1 $(DESTDIR)$(MANDIR)/vmlua.1

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/vmlua $(DESTDIR)$(LUA_LIBDIR)/vmlua/core.so $(DESTDIR)$(MANDIR)/vmlua.1
	rm -rf $(DESTDIR)$(LUA_SHAREDIR)/vmlua $(DESTDIR)$(SHAREDIR) $(DESTDIR)$(DOCDIR)
	-rmdir $(DESTDIR)$(LUA_LIBDIR)/vmlua 2>/dev/null

clean:
	rm -rf build build-san
	$(MAKE) -C guest/selftest clean

-include $(CORE_OBJS:.o=.d) $(MAIN_OBJS:.o=.d)
