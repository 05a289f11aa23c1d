--- build-guest.lua - build the default guest for the uml backend, and
-- the initramfs the kvm backend boots Debian's cloud kernel with.
--
--   vmlua scripts/build-guest.lua [--cache DIR] [--out DIR] [--kernel vmlua|debian] [--force]
--
-- OUT is a guest directory (default: the per-user cache,
-- ~/.cache/vmlua/guest), the kind vmlua.guest() looks in: the guest
-- goes to OUT/uml/linux.uml and OUT/uml/initramfs.cpio.  CACHE keeps the
-- downloaded packages and the kernel build (default
-- ~/.cache/vmlua/guest-cache).
-- Fetches Debian's user-mode-linux and busybox-static with apt-get
-- download into a cache (once; offline after that).  The kernel is
-- vmlua's own (--kernel vmlua, the default): built by
-- scripts/build-uml-kernel.sh from Debian's linux-source of linux.uml's
-- version with guest/uml/vmlua.config and guest/uml/patches, every
-- virtio driver built in; cached by the source package's version and the
-- hash of the fragment and the patches.  Where it cannot be built, or
-- with --kernel debian (make guest UML_KERNEL=debian, or
-- VMLUA_UML_KERNEL=debian), the guest runs Debian's linux.uml with its
-- virtio modules and a virtio-rng module built for it
-- (scripts/uml-virtio-rng.sh).  The initramfs holds busybox, those
-- modules if any, and an /init that runs /etc/vmlua/run if a scenario
-- put one there, or gives a shell on the console.  OUT/kvm/initramfs.cpio
-- is the same with the cloud kernel's virtio modules appended (when make
-- kernel has fetched that kernel).  Prints a line for each step.
local cpio = require "vmlua.cpio"
local paths = require "vmlua.paths"

local user_cache = paths.cache_dir() or "."
local o = { cache = user_cache .. "/guest-cache", out = user_cache .. "/guest",
            kernel = os.getenv("VMLUA_UML_KERNEL") or "vmlua" }
-- The helper scripts sit beside this one, in the checkout or installed.
local here = (arg[0] or ""):match("^(.*)/[^/]*$") or "."
local i = 1
while i <= #arg do
  local a = arg[i]
  if a == "--force" then o.force = true
  elseif a == "--cache" or a == "--out" or a == "--kernel" then i = i + 1; o[a:sub(3)] = arg[i]
  elseif a == "-h" or a == "--help" then
    print("usage: vmlua scripts/build-guest.lua [--cache DIR] [--out DIR] [--kernel vmlua|debian] [--force]")
    os.exit(0)
  else
    io.stderr:write("build-guest: unknown option '", a, "'\n"); os.exit(1)
  end
  i = i + 1
end
if o.kernel ~= "vmlua" and o.kernel ~= "debian" then
  io.stderr:write("build-guest: --kernel (or VMLUA_UML_KERNEL) must be 'vmlua' or 'debian', not '",
                  tostring(o.kernel), "'\n")
  os.exit(1)
end

local function say(fmt, ...) io.write("guest: ", fmt:format(...), "\n"); io.flush() end
local function die(fmt, ...) io.stderr:write("guest: ", fmt:format(...), "\n"); os.exit(1) end
local function sh(cmd)
  local ok = os.execute(cmd)
  return ok == true
end
local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
local function exists(p) local f = io.open(p, "rb"); if f then f:close() return true end return false end
local function read(p) local f = io.open(p, "rb"); if not f then return nil end
  local s = f:read("a"); f:close(); return s end
