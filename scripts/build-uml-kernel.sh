#!/bin/sh
# Build vmlua's own user-mode Linux kernel from Debian's linux-source.
#
#   sh scripts/build-uml-kernel.sh SOURCE.deb CONFIG PATCHDIR WORK OUT
#
# SOURCE.deb is Debian's linux-source-X.Y package (the caller downloads
# it once, with apt-get download, and keeps it), CONFIG vmlua's config
# fragment (guest/uml/vmlua.config), PATCHDIR holds the project's own
# patches (guest/uml/patches/*.patch, applied in name order with -p1).
# WORK keeps the unpacked, patched source and its objects between builds,
# so that a changed fragment rebuilds only what it touches; it is
# unpacked afresh when SOURCE.deb or a patch changed.  The kernel is
# configured as `make ARCH=um tinyconfig`, then the fragment, then
# olddefconfig, and every CONFIG_ line of the fragment must have survived
# as written.  OUT receives the linux executable.
#
# Prints progress lines on stdout; on failure exits non-zero with a
# one-line reason on stderr (the whole log stays in WORK/build.log).
set -eu
DEB=$(realpath -m "$1") CONFIG=$(realpath -m "$2") PATCHES=$(realpath -m "$3")
WORK=$(realpath -m "$4") OUT=$(realpath -m "$5")
LOG=$WORK/build.log
say() { echo "guest: kernel: $*"; }
fail() { echo "$*" >&2; exit 1; }

for tool in gcc make flex bison bc xz perl patch dpkg-deb; do
	command -v $tool >/dev/null 2>&1 || fail "$tool is not installed (sh scripts/deps.sh run installs what is missing)"
done
[ -r "$DEB" ] || fail "$DEB is missing"
[ -r "$CONFIG" ] || fail "$CONFIG is missing"

# The source, unpacked and patched once per (package, patches).
PKG=$(dpkg-deb -f "$DEB" Package) || fail "$DEB is not a Debian package"
SRC=$WORK/$PKG
KEY="$(basename "$DEB") $(cat "$PATCHES"/*.patch 2>/dev/null | sha256sum | cut -c1-16)"
if [ "$(cat "$WORK/.prepared" 2>/dev/null)" != "$KEY" ]; then
	say "unpacking $(basename "$DEB") into $WORK..."
	rm -rf "$WORK" && mkdir -p "$WORK"
	# Everything but the documentation (Kconfig still sources Documentation/Kconfig).
	dpkg-deb --fsys-tarfile "$DEB" | tar -xO "./usr/src/$PKG.tar.xz" |
		tar -xJ -C "$WORK" --exclude="$PKG/Documentation/[!K]*" ||
		fail "cannot unpack $PKG.tar.xz from $DEB"
	for p in "$PATCHES"/*.patch; do
		[ -e "$p" ] || continue
		say "applying $(basename "$p")"
		patch -d "$SRC" -p1 --batch --forward --quiet <"$p" >>"$LOG" 2>&1 ||
			fail "$(basename "$p") does not apply to $PKG: see $LOG"
	done
	echo "$KEY" >"$WORK/.prepared"
fi

# The config: tinyconfig, the fragment, olddefconfig; then check it.
say "configuring (tinyconfig + $(basename "$CONFIG"))"
: >"$LOG"
make -C "$SRC" ARCH=um tinyconfig >>"$LOG" 2>&1 || fail "make tinyconfig failed: see $LOG"
(cd "$SRC" && scripts/kconfig/merge_config.sh -m .config "$CONFIG") >>"$LOG" 2>&1 ||
	fail "merging $CONFIG failed: see $LOG"
make -C "$SRC" ARCH=um olddefconfig >>"$LOG" 2>&1 || fail "make olddefconfig failed: see $LOG"
grep -E '^CONFIG_[A-Za-z0-9_]+=' "$CONFIG" | while IFS= read -r line; do
	opt=${line%%=*} val=${line#*=}
	if [ "$val" = n ]; then
		if grep -q "^$opt=" "$SRC/.config"; then
			echo "$line did not survive olddefconfig, which made it $(grep "^$opt=" "$SRC/.config")"
		fi
	elif ! grep -qxF "$line" "$SRC/.config"; then
		echo "$line did not survive olddefconfig, which made it $(grep "^$opt=\|^# $opt is not set" "$SRC/.config" || echo nothing) (unknown, or a dependency is missing)"
	fi
done >"$WORK/config.lost"
[ -s "$WORK/config.lost" ] && fail "$(head -1 "$WORK/config.lost")"

# The build, a progress line every 400 objects.
JOBS=$(nproc)
say "compiling with -j$JOBS (a few minutes the first time; later builds are incremental)"
start=$(date +%s)
{ make -C "$SRC" ARCH=um -j"$JOBS" linux 2>&1; echo $? >"$WORK/make.rc"; } | tee -a "$LOG" |
	awk '/^  (CC|AS|LD|AR) / { n++; if (n % 400 == 0) { printf "guest: kernel: %d objects built...\n", n; fflush() } }'
[ "$(cat "$WORK/make.rc")" = 0 ] && [ -x "$SRC/linux" ] ||
	fail "make linux failed: see $LOG ($(grep -m1 -E 'error|Error' "$LOG" || true))"
mkdir -p "$(dirname "$OUT")"
cp "$SRC/linux" "$OUT.tmp" && mv "$OUT.tmp" "$OUT"
# How long it took, and on how many CPUs, for make bench.
echo "$(( $(date +%s) - start )) $JOBS" >"$OUT.buildtime"
say "built $(basename "$OUT") ($(make -s -C "$SRC" ARCH=um kernelrelease 2>/dev/null)) in $(( $(date +%s) - start )) s"
