-- The benchmark guests' initramfs: busybox and an /init that says it
-- has started (bench-init), mounts /proc, says it is up and ends the
-- machine at once, the same for every
-- contender.  UML and vmlua end it with poweroff; QEMU's microvm with
-- reboot (QEMU runs with -no-reboot, so a reset is its exit).
--
--   build/vmlua bench/guest-initramfs.lua BUSYBOX OUTDIR
local cpio = require "vmlua.cpio"

local busybox, out = arg[1], arg[2]
if not busybox or not out then
  io.stderr:write("usage: vmlua bench/guest-initramfs.lua BUSYBOX OUTDIR\n")
  os.exit(1)
end
for _, ending in ipairs{ "poweroff", "reboot" } do
  local path = ("%s/%s.cpio"):format(out, ending)
  assert(cpio.new():dir("bin"):dir("proc")
    :file_from("bin/busybox", busybox, 493)
    :file("init", "#!/bin/busybox sh\necho bench-init\n/bin/busybox mount -t proc proc /proc\n" ..
                  "/bin/busybox echo bench-guest-up\n/bin/busybox " .. ending .. " -f\n", 493)
    :write(path))
end
