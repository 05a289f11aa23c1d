#!/bin/busybox sh
# /init of the nested L1 machine (scripts/build-nested.lua packs it,
# scripts/nested.lua boots it under QEMU TCG; docs/kvm-nested.md).
#
# It loads kvm_amd, then runs the steps, each vmlua's kvm backend booting
# an L2 guest, and reports them as TAP on the serial console:
#   # step N NAME timeout S      before each step (the host's watchdog)
#   ok N - NAME (T s)            or "not ok", then the tail of its log
# Kernel command line:
#   nested.steps=a,b,...   the steps to run (default: all but bench, which
#                          needs QEMU in L1; the flake hunt only when
#                          nested.flake is given; none: none)
#   nested.flake=N         the flake step boots N times
#   nested.bench=N         the bench step boots N times each (default 5)
#   nested.exits=N         the exits step makes N requests (default 1000)
#   nested.shell=1         a shell on the console after the steps
/bin/busybox --install -s /bin
export PATH=/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
# The loopback, up: user-mode networking reaches L1's services through
# it (the guest's 10.0.2.2 is L1's 127.0.0.1).  Down, slirp's connect()
# fails with ENETUNREACH and the guest gets an ICMP "net unreachable".
ip link set lo up
hostname l1
echo "nested: L1 up at $(cut -d' ' -f1 /proc/uptime) s, $(nproc) CPUs, $(free -m | awk '/Mem/ {print $2}') MiB"

arg() { tr ' ' '\n' </proc/cmdline | sed -n "s/^nested\.$1=//p" | tail -n 1; }
STEPS=$(arg steps)
FLAKE=$(arg flake)
BENCH=$(arg bench)
[ -n "$BENCH" ] || BENCH=5
EXITS=$(arg exits)
[ -n "$EXITS" ] || EXITS=1000
SHELL_AFTER=$(arg shell)
[ -n "$STEPS" ] || STEPS=selftest-1cpu-256M,selftest-2cpu-256M,selftest-1cpu-5G,selftest-2cpu-5G,linux-1cpu,linux-2cpu,linux-4cpu,blk,net,switch,rng,console,lua-device,scenarios${FLAKE:+,flake}
[ -n "$FLAKE" ] || FLAKE=50

depmod
if ! modprobe kvm_amd 2>/tmp/modprobe.log; then
	sed 's/^/# /' /tmp/modprobe.log
fi
if [ ! -c /dev/kvm ]; then
	echo "1..0 # SKIP L1 has no /dev/kvm (QEMU's -cpu max gave no SVM: $(grep -c svm /proc/cpuinfo) CPUs with svm)"
	[ "$SHELL_AFTER" = 1 ] && setsid cttyhack sh
	poweroff -f
fi
echo "nested: kvm_amd loaded: nested=$(cat /sys/module/kvm_amd/parameters/nested) npt=$(cat /sys/module/kvm_amd/parameters/npt), L1 up at $(cut -d' ' -f1 /proc/uptime) s"

