#!/bin/bash
# Sequential block throughput inside a guest, side by side in one run:
# a UML guest on vmlua's vhost-user blk (scripts/boot.lua --disk), the
# same UML guest on its own ubd driver, and QEMU's microvm under TCG with
# virtio-blk, each on the same kind of image, with the same script
# (dd, 1 MiB blocks, direct I/O, fsync).  Prints the median MB/s of each
# and the ratios vmlua / other.
#
#   bash bench/blk.sh [RUNS] [MB]     (make bench runs it)
set -euo pipefail
RUNS=${1:-5}
MB=${2:-256}
B=build
CACHE=$B/guest-cache
UML=$CACHE/uml/root/usr/bin/linux.uml
BUSYBOX=$CACHE/uml/root/bin/busybox
KERNEL=$CACHE/kvm/vmlinuz
INITRD=$B/guest/uml/initramfs.cpio
OUT=$B/bench/blk
for f in $B/vmlua "$UML" "$BUSYBOX" "$KERNEL" "$INITRD"; do
	[ -e "$f" ] || { echo "bench: $f is missing: run make guest" >&2; exit 1; }
done
mkdir -p $OUT/kmods $B/bench/results
# The cloud kernel's virtio modules, for the QEMU guest.
deb=$(ls $CACHE/debs/linux-image-*-cloud-amd64_*.deb | head -n 1)
dpkg-deb --fsys-tarfile "$deb" | tar -x -C $OUT/kmods --wildcards --transform='s,.*/,,' \
	'./lib/modules/*/kernel/drivers/virtio/virtio.ko' \
	'./lib/modules/*/kernel/drivers/virtio/virtio_ring.ko' \
	'./lib/modules/*/kernel/drivers/virtio/virtio_mmio.ko' \
	'./lib/modules/*/kernel/drivers/block/virtio_blk.ko'
$B/vmlua bench/blk-initramfs.lua $INITRD "$BUSYBOX" $OUT/kmods $OUT
IMG=$OUT/disk.img
TSC_KHZ=$(awk -F: '/^cpu MHz/ { printf "%d", $2 * 1000; exit }' /proc/cpuinfo)

run() {
	rm -f $IMG && truncate -s $((MB + 16))M $IMG
	case $1 in
	vmlua) $B/vmlua scripts/boot.lua --backend uml --initrd $OUT/uml.cpio --mem 256 \
		--cmdline "quiet benchdev=/dev/vda benchmb=$MB" --disk $IMG --timeout 300 ;;
	ubd) timeout 300 $UML mem=256M initrd=$OUT/uml.cpio quiet benchdev=/dev/ubda benchmb=$MB \
		ubd0=$IMG con0=null,fd:1 con=null ;;
	qemu) timeout 300 qemu-system-x86_64 -M microvm,accel=tcg -m 256M -kernel $KERNEL \
		-initrd $OUT/qemu.cpio -nodefaults -display none -serial file:/dev/stdout -no-reboot \
		-drive id=d,file=$IMG,format=raw,if=none,cache=none,aio=threads \
		-device virtio-blk-device,drive=d \
		-append "console=ttyS0 quiet reboot=t panic=-1 tsc_early_khz=$TSC_KHZ benchdev=/dev/vda benchmb=$MB" ;;
	esac </dev/null 2>&1 | grep -a 'bench-blk' || true
}

echo "bench: sequential $MB MiB write and read in the guest, $RUNS runs each..."
: >$OUT/results
for i in $(seq 1 "$RUNS"); do
	for who in vmlua ubd qemu; do
		line=$(run $who | tr -d '\r')
		case $line in
		*bench-blk-failed*|"") echo "bench: $who failed: $line" >&2; exit 1 ;;
		esac
		echo "$who $line" | tee -a $OUT/results
	done
done
rm -f $IMG
awk '
	function mbs(span,   a) { split(span, a, ","); return a[2] > a[1] ? mb / (a[2] - a[1]) : 0 }
	{ who = $1; for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
	  mb = f["mb"]; w[who, ++n[who]] = mbs(f["write"]); r[who, n[who]] = mbs(f["read"]) }
	function median(arr, who, k,   v, i, j, t) {
		for (i = 1; i <= k; i++) v[i] = arr[who, i]
		for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
		return k % 2 ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2
	}
	END {
		names["vmlua"] = "vmlua vhost-user blk"; names["ubd"] = "UML ubd"; names["qemu"] = "qemu tcg virtio-blk"
		vw = median(w, "vmlua", n["vmlua"]); vr = median(r, "vmlua", n["vmlua"])
		printf "\n%-22s %12s %12s %14s %14s\n", "in the guest", "write MB/s", "read MB/s", "vmlua/this wr", "vmlua/this rd"
		split("vmlua ubd qemu", order, " ")
		for (o = 1; o <= 3; o++) {
			who = order[o]; mw = median(w, who, n[who]); mr = median(r, who, n[who])
			printf "%-22s %12.1f %12.1f %13.2fx %13.2fx\n", names[who], mw, mr, vw / mw, vr / mr
			rows = rows sprintf("    { what = \"%s, write\", value = %.3f, unit = \"MB/s\" },\n", names[who], mw)
			rows = rows sprintf("    { what = \"%s, read\", value = %.3f, unit = \"MB/s\" },\n", names[who], mr)
			if (who != "vmlua") {
				ratios = ratios sprintf("    { what = \"vmlua / %s, write\", value = %.6f },\n", names[who], vw / mw)
				ratios = ratios sprintf("    { what = \"vmlua / %s, read\", value = %.6f },\n", names[who], vr / mr)
			}
		}
		# The same, for bench/report.lua.
		out = "build/bench/results/blk.lua"
		printf "return { bench = \"blk\", runs = %d,\n", n["vmlua"] > out
		printf "  title = \"sequential %d MiB in the guest, dd 1 MiB direct I/O\",\n", mb > out
		printf "  rows = {\n%s  },\n  ratios = {\n%s  } }\n", rows, ratios > out
	}' $OUT/results
