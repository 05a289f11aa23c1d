-- Boots the default UML guest with a virtio console whose input is this
-- process's stdin, and runs a command in it; both consoles on stdout.
--
--   printf 'line\n' | build/vmlua spec/helpers/console_guest.lua COMMAND
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
local vmlua = require "vmlua"
local cpio = require "vmlua.cpio"
local virtio = require "vmlua.virtio"

local dev = assert(virtio.console{ input = "stdin", output = function(d) io.write("[hvc0] ", d) end })
local f = assert(io.open("build/guest/uml/initramfs.cpio", "rb"))
local base = f:read("a")
f:close()
local run = cpio.new():dir("etc"):dir("etc/vmlua"):file("etc/vmlua/run", arg[1] .. "\n", 493)
local initrd = os.tmpname()
f = assert(io.open(initrd, "wb"))
f:write(base, run:finish())
f:close()
local vm = assert(vmlua.vm{ backend = "uml", kernel = "build/guest-cache/uml/root/usr/bin/linux.uml",
  initrd = initrd, memory = "96M", cmdline = "quiet", console = "stdout", devices = { dev } })
vm:start()
print("console_guest: " .. tostring(vm:wait(60)))
vm:close()
os.remove(initrd)
