#!/bin/bash
# Boot to poweroff, side by side, in one run: vmlua's uml backend
# (scripts/boot.lua) with vmlua's own UML kernel and with Debian's, each
# kernel bare, and QEMU's microvm under TCG, each booting the same busybox
# initramfs whose /init ends the machine at once.  Prints each median and
# the ratios of medians, then vmlua's own peak RSS, then the kernels'
# sizes (and the build time of vmlua's, when its build recorded it).
# Console output goes through a pipe for all three alike.
#
#   bash bench/boot.sh [RUNS]     (make bench runs it)
set -euo pipefail
RUNS=${1:-10}
B=build
CACHE=$B/guest-cache
UML=$CACHE/uml/root/usr/bin/linux.uml
BUSYBOX=$CACHE/uml/root/bin/busybox
KERNEL=$CACHE/kvm/vmlinuz
OUT=$B/bench
RES=${BENCH_OUT:-bench/results}
OWN=$(ls -t $CACHE/uml/linux-vmlua-* 2>/dev/null | grep -v '\.buildtime$' | head -n 1 || true)
for f in $B/vmlua "$UML" "$BUSYBOX" "$KERNEL" "$OWN"; do
	[ -e "$f" ] || { echo "bench: $f is missing: run make guest kernel" >&2; exit 1; }
done
mkdir -p $OUT
$B/vmlua bench/guest-initramfs.lua "$BUSYBOX" $OUT

VMLUA_CMD="$B/vmlua scripts/boot.lua --backend uml --kernel $OWN --initrd $OUT/poweroff.cpio --mem 128 --quiet"
VMLUA_DEB_CMD="$B/vmlua scripts/boot.lua --backend uml --kernel $UML --initrd $OUT/poweroff.cpio --mem 128 --quiet"
UML_CMD="$UML mem=128M initrd=$OUT/poweroff.cpio quiet con0=null,fd:1 con=null"
OWN_CMD="$OWN mem=128M initrd=$OUT/poweroff.cpio quiet con0=null,fd:1 con=null"
# Under TCG the guest's TSC calibration against the PIT fails now and then
# and the boot hangs; telling it the host's TSC rate skips that step.
TSC_KHZ=$(awk -F: '/^cpu MHz/ { printf "%d", $2 * 1000; exit }' /proc/cpuinfo)
QEMU_CMD="qemu-system-x86_64 -M microvm,accel=tcg -m 128M -kernel $KERNEL -initrd $OUT/reboot.cpio -append 'console=ttyS0 quiet reboot=t panic=-1 tsc_early_khz=$TSC_KHZ' -nodefaults -display none -serial file:/dev/stdout -no-reboot"

# Each contender must really boot the guest before it is timed.
for name in vmlua vmlua-debian own uml qemu; do
	case $name in
	vmlua) cmd="$B/vmlua scripts/boot.lua --backend uml --kernel $OWN --initrd $OUT/poweroff.cpio --mem 128" ;;
	vmlua-debian) cmd="$B/vmlua scripts/boot.lua --backend uml --kernel $UML --initrd $OUT/poweroff.cpio --mem 128" ;;
	own) cmd=$OWN_CMD ;;
	uml) cmd=$UML_CMD ;;
	qemu) cmd=$QEMU_CMD ;;
	esac
	out=$(timeout 120 bash -c "$cmd" </dev/null 2>&1 || true)
	if ! grep -q bench-guest-up <<<"$out"; then
		echo "bench: $name did not boot the guest: $cmd" >&2
		exit 1
	fi
done

echo "bench: boot to poweroff, $RUNS runs each (hyperfine)..."
hyperfine --warmup 1 --runs "$RUNS" --style basic --export-csv $OUT/boot.csv \
	-n "vmlua uml backend with vmlua's kernel" "$VMLUA_CMD </dev/null | cat >/dev/null" \
	-n "vmlua uml backend with Debian's linux.uml" "$VMLUA_DEB_CMD </dev/null | cat >/dev/null" \
	-n "bare vmlua kernel" "$OWN_CMD </dev/null | cat >/dev/null" \
	-n "bare Debian linux.uml" "$UML_CMD </dev/null | cat >/dev/null" \
	-n "qemu microvm tcg" "$QEMU_CMD </dev/null | cat >/dev/null"

mkdir -p $RES
awk -F, -v runs="$RUNS" -v res="$RES" -v when="$(date -u +%Y-%m-%dT%H:%M:%SZ)" 'NR > 1 { name[NR] = $1; med[NR] = $4 }
	END {
		printf "\n%-40s %10s %14s\n", "boot to poweroff", "median", "vmlua / this"
		for (i = 2; i <= NR; i++)
			printf "%-40s %8.3f s %13.2fx\n", name[i], med[i], med[2] / med[i]
		# The same, for bench/report.lua.
		out = res "/boot.lua"
		printf "return { bench = \"boot\", runs = %d, date = \"%s\",\n", runs, when > out
		printf "  title = \"boot to poweroff, busybox initramfs, 128 MiB (hyperfine)\",\n  rows = {\n" > out
		for (i = 2; i <= NR; i++)
			printf "    { what = \"%s\", value = %.6f, unit = \"s\" },\n", name[i], med[i] > out
		printf "  },\n  ratios = {\n" > out
		for (i = 3; i <= NR; i++)
			printf "    { what = \"vmlua / %s\", value = %.6f },\n", name[i], med[2] / med[i] > out
		printf "  } }\n" > out
	}' $OUT/boot.csv

# vmlua's own peak RSS (VmHWM, without the UML child), median of 5 boots.
for i in 1 2 3 4 5; do
	$VMLUA_CMD --stats </dev/null 2>&1 | sed -n 's/.*vmlua peak RSS \([0-9]*\) kB.*/\1/p'
done | sort -n | awk -v res="$RES" -v when="$(date -u +%Y-%m-%dT%H:%M:%SZ)" '{ v[NR] = $1 } END {
	if (NR < 5) { print "bench: --stats gave no peak RSS" > "/dev/stderr"; exit 1 }
	printf "vmlua peak RSS %d kB (median of 5 boots, without the UML child)\n", v[3]
	out = res "/rss.lua"
	printf "return { bench = \"rss\", runs = 5, date = \"%s\", title = \"vmlua peak RSS while booting the guest on uml\",\n", when > out
	printf "  rows = { { what = \"vmlua peak RSS (VmHWM), without the UML child\", value = %d, unit = \"kB\" } } }\n", v[3] > out
}'

# The kernels: their sizes, and how long vmlua's took to build.
own_kb=$(( $(stat -c %s "$OWN") / 1024 ))
deb_kb=$(( $(stat -c %s "$UML") / 1024 ))
build_row=""
secs=""
if [ -r "$OWN.buildtime" ]; then
	read -r secs cpus <"$OWN.buildtime"
	build_row="    { what = \"vmlua's kernel, build time on $cpus CPUs\", value = $secs, unit = \"s\" },"
fi
echo "kernels: vmlua's $own_kb KiB, Debian's $deb_kb KiB"
cat >"$RES/kernel.lua" <<LUA
return { bench = "kernel", runs = 1, date = "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  title = "the UML kernels: size of linux.uml (and build time of vmlua's)",
  rows = {
    { what = "vmlua's kernel ($(basename "$OWN"))", value = $own_kb, unit = "KiB" },
    { what = "Debian's linux.uml", value = $deb_kb, unit = "KiB" },
$build_row
  },
  ratios = { { what = "vmlua's / Debian's size", value = $own_kb / $deb_kb } } }
LUA