VMLUA=/vmlua/build/vmlua
BOOT=/vmlua/scripts/boot.lua
L2K=/l2/vmlinuz
L2I=/l2/initrd.cpio
now() { cut -d' ' -f1 /proc/uptime; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
# Every boot is bounded twice: boot.lua's own --timeout, and a KILL a
# minute later should vmlua itself hang.
vm() { vt=$1; shift; timeout -s KILL $((vt + 60)) $VMLUA $BOOT --backend kvm --timeout "$vt" "$@"; }
# The cloud kernel's command line: the console on the UART (kept in the
# step's log), a panic ends the guest at once.
L2CMD="console=ttyS0 quiet panic=-1"
# Kernel messages a step shows: the clocks and the buses.
WATCH='Hypervisor detected|tsc: |clocksource: Switched|PCI: Fatal|kvm-clock: Using'


# selftest CPUS MIB: the selftest guest checks vmlua's tables from inside.
selftest() {
	bytes=$(($2 * 1024 * 1024))
	vm 120 --kernel /l2/selftest.elf --cpus "$1" --mem "$2" \
		--cmdline "selftest.cpus=$1 selftest.mem=$bytes" --stats >"$LOG" 2>&1 &&
		grep -q "selftest: PASS" "$LOG" && ! grep -q FAIL "$LOG"
}

# linux CPUS: the cloud kernel to userspace, `uname -a`, poweroff.  The
# command also reports what the guest made of its clocks and buses.
linux() {
	vm 300 --kernel $L2K --initrd $L2I --cpus "$1" --mem 256 \
		--cmdline "$L2CMD" --log "$LOG.console" --stats \
		--run "uname -a; nproc; dmesg | grep -E '$WATCH'" >"$LOG" 2>&1 &&
		grep -q "^Linux vmlua " "$LOG" && grep -qx "$1" "$LOG"
}

# blk: a virtio disk written and flushed in one boot, read back in the
# next, and the bytes on L1's side checked too.
blk() {
	dd if=/dev/zero of=/tmp/disk.img bs=1M count=4 2>/dev/null
	vm 300 --kernel $L2K --initrd $L2I --mem 256 --cmdline "$L2CMD" --log "$LOG.console" \
		--disk /tmp/disk.img --run 'echo nested-blk-ok | dd of=/dev/vda conv=fsync 2>/dev/null' >"$LOG" 2>&1 &&
		[ "$(head -c 13 /tmp/disk.img)" = nested-blk-ok ] &&
		vm 300 --kernel $L2K --initrd $L2I --mem 256 --cmdline "$L2CMD" --log "$LOG.console" \
		--disk /tmp/disk.img,ro --run 'head -c 13 /dev/vda; echo' >>"$LOG" 2>&1 &&
		grep -qx nested-blk-ok "$LOG"
}

# net: virtio-net over user-mode networking, both ways.  The guest pings
# slirp's gateway (10.0.2.2), fetches a file from busybox httpd on L1's
# loopback through it, then serves one itself, which L1 fetches through
# a host port forward (L1's 127.0.0.1:8081 to the guest's port 80); the
# guest powers off once L1 has it (L1 puts /done in its web root).
net() {
	local i=0 vmpid rc
	mkdir -p /tmp/www && echo nested-net-ok >/tmp/www/x && rm -f /tmp/www/done
	httpd -f -p 127.0.0.1:8080 -h /tmp/www & web=$!
	vm 300 --kernel $L2K --initrd $L2I --mem 256 --cmdline "$L2CMD" --log "$LOG.console" \
		--net user=tcp::8081-:80 --run 'ip link set eth0 up; echo "carrier $(cat /sys/class/net/eth0/carrier)";
			ip link show eth0; ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2 &&
			ping -c 1 -W 10 10.0.2.2 && wget -q -O - http://10.0.2.2:8080/x &&
			mkdir -p /www && echo nested-fwd-ok >/www/y && httpd -p 80 -h /www || exit 1
			i=0; until wget -q -O /dev/null http://10.0.2.2:8080/done 2>/dev/null; do
				i=$((i + 1)); [ $i -lt 600 ] || exit 1; sleep 0.2; done
			echo guest-saw-done' >"$LOG" 2>&1 & vmpid=$!
	while [ $i -lt 1200 ] && kill -0 $vmpid 2>/dev/null; do
		if wget -q -O - http://127.0.0.1:8081/y >"$LOG.fwd" 2>/dev/null; then
			touch /tmp/www/done; break
		fi
		i=$((i + 1)); sleep 0.5
	done
	wait $vmpid; rc=$?
	kill $web
	echo "L1 fetched through the forward: $(cat "$LOG.fwd" 2>/dev/null)" >>"$LOG"
	[ $rc = 0 ] && grep -qx nested-net-ok "$LOG" && grep -qx nested-fwd-ok "$LOG.fwd" && grep -qx guest-saw-done "$LOG"
}

# scen FILE...: scenarios run by `vmlua test` on the kvm backend, with
# L1's default guest (the cloud kernel and its initramfs); the boot logs
# of a failed one are kept in /tmp/scenario-logs and shown.
scen() {
	rm -rf /tmp/scenario-logs
	(cd /vmlua && timeout -s KILL 360 $VMLUA test "$@" --backend kvm -j 1 --logdir /tmp/scenario-logs) >"$LOG" 2>&1
	rc=$?
	[ $rc = 0 ] || for f in /tmp/scenario-logs/*; do [ -f "$f" ] && { echo "== $f"; tail -n 15 "$f"; }; done >>"$LOG"
	return $rc
}

# scenarios: the shipped ones (scripts/scenarios: boot, disks), but for
# those the switch and lua-device steps run.
scenarios() {
	set --
	for f in /vmlua/scripts/scenarios/*.lua; do
		case ${f##*/} in network.lua|lua_device.lua) ;; *) set -- "$@" "$f" ;; esac
	done
	scen "$@"
}

# flake: the 1-vCPU boot FLAKE times in a row while two spinning shells
# keep both L1 CPUs busy (at the lowest priority, so the boots still get
# their turn), each boot's time in the log; every boot must reach
# userspace.
flake() {
	local i=0 bad=0 b1 b2 t
	( while :; do :; done ) & b1=$!
	( while :; do :; done ) & b2=$!
	renice -n 19 -p $b1 $b2 >/dev/null
	: >"$LOG"
	while [ $i -lt "$FLAKE" ]; do
		i=$((i + 1))
		t=$(now)
		if vm 120 --kernel $L2K --initrd $L2I --cpus 1 --mem 256 \
			--cmdline "$L2CMD" --log "$LOG.console.$i" \
			--run 'uname -r' >"$LOG.$i" 2>&1; then
			echo "boot $i: ok in $(since "$t") s" >>"$LOG"
			rm -f "$LOG.console.$i"
		else
			bad=$((bad + 1))
			echo "boot $i: FAILED after $(since "$t") s; its console ends:" >>"$LOG"
			tail -n 15 "$LOG.console.$i" | sed 's/^/  /' >>"$LOG"
		fi
		rm -f "$LOG.$i"
	done
	kill $b1 $b2
	echo "flake: $bad of $i boots failed" >>"$LOG"
	[ $bad = 0 ]
}

