-- The block benchmark's guests: the same script in each, which writes and
-- then reads MB MiB of the disk named by benchdev= on the kernel command
-- line with direct I/O, and prints the seconds each took.
--
--   build/vmlua bench/blk-initramfs.lua UML_INITRD BUSYBOX KMODDIR OUTDIR
--
-- OUTDIR/uml.cpio: the default UML guest plus the script (vmlua and ubd).
-- OUTDIR/qemu.cpio: busybox, Debian's cloud-kernel virtio modules from
-- KMODDIR, the same script, and reboot (QEMU runs with -no-reboot).
local cpio = require "vmlua.cpio"

local uml_initrd, busybox, kmods, out = arg[1], arg[2], arg[3], arg[4]
if not out then
  io.stderr:write("usage: vmlua bench/blk-initramfs.lua UML_INITRD BUSYBOX KMODDIR OUTDIR\n")
  os.exit(1)
end

local script = [[
dev=$(sed -n 's/.*benchdev=\([^ ]*\).*/\1/p' /proc/cmdline)
mb=$(sed -n 's/.*benchmb=\([0-9]*\).*/\1/p' /proc/cmdline)
now() { cut -d' ' -f1 /proc/uptime; }
t0=$(now)
dd if=/dev/zero of=$dev bs=1M count=$mb oflag=direct conv=fsync 2>/dev/null || echo bench-blk-failed write
t1=$(now)
dd if=$dev of=/dev/null bs=1M count=$mb iflag=direct 2>/dev/null || echo bench-blk-failed read
t2=$(now)
echo "bench-blk mb=$mb write=$t0,$t1 read=$t1,$t2"
]]

local f = assert(io.open(uml_initrd, "rb"))
local base = f:read("a")
f:close()
local run = cpio.new():dir("etc"):dir("etc/vmlua"):file("etc/vmlua/run", script, 493)
f = assert(io.open(out .. "/uml.cpio", "wb"))
f:write(base, run:finish())
f:close()

local mods = { "virtio_ring.ko", "virtio.ko", "virtio_mmio.ko", "virtio_blk.ko" }
local a = cpio.new():dir("bin"):dir("proc"):dir("sys"):dir("dev"):dir("lib")
  :file_from("bin/busybox", busybox, 493)
for _, m in ipairs(mods) do a:file_from("lib/" .. m, kmods .. "/" .. m) end
a:file("bench", script, 493)
a:file("init", "#!/bin/busybox sh\n/bin/busybox --install -s /bin\nexport PATH=/bin\n" ..
  "mount -t proc proc /proc\nmount -t sysfs sys /sys\nmount -t devtmpfs dev /dev\n" ..
  "for m in " .. table.concat(mods, " ") .. "; do insmod /lib/$m; done\n" ..
  "sh /bench\nreboot -f\n", 493)
assert(a:write(out .. "/qemu.cpio"))
