#!/bin/bash
# Boot to poweroff, side by side, in one run: vmlua's uml backend
# (scripts/boot.lua), bare linux.uml, and QEMU's microvm under TCG, each
# booting the same busybox initramfs whose /init ends the machine at once.
# Prints each median and the ratios of medians, then vmlua's own peak RSS.
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
for f in $B/vmlua "$UML" "$BUSYBOX" "$KERNEL"; do
	[ -e "$f" ] || { echo "bench: $f is missing: run make guest kernel" >&2; exit 1; }
done
mkdir -p $OUT
$B/vmlua bench/guest-initramfs.lua "$BUSYBOX" $OUT

VMLUA_CMD="$B/vmlua scripts/boot.lua --backend uml --initrd $OUT/poweroff.cpio --mem 128 --quiet"
UML_CMD="$UML mem=128M initrd=$OUT/poweroff.cpio quiet con0=null,fd:1 con=null"
# Under TCG the guest's TSC calibration against the PIT fails now and then
# and the boot hangs; telling it the host's TSC rate skips that step.
TSC_KHZ=$(awk -F: '/^cpu MHz/ { printf "%d", $2 * 1000; exit }' /proc/cpuinfo)
QEMU_CMD="qemu-system-x86_64 -M microvm,accel=tcg -m 128M -kernel $KERNEL -initrd $OUT/reboot.cpio -append 'console=ttyS0 quiet reboot=t panic=-1 tsc_early_khz=$TSC_KHZ' -nodefaults -display none -serial file:/dev/stdout -no-reboot"

# Each contender must really boot the guest before it is timed.
for name in vmlua uml qemu; do
	case $name in
	vmlua) cmd="$B/vmlua scripts/boot.lua --backend uml --initrd $OUT/poweroff.cpio --mem 128" ;;
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
	-n "vmlua (uml backend)" "$VMLUA_CMD </dev/null | cat >/dev/null" \
	-n "bare linux.uml" "$UML_CMD </dev/null | cat >/dev/null" \
	-n "qemu microvm tcg" "$QEMU_CMD </dev/null | cat >/dev/null"

mkdir -p $OUT/results
awk -F, -v runs="$RUNS" 'NR > 1 { name[NR] = $1; med[NR] = $4 }
	END {
		printf "\n%-22s %10s %14s\n", "boot to poweroff", "median", "vmlua / this"
		for (i = 2; i <= NR; i++)
			printf "%-22s %8.3f s %13.2fx\n", name[i], med[i], med[2] / med[i]
		# The same, for bench/report.lua.
		out = "build/bench/results/boot.lua"
		printf "return { bench = \"boot\", runs = %d,\n", runs > out
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
done | sort -n | awk '{ v[NR] = $1 } END {
	if (NR < 5) { print "bench: --stats gave no peak RSS" > "/dev/stderr"; exit 1 }
	printf "vmlua peak RSS %d kB (median of 5 boots, without the UML child)\n", v[3]
	printf "return { bench = \"rss\", runs = 5, title = \"vmlua peak RSS while booting the guest on uml\",\n" > "build/bench/results/rss.lua"
	printf "  rows = { { what = \"vmlua peak RSS (VmHWM), without the UML child\", value = %d, unit = \"kB\" } } }\n", v[3] > "build/bench/results/rss.lua"
}'
