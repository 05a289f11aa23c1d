-- The default UML guest (make guest), and its initramfs with a scenario
-- appended as /etc/vmlua/run (the kernel unpacks both archives in turn).
local env = require "helpers.env"
local cpio = require "vmlua.cpio"

-- The guest every uml path uses (vmlua.guest), or where make guest
-- would put it, for the specs' "not built" checks.
local guest = require("vmlua").guest("uml") or {}
local M = {
  KERNEL = guest.kernel or "build/guest/uml/linux.uml",
  INITRD = guest.initrd or "build/guest/uml/initramfs.cpio",
}

-- A temporary initramfs that runs `script`; the caller removes it.
function M.with_run(script)
  local f = assert(io.open(M.INITRD, "rb"))
  local base = f:read("a")
  f:close()
  local extra = cpio.new():dir("etc"):dir("etc/vmlua"):file("etc/vmlua/run", script, 493)
  local path = env.tmpname()
  f = assert(io.open(path, "wb"))
  f:write(base, extra:finish())
  f:close()
  return path
end

return M
