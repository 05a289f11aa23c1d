#!/bin/sh
# Install the Debian packages vmlua needs to build and test, and only
# those that are missing.  Run as root (CI is); otherwise say what to do.
set -e
# Extra packages (make bench: qemu-system-x86 hyperfine) come as arguments.
# flex, bison, bc and xz-utils build the UML virtio-rng module (make guest);
# tmux gives the REPL spec a real terminal; valgrind runs a boot under
# memcheck (spec/valgrind_spec.lua).  make test SANITIZE=1 adds clang.
PKGS="gcc make lua5.4 liblua5.4-dev libreadline-dev libslirp-dev libseccomp-dev lua-busted lz4 util-linux acpica-tools cpio
	flex bison bc xz-utils binutils e2fsprogs tmux valgrind $*"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "vmlua: missing Debian packages:$missing" >&2
	echo "vmlua: run as root, or: sudo apt-get install$missing" >&2
	exit 1
fi
echo "vmlua: installing missing packages:$missing"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
