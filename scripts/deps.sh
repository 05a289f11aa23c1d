#!/bin/sh
# Install the Debian packages vmlua needs, and only those that are missing.
# Run as root (CI is); otherwise say what to do.
#
#   sh scripts/deps.sh run|test [EXTRA-PACKAGE ...]
#
# "run" is what `make` and `make run` need: the compiler, Lua 5.4 with
# luaposix and argparse, the libraries the core links, and what builds
# the default guest (vmlua's UML kernel, or with Debian's the virtio-rng
# module, is built from linux-source with flex, bison, bc, patch and
# xz-utils).  "test" adds what `make test` runs:
# busted, tmux (a real terminal for the REPL spec), valgrind (a boot
# under memcheck), iproute2 (taps), procps (pgrep), acpica-tools (iasl
# disassembles our ACPI tables), e2fsprogs (disk images), qemu-system-x86
# (TCG with SVM, where spec/nested_spec.lua runs the kvm backend nested).  make bench and
# make test SANITIZE=1 add theirs as EXTRA-PACKAGEs.
set -e
what=${1:-test}
[ $# -gt 0 ] && shift
RUN="gcc libc6-dev make binutils lua5.4 liblua5.4-dev lua-argparse lua-bit32 libreadline-dev
	libslirp-dev libseccomp-dev lz4 xz-utils flex bison bc patch"
TEST="lua-busted luarocks tmux valgrind iproute2 procps util-linux acpica-tools e2fsprogs cpio
	qemu-system-x86"
case $what in
run)  PKGS="$RUN $*" ;;
test) PKGS="$RUN $TEST $*" ;;
*)    echo "usage: sh scripts/deps.sh run|test [PACKAGE ...]" >&2; exit 2 ;;
esac

# luaposix: Debian 12 has no Lua 5.4 build of lua-posix; Debian 13's has,
# and needs only libc6 >= 2.34, libcrypt1 and lua-bit32, which Debian 12
# has.  This one .deb is fetched from the archive's pool at a pinned
# version and checked against its sha256 (from Debian 13's Packages
# index); Debian 13 is never added to apt's sources.
LUAPOSIX_VERSION=36.3-1
LUAPOSIX_SHA256=e027253b50ce62131943ac8986c84cded327798d76685394b88c8856d3f0628e
LUAPOSIX_DEB=lua-posix_${LUAPOSIX_VERSION}_amd64.deb

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }
missing=""
for p in $PKGS; do installed "$p" || missing="$missing $p"; done
posix_ok=1
[ "$(dpkg-query -W -f='${Version}' lua-posix 2>/dev/null)" = "$LUAPOSIX_VERSION" ] || posix_ok=0
[ -z "$missing" ] && [ $posix_ok = 1 ] && exit 0

if [ "$(id -u)" != 0 ]; then
	[ -n "$missing" ] && echo "vmlua: missing Debian packages:$missing" >&2
	[ $posix_ok = 0 ] && echo "vmlua: missing lua-posix $LUAPOSIX_VERSION (Debian 13's, for Lua 5.4)" >&2
	echo "vmlua: run make as root once (it installs them with apt-get), or: sudo make deps" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if [ -n "$missing" ]; then
	echo "vmlua: installing missing packages:$missing"
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
if [ $posix_ok = 0 ]; then
	# The archive this machine's apt already uses.
	mirror=$(sed -n 's/^URIs: *\([^ ]*\/debian\)\/*$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
	[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $2 ~ /\/debian\/?$/ { sub(/\/$/, "", $2); print $2; exit }' \
		/etc/apt/sources.list 2>/dev/null)
	[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
	dir=/var/cache/vmlua
	mkdir -p "$dir"; chown _apt "$dir" 2>/dev/null || true
	echo "vmlua: installing lua-posix $LUAPOSIX_VERSION from $mirror (Debian 13's build, sha256-checked)"
	/usr/lib/apt/apt-helper download-file "$mirror/pool/main/l/lua-posix/$LUAPOSIX_DEB" \
		"$dir/$LUAPOSIX_DEB" "SHA256:$LUAPOSIX_SHA256" >/dev/null ||
		{ echo "vmlua: cannot download $LUAPOSIX_DEB from $mirror" >&2; exit 1; }
	apt-get install -y -qq --no-install-recommends "$dir/$LUAPOSIX_DEB" >/dev/null
fi
