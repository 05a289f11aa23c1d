#!/bin/sh
# Build virtio-rng.ko for Debian's linux.uml.  Debian builds its UML
# kernel without CONFIG_HW_RANDOM_VIRTIO, so a UML guest has no driver for
# vmlua's rng device.  This builds the one module from Debian's own
# linux-source of the very same version, with linux.uml's own config (from
# the user-mode-linux package), and checks that its vermagic matches the
# kernel's.  Only the .ko is kept; the source is removed afterwards.
#
#   sh scripts/uml-virtio-rng.sh ROOT VERSION WORKDIR OUT.ko
#
# ROOT is the unpacked user-mode-linux package, VERSION its kernel version
# (e.g. 6.1.176).  Exits non-zero with a one-line reason on stderr when it
# cannot (no matching linux-source in the archive, no network, ...).
set -eu
# Absolute paths: make -C runs in the source tree.
ROOT=$(realpath -m "$1") VERSION=$2 WORK=$(realpath -m "$3") OUT=$(realpath -m "$4")
SERIES=$(echo "$VERSION" | cut -d. -f1-2)
PKG=linux-source-$SERIES
LOG=$WORK.log
fail() { echo "$*" >&2; rm -rf "$WORK"; exit 1; }

CONFIG=$ROOT/usr/share/doc/user-mode-linux/config.gz
KERNEL=$ROOT/usr/bin/linux.uml
[ -r "$CONFIG" ] || fail "$CONFIG is missing"
# The vermagic the kernel will demand, e.g. "6.1.176 mod_unload ".
WANT=$(strings -a "$KERNEL" | grep -m1 -E "^$VERSION (SMP |preempt[a-z_]* |mod_unload |modversions )+$" || true)
[ -n "$WANT" ] || fail "no vermagic for $VERSION in $KERNEL"

# Debian's source package of the same upstream version (6.1.176-1, ...).
DEBVER=$(apt-cache madison "$PKG" 2>/dev/null | awk -v v="$VERSION" '$3 ~ "^" v "-" { print $3; exit }')
[ -n "$DEBVER" ] || fail "no $PKG $VERSION-* in the apt archive (apt-get update?)"

rm -rf "$WORK" && mkdir -p "$WORK"
(cd "$WORK" && apt-get download -q "$PKG=$DEBVER" >/dev/null 2>&1) ||
	fail "cannot download $PKG=$DEBVER"
dpkg-deb -x "$WORK"/${PKG}_*.deb "$WORK/deb" || fail "cannot unpack $PKG"
rm -f "$WORK"/${PKG}_*.deb
# Everything but the documentation (Kconfig still sources Documentation/Kconfig).
tar -xJf "$WORK/deb/usr/src/$PKG.tar.xz" -C "$WORK" --exclude="$PKG/Documentation/[!K]*" ||
	fail "cannot unpack $PKG.tar.xz"
rm -rf "$WORK/deb"
SRC=$WORK/$PKG

gzip -dc "$CONFIG" | sed 's/^# CONFIG_HW_RANDOM_VIRTIO is not set$/CONFIG_HW_RANDOM_VIRTIO=m/' >"$SRC/.config"
make -s -C "$SRC" ARCH=um olddefconfig >"$LOG" 2>&1 || fail "make olddefconfig failed: see $LOG"
grep -q '^CONFIG_HW_RANDOM_VIRTIO=m$' "$SRC/.config" || fail "the config does not allow CONFIG_HW_RANDOM_VIRTIO=m"
make -s -C "$SRC" ARCH=um -j"$(nproc)" modules_prepare >>"$LOG" 2>&1 || fail "make modules_prepare failed: see $LOG"

# The one driver, built as an external module.  There is no Module.symvers
# for linux.uml (it has no modversions), so unresolved symbols only warn.
mkdir -p "$WORK/m"
cp "$SRC/drivers/char/hw_random/virtio-rng.c" "$WORK/m/"
echo 'obj-m := virtio-rng.o' >"$WORK/m/Kbuild"
make -s -C "$SRC" ARCH=um M="$WORK/m" KBUILD_MODPOST_WARN=1 modules >>"$LOG" 2>&1 ||
	fail "building virtio-rng.ko failed: see $LOG"
GOT=$(grep -a -o -m1 "vermagic=[^[:cntrl:]]*" "$WORK/m/virtio-rng.ko" | head -1)
[ "$GOT" = "vermagic=$WANT" ] || fail "virtio-rng.ko has $GOT, the kernel wants vermagic=$WANT"
mkdir -p "$(dirname "$OUT")"
cp "$WORK/m/virtio-rng.ko" "$OUT"
rm -rf "$WORK" "$LOG"
