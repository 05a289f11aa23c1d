--- build-nested.lua - build the L1 machine that proves the kvm backend
-- where the host has no vmx/svm (docs/kvm-nested.md).
--
--   vmlua scripts/build-nested.lua [--cache DIR] [--guest DIR] [--out DIR] [--with-qemu]
--
-- QEMU's TCG emulates AMD SVM with nested paging (-cpu max).  Debian's
-- cloud kernel, booted under it as "L1", loads kvm_amd and gets a real
-- /dev/kvm; vmlua's kvm backend then runs its guests ("L2") inside.  This
-- script packs L1's initramfs, OUT/l1.cpio, from what the host already
-- has or caches:
--
-- * the kvm modules (irqbypass, kvm, kvm-amd) from the cloud kernel's .deb,
--   the one scripts/fetch-kernel.sh downloaded into CACHE/debs;
-- * busybox (busybox-static, as make guest unpacked it);
-- * build/vmlua, the shared libraries ldd names for it, its Lua modules,
--   luaposix and argparse (the Lua 5.4 files of their Debian packages) and
--   scripts/boot.lua with the example devices;
-- * the L2 payloads: the selftest guest, the cloud kernel's vmlinuz, and
--   make guest's initramfs for it, GUEST/kvm/initramfs.cpio (busybox
--   with the cloud kernel's virtio modules appended); the last two as
--   L1's default kvm guest, with the shipped scenarios;
-- * /init, which loads kvm_amd and runs the steps (scripts/nested-init.sh);
-- * with --with-qemu (make bench), QEMU too, its libraries and the microvm
--   firmware, and an L2 initramfs whose /init powers off at once: the
--   bench step boots it with both, side by side.
--
-- The kernel L1 boots is GUEST/kvm/vmlinuz itself.  The unpacked .deb is
-- cached under OUT keyed by the .deb's name; the archive is repacked on
-- every run (a second or two), so it always holds the current build.
local cpio = require "vmlua.cpio"

local o = { cache = "build/guest-cache", guest = "build/guest", out = "build/nested" }
local here = (arg[0] or ""):match("^(.*)/[^/]*$") or "."
local top = here .. "/.."
local i = 1
while i <= #arg do
  local a = arg[i]
  if a == "--cache" or a == "--guest" or a == "--out" then i = i + 1; o[a:sub(3)] = arg[i]
  elseif a == "--with-qemu" then o.qemu = true
  elseif a == "-h" or a == "--help" then
    print("usage: vmlua scripts/build-nested.lua [--cache DIR] [--guest DIR] [--out DIR] [--with-qemu]")
    os.exit(0)
  else
    io.stderr:write("build-nested: unknown option '", a, "'\n"); os.exit(1)
  end
  i = i + 1
end

local function say(fmt, ...) io.write("nested: ", fmt:format(...), "\n"); io.flush() end
local function die(fmt, ...) io.stderr:write("build-nested: ", fmt:format(...), "\n"); os.exit(1) end
local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
local function sh(cmd) return os.execute(cmd) == true end
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

-- 1. The cloud kernel's .deb, unpacked once per package file.
local deb = lines("ls " .. q(o.cache .. "/debs") ..
  "/linux-image-*-cloud-amd64_*.deb 2>/dev/null | sort | tail -n 1")[1]
if not deb then die("no linux-image-*-cloud-amd64 .deb in %s/debs: run make kernel", o.cache) end
local vmlinuz = o.guest .. "/kvm/vmlinuz"
if not exists(vmlinuz) then die("%s missing: run make kernel", vmlinuz) end
local key = deb:match("([^/]+)%.deb$")
local root = o.out .. "/root-" .. key
if not exists(root .. "/.unpacked") then
  say("unpacking %s...", deb)
  sh("rm -rf " .. q(o.out) .. "/root-*")
  if not sh("mkdir -p " .. q(root) .. " && dpkg-deb -x " .. q(deb) .. " " .. q(root)) then
    die("cannot unpack %s", deb)
  end
  sh("touch " .. q(root .. "/.unpacked"))
end
local version = lines("ls " .. q(root .. "/lib/modules"))[1]
if not version then die("no modules in %s", deb) end
local moddir = root .. "/lib/modules/" .. version

-- Every module of that kernel by name ("virtio-rng" and "virtio_rng" alike),
-- and what each depends on (its .modinfo "depends=" string).
local modules = {}
for _, path in ipairs(lines("find " .. q(moddir) .. " -name '*.ko'")) do
  modules[path:match("([^/]+)%.ko$"):gsub("-", "_")] = path
