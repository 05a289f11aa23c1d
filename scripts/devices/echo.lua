-- An echo device: whatever the driver sends in a chain's readable
-- buffers comes back in its writable ones (as much as fits), upper-cased
-- if the driver set the config byte at offset 0 to 1.  An example of a
-- device with config space and negotiated ring features.
--
--   local dev = dofile "scripts/devices/echo.lua" ()
local virtio = require "vmlua.virtio"

return function()
  return virtio.device{
    id = virtio.ID.echo,
    queues = { 128 },
    features = { virtio.F.INDIRECT_DESC, virtio.F.EVENT_IDX },
    config = "\0",                      -- byte 0: 1 = shout
    notify = function(dev, q)
      local shout = dev:read_config(0, 1) == "\1"
      for chain in virtio.chains(q) do
        local data = chain:read(chain.writable)
        chain:write(shout and data:upper() or data)
        q:push(chain)
      end
    end,
  }
end
