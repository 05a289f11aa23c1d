#!/bin/sh
# Fetch Debian's cloud kernel (linux-image-cloud-amd64) into a cache with
# apt-get download, and unpack its bzImage.  Used by the stock-kernel
# smoke spec of the kvm backend, and the vmlinux ELF inside it: under
# emulated kvm (kvm_pvm) the decompressor alone would take minutes, so the
# smoke spec boots the ELF through vmlua's ELF loader.  Cached: after the
# first run it needs no network.
#
#   scripts/fetch-kernel.sh [CACHE_DIR]   (default build/guest-cache)
set -eu
cache=${1:-build/guest-cache}
out="$cache/kvm/vmlinuz"
elf="$cache/kvm/vmlinux"
if [ -s "$out" ] && [ -s "$elf" ]; then
	echo "kernel: cached $out"
	exit 0
fi
mkdir -p "$cache/debs" "$cache/kvm"
cd "$cache/debs"
# The metapackage names the real image package; follow it.
pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
      sed -n 's/^ *Depends: \(linux-image-[0-9].*-cloud-amd64\)$/\1/p' | head -n 1)
if [ -z "$pkg" ]; then
	echo "kernel: cannot resolve linux-image-cloud-amd64: run apt-get update (as root) first" >&2
	exit 1
fi
if ! ls "$pkg"_*.deb >/dev/null 2>&1; then
	echo "kernel: downloading $pkg (apt-get download)..."
	apt-get download -q "$pkg" >/dev/null
fi
deb=$(ls "$pkg"_*.deb | head -n 1)
echo "kernel: unpacking $deb..."
rm -rf ../kvm/root
dpkg-deb -x "$deb" ../kvm/root
cp ../kvm/root/boot/vmlinuz-* ../kvm/vmlinuz
rm -rf ../kvm/root

# The compressed payload of a bzImage: payload_offset (0x248) and
# payload_length (0x24c) count from the protected-mode code, which starts
# after the (setup_sects + 1) * 512 bytes of real-mode setup.
cd ../kvm
u() { od -An -t"u$1" -j "$2" -N "$1" vmlinuz | tr -d ' '; }
sects=$(u 1 $((0x1f1)))
if [ "$sects" = 0 ]; then sects=4; fi
start=$(( (sects + 1) * 512 + $(u 4 $((0x248))) ))
len=$(u 4 $((0x24c)))
tail -c +$((start + 1)) vmlinuz | head -c "$len" > payload
case $(od -An -tx1 -N4 payload | tr -d ' ') in
02214c18) lz4 -dc payload > vmlinux 2>/dev/null || [ -s vmlinux ] ;;
28b52ffd) zstd -dcq payload > vmlinux 2>/dev/null || [ -s vmlinux ] ;;
fd377a58) xz -dc payload > vmlinux 2>/dev/null || [ -s vmlinux ] ;;
1f8b*)    gzip -dc payload > vmlinux 2>/dev/null || [ -s vmlinux ] ;;
*) echo "kernel: unknown payload compression" >&2; rm -f payload; exit 1 ;;
esac
rm -f payload
echo "kernel: ready: $out and $elf"