local function lines(cmd)
  local p = io.popen(cmd)
  local t = {}
  for l in p:lines() do t[#t + 1] = l end
  p:close()
  return t
end

local debs, root = o.cache .. "/debs", o.cache .. "/uml/root"
local outdir = o.out .. "/uml"
local initrd = outdir .. "/initramfs.cpio"
sh("mkdir -p " .. q(debs) .. " " .. q(outdir))

-- 1. The packages, downloaded once.
for _, pkg in ipairs{ "user-mode-linux", "busybox-static" } do
  if #lines("ls " .. q(debs) .. "/" .. pkg .. "_*.deb 2>/dev/null") == 0 then
    say("downloading %s (apt-get download)...", pkg)
    if not sh("cd " .. q(debs) .. " && apt-get download -q " .. pkg .. " >/dev/null 2>&1") then
      die("cannot download %s: run apt-get update (as root), or check the network", pkg)
    end
  else
    say("%s: cached", pkg)
  end
end

-- 2. Unpacked, once.
if o.force or not exists(root .. "/.unpacked") then
  say("unpacking into %s...", root)
  sh("rm -rf " .. q(root) .. " && mkdir -p " .. q(root))
  for _, deb in ipairs(lines("ls " .. q(debs) .. "/*.deb")) do
    if not sh("dpkg-deb -x " .. q(deb) .. " " .. q(root)) then die("cannot unpack %s", deb) end
  end
  sh("touch " .. q(root .. "/.unpacked"))
end
local debian_kernel = root .. "/usr/bin/linux.uml"
local busybox = root .. "/bin/busybox"
if not exists(debian_kernel) then die("%s missing after unpacking", debian_kernel) end
if not exists(busybox) then die("%s missing after unpacking", busybox) end
-- Debian's linux.uml's version (its modules' directory): vmlua's kernel
-- is built from linux-source of the same version.
local version = lines("ls " .. q(root .. "/usr/lib/uml/modules"))[1]
if not version then die("no modules in %s/usr/lib/uml/modules", root) end
local moddir = root .. "/usr/lib/uml/modules/" .. version

-- Where vmlua's kernel config and patches are: the checkout's guest/uml,
-- or the installed share directory's uml/.
local function kernel_sources()
  for _, d in ipairs{ here .. "/../guest/uml", here .. "/uml" } do
    if exists(d .. "/vmlua.config") then return d end
  end
end

-- 2a. vmlua's own kernel: Debian's linux-source of linux.uml's version,
-- tinyconfig + guest/uml/vmlua.config, guest/uml/patches applied.  Built
-- once per (source package version, hash of fragment and patches) and
-- cached; returns its path and a name for it, or nil and why not.
local function own_kernel()
  local src = kernel_sources()
  if not src then return nil, "guest/uml/vmlua.config not found beside " .. here end
  local series = version:match("^(%d+%.%d+)")
  local pkg = "linux-source-" .. series
  local deb = lines("ls " .. q(debs) .. "/" .. pkg .. "_" .. version .. "-*_all.deb 2>/dev/null")[1]
  if not deb then
    local debver = lines("apt-cache madison " .. pkg .. " 2>/dev/null | awk -v v=" .. q(version) ..
                         " '$3 ~ \"^\" v \"-\" { print $3; exit }'")[1]
    if not debver then return nil, ("no %s %s-* in the apt archive (apt-get update?)"):format(pkg, version) end
    say("downloading %s=%s (apt-get download, once)...", pkg, debver)
    if not sh("cd " .. q(debs) .. " && apt-get download -q " .. q(pkg .. "=" .. debver) .. " >/dev/null 2>&1") then
      return nil, ("cannot download %s=%s (offline?)"):format(pkg, debver)
    end
    deb = lines("ls " .. q(debs) .. "/" .. pkg .. "_" .. version .. "-*_all.deb 2>/dev/null")[1]
    if not deb then return nil, "apt-get download left no " .. pkg .. " in " .. debs end
  end
  local debver = deb:match("_([^_]+)_all%.deb$")
  local hash = lines("cat " .. q(src .. "/vmlua.config") .. " " .. q(src) .. "/patches/*.patch 2>/dev/null" ..
                     " | sha256sum | cut -c1-12")[1]
  local name = ("linux-vmlua-%s-%s"):format(debver, hash)
  local built = o.cache .. "/uml/" .. name
  if exists(built) then say("vmlua's kernel: cached (%s)", name) return built, name end
  local failed = built .. ".failed"
  if exists(failed) and not o.force then
    return nil, read(failed):gsub("%s+$", "") .. "; it failed before, make guest FORCE=1 (--force) retries"
  end
  say("building vmlua's kernel from %s %s (guest/uml/vmlua.config, %d patch(es))...", pkg, debver,
      #lines("ls " .. q(src) .. "/patches/*.patch 2>/dev/null"))
  local errf = assert(paths.tmpname("kernel-build"))
  local t0 = os.time()
  local ok = sh(("sh %s/build-uml-kernel.sh %s %s %s %s %s 2>%s"):format(q(here), q(deb),
    q(src .. "/vmlua.config"), q(src .. "/patches"), q(o.cache .. "/uml/kbuild"), q(built), q(errf)))
  local why = (read(errf) or ""):match("([^\n]*)\n?$")
  os.remove(errf)
  if not ok then
    why = (why ~= "" and why) or "build-uml-kernel.sh failed"
    local f = io.open(failed, "wb"); if f then f:write(why, "\n"); f:close() end
    return nil, why
  end
  os.remove(failed)
  say("vmlua's kernel built in %d s: %s", os.time() - t0, name)
  return built, name
end

local kernel_src, kernel_name, why_not
if o.kernel == "vmlua" then
  kernel_src, kernel_name = own_kernel()
  if not kernel_src then
    why_not = kernel_name
    say("cannot build vmlua's kernel: %s; the guest runs Debian's linux.uml instead", why_not)
  end
end
local ours = kernel_src ~= nil
if not ours then kernel_src, kernel_name = debian_kernel, "debian-" .. version end

-- The guest's kernel sits beside its initramfs, where vmlua.guest() finds it.
if not sh("cmp -s " .. q(kernel_src) .. " " .. q(outdir .. "/linux.uml") .. " || cp " .. q(kernel_src) .. " " ..
          q(outdir .. "/linux.uml")) then
  die("cannot copy %s into %s", kernel_src, outdir)
end
local kernel = outdir .. "/linux.uml"

-- 2b. Debian's linux.uml lacks a virtio-rng driver: build that one module
-- from Debian's linux-source of the same version (once, then cached).
-- vmlua's kernel has it built in.
local rng_ko = o.cache .. "/uml/virtio-rng-" .. version .. ".ko"
if not ours and not exists(rng_ko) then
  say("building virtio-rng.ko for linux.uml %s from Debian's linux-source (once)...", version)
  local errf = assert(paths.tmpname("rng-build"))
  if not sh(("sh %s/uml-virtio-rng.sh %s %s %s %s 2>%s"):format(q(here), q(root), q(version),
      q(o.cache .. "/uml/rng-build"), q(rng_ko), q(errf))) then
    local f = io.open(errf); local why = f and f:read("l") or "unknown reason"; if f then f:close() end
    say("virtio-rng.ko not built (%s); the guest will have no rng driver", why)
  end
  os.remove(errf)
end

-- The guest's /init.  A copy beside the initramfs tells a later run
-- whether the initramfs was packed with this very /init.
local INIT = [[
#!/bin/busybox sh
# vmlua's default guest.  Runs /etc/vmlua/run when a scenario supplied
# one (with /etc/vmlua/stdio-on-hvc: boot.lua --run, output on hvc0 and
# hvc1) and powers off with its status; otherwise a shell on the console.
/bin/busybox --install -s /bin
export PATH=/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t tmpfs tmp /tmp
hostname vmlua
# Debian's linux.uml needs its virtio modules; vmlua's own kernel has
# them built in, and its initramfs lists none.
for m in $(cat /etc/vmlua/modules 2>/dev/null); do
	insmod /lib/modules/$(uname -r)/$m 2>/dev/null
done
# Disks with a label (vmlua.virtio.blk{ label = NAME }: serial "L=NAME").
mkdir -p /dev/disk/by-label-vmlua
for s in /sys/block/*/serial; do
	l=$(cat "$s" 2>/dev/null)
	case $l in L=?*) d=${s%/serial}; ln -sf "../../${d##*/}" "/dev/disk/by-label-vmlua/${l#L=}" ;; esac
done
# Shares (vmlua.share{}): /etc/vmlua/shares/N/{host,mount,tag,ro,cow},
# the root share (mount /) first.  hostfs takes the host path as its
# mount data; a copy-on-write share is an overlay over it, its upper
# layer a tmpfs or a labelled disk (made ext2 on first use).
root=
for s in /etc/vmlua/shares/*; do
	[ -d "$s" ] || continue
	host=$(cat "$s/host"); at=$(cat "$s/mount"); tag=$(cat "$s/tag")
	ro=$(cat "$s/ro"); cow=$(cat "$s/cow")
	if [ "$at" = / ]; then root=/vmlua/root; dest=$root; else dest=$root$at; fi
	mkdir -p "$dest"
	if [ -n "$cow" ]; then
		w=/vmlua/cow/$tag
		mkdir -p "$w/lower" "$w/rw"
		if [ "$cow" = tmpfs ]; then
			mount -t tmpfs "vmlua-$tag-rw" "$w/rw"
		else
			disk=/dev/disk/by-label-vmlua/$cow
			mount -t ext4 "$disk" "$w/rw" 2>/dev/null || { mke2fs -q "$disk" && mount -t ext4 "$disk" "$w/rw"; }
		fi
		mkdir -p "$w/rw/upper" "$w/rw/work"
		mount -t hostfs -o "ro,$host" "vmlua-$tag" "$w/lower" &&
		mount -t overlay -o "lowerdir=$w/lower,upperdir=$w/rw/upper,workdir=$w/rw/work" "vmlua-$tag" "$dest"
	else
		mount -t hostfs -o "${ro:+ro,}$host" "vmlua-$tag" "$dest"
	fi || echo "vmlua: share $tag: cannot mount $host on $at"
	if [ "$dest" = "$root" ] && [ -n "$root" ]; then
		for d in proc sys dev tmp; do mkdir -p "$root/$d"; done
		mount -t proc proc "$root/proc"
		mount -t sysfs sys "$root/sys"
		mount -t devtmpfs dev "$root/dev"
		mount -t tmpfs tmp "$root/tmp"
		# The caller's directory, if a fresh mount hid it (under /tmp):
		# the host's, read-only.
		cwd=$(cat /etc/vmlua/cwd 2>/dev/null)
		if [ -n "$cwd" ] && [ ! -d "$root$cwd" ] && [ -d "$w/lower$cwd" ]; then
			mkdir -p "$root$cwd" && mount --bind "$w/lower$cwd" "$root$cwd"
		fi
	fi
done
# The command: in the root share, if any, as root, in /etc/vmlua/cwd,
# with the variables /etc/vmlua/env sets (boot.lua --hostroot: the
# caller's PATH, HOME and locale).
runcmd() {
	if [ -z "$root" ]; then sh /etc/vmlua/run; return; fi
	export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
	[ -f /etc/vmlua/env ] && . /etc/vmlua/env
	chroot "$root" /bin/sh -c \
		'cd "$1" 2>/dev/null || { echo "vmlua: no $1 in the guest, running in /" >&2; cd /; }; eval "$2"' \
		sh "$(cat /etc/vmlua/cwd 2>/dev/null || echo /)" "$(cat /etc/vmlua/run)"
}
if [ -f /etc/vmlua/run ] && [ -f /etc/vmlua/stdio-on-hvc ]; then
	# boot.lua --run: the command's stdout is hvc0 and its stderr hvc1,
	# both raw (the bytes as written, no CR added); its status goes to
	# the console, which the host keeps to itself.  Each port stays open
	# here, so its settings hold, until poweroff.
	i=0
	until exec 3<>/dev/hvc0 4<>/dev/hvc1 || [ $i -ge 50 ]; do sleep 0.1; i=$((i + 1)); done 2>/dev/null
	stty raw -echo <&3
	stty raw -echo <&4
	echo "vmlua: running /etc/vmlua/run, stdout on hvc0, stderr on hvc1"
	runcmd </dev/null >&3 2>&4 3>&- 4>&-
	echo "vmlua: exit status $?"
	sync
	poweroff -f
fi
if [ -f /etc/vmlua/run ]; then
	runcmd
	echo "vmlua: exit status $?"
	sync
	poweroff -f
fi
echo "vmlua: guest ready, a shell on the console (exit to power off)"
if [ -n "$root" ]; then setsid cttyhack chroot "$root" /bin/sh -l; else setsid cttyhack sh; fi
sync
poweroff -f
]]
-- What the initramfs carries for its kernel, in /etc/vmlua/kernel and in
-- a second stamp beside it: a new kernel repacks it.
local KERNEL = ours and ("vmlua's own kernel, virtio drivers built in: " .. kernel_name .. "\n")
  or ("Debian's linux.uml " .. version .. ", virtio modules" .. (exists(rng_ko) and " and virtio-rng.ko" or "") .. "\n")
-- The kvm guest's initramfs, OUT/kvm/initramfs.cpio: the one above with
-- a second archive appended that holds the virtio modules of Debian's
-- cloud kernel (make kernel fetched its .deb into CACHE/debs) and the list
-- /init loads them from.  That kernel has virtio only as modules, so
-- without them `vmlua boot --backend kvm --run` would wait for an hvc0
-- that never comes.  Unpacked once per .deb; repacked each time (a
-- second), written only when it changed.
local function kvm_initrd()
  local deb = lines("ls " .. q(debs) .. "/linux-image-*-cloud-amd64_*.deb 2>/dev/null | sort | tail -n 1")[1]
  if not deb then
    say("no cloud kernel .deb in %s: no kvm initramfs (make kernel fetches it)", debs)
    return
  end
  local key = deb:match("([^/]+)%.deb$")
  local kroot = o.cache .. "/kvm/modules-" .. key
  if o.force or not exists(kroot .. "/.unpacked") then
    say("unpacking the modules of %s...", key)
    sh("rm -rf " .. q(o.cache) .. "/kvm/modules-*")
    if not sh("mkdir -p " .. q(kroot) .. " && dpkg-deb --fsys-tarfile " .. q(deb) ..
              " | tar -x -C " .. q(kroot) .. " --wildcards './lib/modules/*'") then
      die("cannot unpack %s", deb)
    end
    sh("touch " .. q(kroot .. "/.unpacked"))
  end
  local kversion = lines("ls " .. q(kroot .. "/lib/modules"))[1] or die("no modules in %s", deb)
  local kmods = kroot .. "/lib/modules/" .. kversion
  -- Every module by name ("virtio-rng" and "virtio_rng" alike); each
  -- one's dependencies are its .modinfo "depends=" (the .deb has no
  -- modules.dep).
  local path_of = {}
  for _, p in ipairs(lines("find " .. q(kmods) .. " -name '*.ko'")) do
    path_of[p:match("([^/]+)%.ko$"):gsub("-", "_")] = p
  end
  local order, seen = {}, {}
  local function want(name)
    name = name:gsub("-", "_")
    if seen[name] then return end
    seen[name] = true
    local p = path_of[name] or die("kernel %s has no module %s", kversion, name)
    for d in ((read(p) or ""):match("%zdepends=([^%z]*)%z") or ""):gmatch("[^,]+") do want(d) end
    order[#order + 1] = p
  end
  for _, n in ipairs{ "virtio_mmio", "virtio_console", "virtio_blk", "virtio_net", "virtio_rng" } do want(n) end
  local m = cpio.new()
  for _, d in ipairs{ "lib", "lib/modules", "lib/modules/" .. kversion, "etc", "etc/vmlua" } do m:dir(d) end
  local names = {}
  for _, p in ipairs(order) do
    names[#names + 1] = p:match("([^/]+)$")
    m:file_from("lib/modules/" .. kversion .. "/" .. names[#names], p)
  end
  m:file("etc/vmlua/modules", table.concat(names, "\n") .. "\n")
  local text = (read(initrd) or die("cannot read %s", initrd)) .. m:finish()
  local out = o.out .. "/kvm/initramfs.cpio"
  if read(out) == text then
    say("kvm: ready (cached): %s, %d modules for %s", out, #names, kversion)
    return
  end
  sh("mkdir -p " .. q(o.out .. "/kvm"))
  local f = io.open(out, "wb")
  if not (f and f:write(text) and f:close()) then die("cannot write %s", out) end
  say("kvm: ready: %s (%d KiB), %d modules for %s", out, #text // 1024, #names, kversion)
end

local stamp, kstamp = initrd .. ".init", initrd .. ".kernel"
if not o.force and exists(initrd) and read(stamp) == INIT and read(kstamp) == KERNEL then
  say("ready (cached): %s, kernel %s (%s)", initrd, kernel, kernel_name)
  kvm_initrd()
  return
end

-- 3. The virtio drivers and what they need, in load order (modules.dep
-- lists each module's dependencies; load those first).
local dep = {}
for _, l in ipairs(lines("cat " .. q(moddir .. "/modules.dep"))) do
  local m, d = l:match("^([^:]+):%s*(.*)$")
  if m then
    local t = {}
    for x in d:gmatch("%S+") do t[#t + 1] = x end
    dep[m] = t
  end
end
local order, seen = {}, {}
local function want(m)
  if seen[m] then return end
  seen[m] = true
  for _, d in ipairs(dep[m] or {}) do want(d) end
  order[#order + 1] = m
end
local wanted = {}
for m in pairs(dep) do
  if m:match("/virtio_blk%.ko$") or m:match("/virtio_net%.ko$") or m:match("/virtio_console%.ko$") then
    wanted[#wanted + 1] = m
  end
end
table.sort(wanted)
if not ours then
  for _, m in ipairs(wanted) do want(m) end
end
local rng = not ours and exists(rng_ko)

local a = cpio.new()
for _, d in ipairs{ "bin", "dev", "etc", "etc/vmlua", "proc", "sys", "tmp", "root" } do a:dir(d) end
a:file_from("bin/busybox", busybox, 493)
if ours then
  say("packing %s (busybox and /init; the kernel has its drivers built in)...", initrd)
else
  say("packing %s (busybox, %d modules for %s)...", initrd, #order + (rng and 1 or 0), version)
  for _, d in ipairs{ "lib", "lib/modules", "lib/modules/" .. version } do a:dir(d) end
  for _, m in ipairs(order) do
    local name = m:match("([^/]+)$")
    a:file_from("lib/modules/" .. version .. "/" .. name, moddir .. "/" .. m)
    order[_] = name
  end
  if rng then
    a:file_from("lib/modules/" .. version .. "/virtio-rng.ko", rng_ko)
    order[#order + 1] = "virtio-rng.ko"
  end
  a:file("etc/vmlua/modules", table.concat(order, "\n") .. "\n")
end
a:file("etc/vmlua/kernel", KERNEL)
a:file("init", INIT, 493)
local ok, err = a:write(initrd)
if not ok then die("cannot write %s: %s", initrd, err) end
for p, text in pairs{ [stamp] = INIT, [kstamp] = KERNEL } do
  local sf = io.open(p, "wb")
  if not (sf and sf:write(text) and sf:close()) then die("cannot write %s", p) end
end
local f = io.open(initrd, "rb"); local size = f:seek("end"); f:close()
say("ready: %s (%d KiB), kernel %s (%s)", initrd, size // 1024, kernel, kernel_name)
kvm_initrd()
