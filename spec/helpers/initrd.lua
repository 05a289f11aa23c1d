-- The default UML guest (make guest), and its initramfs with a scenario
-- appended as /etc/vmlua/run (the kernel unpacks both archives in turn).
local cpio = require "vmlua.cpio"

local M = {
  KERNEL = "build/guest-cache/uml/root/usr/bin/linux.uml",
  INITRD = "build/guest/uml/initramfs.cpio",
}

-- A temporary initramfs that runs `script`; the caller removes it.
function M.with_run(script)
  local f = assert(io.open(M.INITRD, "rb"))
  local base = f:read("a")
  f:close()
  local extra = cpio.new():dir("etc"):dir("etc/vmlua"):file("etc/vmlua/run", script, 493)
  local path = os.tmpname()
  f = assert(io.open(path, "wb"))
  f:write(base, extra:finish())
  f:close()
  return path
end

return M