# bench: the same kernel and initramfs (one whose /init runs `true` and
# powers off) booted BENCH times each by vmlua's kvm backend and by QEMU
# (-accel kvm -M microvm), alternating; one line per boot:
#   bench: vmlua|qemu SECONDS PEAK-RSS-KB
# vmlua's peak RSS is its own VmHWM (--stats); QEMU's is its VmHWM as last
# read, every 0.1 s, before it exited.
bench() {
	local i=0 t hwm pid
	command -v qemu-system-x86_64 >/dev/null || { echo "no QEMU in L1 (build-nested.lua --with-qemu)" >"$LOG"; return 1; }
	: >"$LOG"
	while [ $i -lt "$BENCH" ]; do
		i=$((i + 1))
		t=$(now)
		vm 120 --kernel $L2K --initrd /l2/initrd-off.cpio --cpus 1 --mem 256 --cmdline "$L2CMD" \
			--quiet --stats 2>"$LOG.vmlua" || { cat "$LOG.vmlua" >>"$LOG"; return 1; }
		echo "bench: vmlua $(since "$t") $(sed -n 's/.*peak RSS \([0-9]*\) kB.*/\1/p' "$LOG.vmlua")" >>"$LOG"
		t=$(now)
		timeout -s KILL 180 qemu-system-x86_64 -L /usr/share/qemu -M microvm -accel kvm -cpu host -smp 1 -m 256 \
			-nodefaults -no-user-config -display none -serial file:"$LOG.qemu" -no-reboot \
			-kernel $L2K -initrd /l2/initrd-off.cpio -append "$L2CMD" & pid=$!
		hwm=0
		while kill -0 $pid 2>/dev/null; do
			h=$(awk '/^VmHWM:/ { print $2 }' /proc/$pid/status 2>/dev/null)
			[ -n "$h" ] && hwm=$h
			sleep 0.1
		done
		wait $pid || { tail -n 20 "$LOG.qemu" >>"$LOG"; return 1; }
		echo "bench: qemu $(since "$t") $hwm" >>"$LOG"
	done
}

# exits: VM exits to vmlua per virtio request (blk and the C rng) on the
# cloud kernel, counted by scripts/nested-exits.lua; one line each:
#   exits: DEV REQUESTS total T mmio M io I hlt H
exits() {
	timeout -s KILL 600 $VMLUA /vmlua/scripts/nested-exits.lua "$EXITS" >"$LOG" 2>&1 &&
		grep -q '^exits: blk ' "$LOG" && grep -q '^exits: rng ' "$LOG"
}

# How long the host waits for each step before it gives up on L1.
timeout_of() {
	case $1 in
	flake) echo $((FLAKE * 60)) ;;
	bench) echo $((BENCH * 300)) ;;
	exits) echo 600 ;;
	*) echo 400 ;;
	esac
}

run() {
	case $1 in
	selftest-1cpu-256M) selftest 1 256 ;;
	selftest-2cpu-256M) selftest 2 256 ;;
	selftest-1cpu-5G) selftest 1 5120 ;;
	selftest-2cpu-5G) selftest 2 5120 ;;
	linux-1cpu) linux 1 ;;
	linux-2cpu) linux 2 ;;
	linux-4cpu) linux 4 ;;
	blk) blk ;;
	net) net ;;
	switch) scen /vmlua/scripts/scenarios/network.lua ;;
	rng) scen /vmlua/scripts/nested-scenarios/rng.lua ;;
	console) scen /vmlua/scripts/nested-scenarios/console.lua ;;
	lua-device) scen /vmlua/scripts/scenarios/lua_device.lua ;;
	scenarios) scenarios ;;
	flake) flake ;;
	bench) bench ;;
	exits) exits ;;
	*) echo "unknown step $1" >"$LOG"; return 1 ;;
	esac
}

set -- $(echo "$STEPS" | tr ',' ' ')
[ "$STEPS" = none ] && set --
echo "1..$#"
n=0
for name in "$@"; do
	n=$((n + 1))
	LOG=/tmp/$name.log
	t=$(timeout_of "$name")
	echo "# step $n $name timeout $t"
	t0=$(now)
	run "$name"
	rc=$?
	secs=$(since "$t0")
	if [ $rc = 0 ]; then
		echo "ok $n - $name ($secs s)"
		grep '^boot.lua: ' "$LOG" 2>/dev/null | sed 's/^/# /'
		grep -E "$WATCH|^flake: |^boot [0-9]+: |^bench: |^exits: |^(not )?ok [0-9]|^L1 fetched|^carrier " "$LOG" | sed 's/^/#   /'
	else
		echo "not ok $n - $name ($secs s, status $rc)"
		tail -n 20 "$LOG" 2>/dev/null | sed 's/^/#   /'
		[ -f "$LOG.console" ] && { echo "#   console:"; tail -n 20 "$LOG.console" | sed 's/^/#   /'; }
	fi
done
echo "nested: done at $(now) s"
[ "$SHELL_AFTER" = 1 ] && setsid cttyhack sh
poweroff -f
