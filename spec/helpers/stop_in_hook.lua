-- Run by build/vmlua (uml_spec, valgrind_spec): a uml guest whose
-- machine is ended from inside one of its own hooks, then the garbage
-- collected twice (a finalized userdata is freed by the second cycle).
--   arg[1] "notify": vm:stop() in a Lua device's notify hook, which runs
--          inside the C loop's vhost-user server;
--          "output": vm:stop() in an output hook;
--          "close":  vm:close() in the notify hook.
-- Prints "wait: REASON: DETAIL" and "exits: N: REASON..." on stdout.
package.path = "lua/?.lua;lua/?/init.lua;spec/?.lua;" .. package.path
local vmlua = require "vmlua"
local virtio = require "vmlua.virtio"
local guest = require "helpers.initrd"

local mode = arg[1]
assert(mode == "notify" or mode == "output" or mode == "close", "mode: notify, output or close")
local initrd = guest.with_run("sleep 1; echo now-writing; echo to-the-host >/dev/hvc0; sleep 600\n")
local vm
local function finish()
  if mode == "close" then vm:close() else vm:stop() end
  collectgarbage()
  collectgarbage()
end
local dev = virtio.device{ id = "console", queues = { 64, 64 },
  notify = function(d, q)
    if mode ~= "output" and not rawequal(q, d:queue(0)) then finish() end
  end }
vm = assert(vmlua.vm{ backend = "uml", kernel = guest.KERNEL, initrd = initrd, memory = "128M",
  cmdline = "quiet", console = "none", devices = { dev } })
local exits = {}
vm:on("exit", function(_, r, d) exits[#exits + 1] = r .. ": " .. tostring(d) end)
if mode == "output" then
  vm:on("output", function(_, data)
    if data:find("now-writing", 1, true) then finish() end
  end)
end
assert(vm:start())
local reason, detail = vm:wait(60)
collectgarbage()
vm:close()
os.remove(initrd)
print(("wait: %s: %s"):format(reason, detail))
print(("exits: %d: %s"):format(#exits, table.concat(exits, " | ")))