end
local function depends(path)
  local d = read(path):match("%zdepends=([^%z]*)%z") or ""
  local t = {}
  for m in d:gmatch("[^,]+") do t[#t + 1] = m end
  return t
end
-- The modules named, after what they depend on, as paths.
local function load_order(names)
  local order, seen = {}, {}
  local function want(name)
    name = name:gsub("-", "_")
    if seen[name] then return end
    seen[name] = true
    local path = modules[name] or die("kernel %s has no module %s", version, name)
    for _, d in ipairs(depends(path)) do want(d) end
    order[#order + 1] = path
  end
  for _, n in ipairs(names) do want(n) end
  return order
end

local busybox = o.cache .. "/uml/root/bin/busybox"
if not exists(busybox) then die("%s missing: run make guest", busybox) end
local vmlua = top .. "/build/vmlua"
local selftest = o.guest .. "/selftest.elf"
for _, p in ipairs{ vmlua, selftest } do
  if not exists(p) then die("%s missing: run make", p) end
end

-- 2. L2's initramfs: make guest's for the kvm backend (its busybox
-- initramfs with the cloud kernel's virtio modules appended).
local l2_initrd_path = o.guest .. "/kvm/initramfs.cpio"
local l2_initrd = read(l2_initrd_path) or die("%s missing: run make guest", l2_initrd_path)

-- 3. L1's initramfs.
local a = cpio.new()
local dirs = {}
local function dir(path)
  local parent = path:match("^(.*)/[^/]+$")
  if parent then dir(parent) end
  if not dirs[path] then dirs[path] = true; a:dir(path) end
end
local function file(name, from, perm)
  name = name:gsub("^/", "")
  local parent = name:match("^(.*)/[^/]+$")
  if parent then dir(parent) end
  if not dirs["f:" .. name] then
    dirs["f:" .. name] = true
    local ok, err = a:file_from(name, from, perm)
    if not ok and err then die("cannot pack %s: %s", from, err) end
  end
end
for _, d in ipairs{ "bin", "dev", "proc", "sys", "tmp", "root", "etc" } do dir(d) end
file("bin/busybox", busybox, 493)

-- The kvm modules, where busybox's depmod and modprobe look.
for _, path in ipairs(load_order{ "kvm_amd" }) do
  file(path:sub(#root + 2), path)
end
for _, f in ipairs{ "modules.order", "modules.builtin", "modules.builtin.modinfo" } do
  if exists(moddir .. "/" .. f) then file("lib/modules/" .. version .. "/" .. f, moddir .. "/" .. f) end
end

-- vmlua as it sits in the checkout (build/vmlua finds lua/ beside it),
-- and every shared library the dynamic loader would load, at its path.
file("vmlua/build/vmlua", vmlua, 493)
local libs = {}
local function need_libs(elf)
  for _, l in ipairs(lines("ldd " .. q(elf) .. " 2>/dev/null")) do
    local p = l:match("=> (/%S+)") or l:match("^%s*(/%S+)")
    if p and not libs[p] then
      libs[p] = true
      file(p, p, 493)
      -- A library may be a symlink into the same directory, and the
      -- loader asks for the name ldd printed: the file itself is packed.
    end
  end
end
need_libs(vmlua)
for _, f in ipairs(lines("cd " .. q(top) ..
    " && ls lua/vmlua/*.lua scripts/boot.lua scripts/nested-exits.lua scripts/devices/*.lua")) do
  file("vmlua/" .. f, top .. "/" .. f)
end
-- luaposix and argparse for Lua 5.4: the files of their packages.
for _, f in ipairs(lines("dpkg -L lua-posix lua-argparse lua-bit32 2>/dev/null")) do
  if (f:match("/lua/5%.4/") or f:match("liblua5%.4%-")) and (f:match("%.lua$") or f:match("%.so[.%d]*$")) then
    local real = lines("readlink -f " .. q(f))[1]
    if real and exists(real) then
      file(f, real, 493)
      if f:match("%.so[.%d]*$") then need_libs(real) end
    end
  end
end

-- The payloads: the default kvm guest beside L1's vmlua, where
-- vmlua.guest("kvm") finds it (so `boot.lua --run` and `vmlua test` need
-- no --kernel), named also under /l2 for the steps; the shipped
-- scenarios and the nested run's own (scripts/nested-scenarios).
file("vmlua/build/guest/kvm/vmlinuz", vmlinuz)
a:file("vmlua/build/guest/kvm/initramfs.cpio", l2_initrd)
dir("l2")
a:symlink("l2/vmlinuz", "/vmlua/build/guest/kvm/vmlinuz")
a:symlink("l2/initrd.cpio", "/vmlua/build/guest/kvm/initramfs.cpio")
file("l2/selftest.elf", selftest)
for _, f in ipairs(lines("cd " .. q(top) .. " && ls scripts/scenarios/*.lua scripts/nested-scenarios/*.lua")) do
  file("vmlua/" .. f, top .. "/" .. f)
end
if o.qemu then
  local qemu = lines("command -v qemu-system-x86_64")[1] or die("--with-qemu: qemu-system-x86_64 not found")
  file("bin/qemu-system-x86_64", qemu, 493)
  need_libs(qemu)
  -- microvm's firmware (qboot) and the option ROMs, where QEMU looks.
  for _, f in ipairs{ "bios-microvm.bin", "qboot.rom", "linuxboot_dma.bin", "linuxboot.bin", "pvh.bin",
                      "kvmvapic.bin" } do
    local real = lines("readlink -f /usr/share/qemu/" .. f)[1]
    if real and exists(real) then file("usr/share/qemu/" .. f, real) end
  end
  local off = cpio.new()
  off:dir("etc"); off:dir("etc/vmlua")
  off:file("etc/vmlua/run", "true\n", 493)
  a:file("l2/initrd-off.cpio", l2_initrd .. off:finish())
end
local init = read(here .. "/nested-init.sh") or die("%s/nested-init.sh missing", here)
a:file("init", init, 493)
a:file("etc/nested-version", version .. "\n")

sh("mkdir -p " .. q(o.out))
local out = o.out .. "/l1.cpio"
local ok, err = a:write(out)
if not ok then die("cannot write %s: %s", out, err) end
local f = io.open(out, "rb"); local size = f:seek("end"); f:close()
say("ready: %s (%d MiB), L1 kernel %s (%s)", out, size >> 20, vmlinuz, version)
