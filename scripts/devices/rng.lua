-- An entropy device whose bytes the script chooses: source(n) returns
-- the next n bytes the guest will read.
--
--   local rng = dofile "scripts/devices/rng.lua"
--   local dev = rng(function(n) return ("\4"):rep(n) end)
local virtio = require "vmlua.virtio"

return function(source)
  return virtio.device{
    id = virtio.ID.rng, queues = { 64 },
    notify = function(_, q)
      for chain in virtio.chains(q) do
        chain:write(source(chain.writable))
        q:push(chain)
      end
    end,
  }
end
