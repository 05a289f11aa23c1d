-- Boots the default UML guest with a virtio console whose input is this
-- process's stdin, and runs a command in it; both consoles on stdout.
--
--   printf 'line\n' | build/vmlua spec/helpers/console_guest.lua COMMAND
package.path = "lua/?.lua;lua/?/init.lua;spec/?.lua;" .. package.path
local vmlua = require "vmlua"
local virtio = require "vmlua.virtio"
local guest = require "helpers.initrd"

local dev = assert(virtio.console{ input = "stdin", output = function(d) io.write("[hvc0] ", d) end })
local initrd = guest.with_run(arg[1] .. "\n")
local vm = assert(vmlua.vm{ backend = "uml", kernel = guest.KERNEL, initrd = initrd,
  memory = "96M", cmdline = "quiet", console = "stdout", devices = { dev } })
vm:start()
print("console_guest: " .. tostring(vm:wait(60)))
vm:close()
os.remove(initrd)
