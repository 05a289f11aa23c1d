#!/bin/sh
# Fetch Debian's cloud kernel (linux-image-cloud-amd64) into a cache with
# apt-get download, and unpack its bzImage.  Used by the stock-kernel
# smoke spec of the kvm backend.  Cached: after the first run it needs
# no network.
#
#   scripts/fetch-kernel.sh [CACHE_DIR]   (default build/guest-cache)
set -eu
cache=${1:-build/guest-cache}
out="$cache/kvm/vmlinuz"
if [ -s "$out" ]; then
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
echo "kernel: ready: $out"
