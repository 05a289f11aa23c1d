-- Boots the default UML guest with one vmlua disk and runs a command in
-- it, the console on stdout; a separate process, so that a spec can kill
-- it with SIGKILL at a moment the guest chooses.
--
--   build/vmlua spec/helpers/disk_guest.lua IMAGE COW|- COMMAND
--
-- COW is a named overlay file, or - for the raw image.
package.path = "lua/?.lua;lua/?/init.lua;spec/?.lua;" .. package.path
local vmlua = require "vmlua"
local virtio = require "vmlua.virtio"
local guest = require "helpers.initrd"

local image, cow, command = arg[1], arg[2], arg[3]
local disk = assert(virtio.blk{ path = image, cow = cow ~= "-" and cow or nil })
local initrd = guest.with_run(command .. "\n")
print("disk_guest: initrd " .. initrd)
io.stdout:flush()
local vm = assert(vmlua.vm{ backend = "uml", kernel = guest.KERNEL, initrd = initrd,
  memory = "128M", cmdline = "quiet", console = "stdout", devices = { disk } })
vm:start()
local reason = vm:wait(120)
vm:close()
os.remove(initrd)
print("disk_guest: " .. tostring(reason))
