-- A device written in Lua, used by the guest: a console whose answers a
-- script makes up (scripts/devices/ has more).
local virtio = require "vmlua.virtio"

scenario "a Lua-written device answers the guest" {
  devices = function(_, s)
    s.heard = {}
    return { virtio.device{
      id = virtio.ID.console, queues = { 64, 64 },
      notify = function(dev, q)
        if q ~= dev:queue(1) then return end        -- the guest writes on queue 1
        for chain in virtio.chains(q) do
          s.heard[#s.heard + 1] = chain:read()
          q:push(chain)
        end
      end,
    } }
  end,
  function(vm, s)
    local out, status = vm.console:run("echo hello-lua-device > /dev/hvc0")
    assert(status == 0, out)
    assert(table.concat(s.heard):find("hello-lua-device", 1, true), "the device heard nothing")
  end,
}
