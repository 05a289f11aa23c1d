--- nested-exits.lua - what one virtio request costs Debian's cloud kernel
-- on the kvm backend, in exits to vmlua (KVM_RUN returning).  Run inside
-- the nested L1 by its exits step (scripts/nested-init.sh); make bench's
-- bench/nested.lua makes rows of its lines.
--
--   vmlua scripts/nested-exits.lua [N]       (default 1000)
--
-- One boot of the default kvm guest with a virtio disk and the C rng.  In
-- the guest's shell it runs each request loop twice, once with N requests
-- and once with none, and takes the difference of vmlua's exit counters
-- (vm:stats(), by reason) over the difference of the requests the device
-- served (the queue's pushes): the shell, the console and the timer cost
-- the same both times and cancel out.
--   blk: dd of N 4 KiB reads with O_DIRECT, one request each;
--   rng: reads of /dev/hwrng, however many requests the driver makes.
-- Prints one line per device:
--   exits: DEV REQUESTS total T mmio M io I hlt H (per request)
local vmlua = require "vmlua"
local virtio = require "vmlua.virtio"

local N = math.max(tonumber(arg and arg[1]) or 1000, 1)
local g = assert(vmlua.guest("kvm"))
local image = os.tmpname()
assert(os.execute("truncate -s 16M " .. image))
local disk = assert(virtio.blk{ path = image })
local rng = virtio.rng()
local vm = assert(vmlua.vm{ backend = "kvm", kernel = g.kernel, initrd = g.initrd, cmdline = g.cmdline,
  memory = "256M", cpus = 1, console = "none", devices = { disk, rng } })
vm:start()
vm.console:expect(g.ready, 300, true)
-- The C rng is the guest's only one, but say so.
assert(select(2, vm.console:run("echo virtio_rng.0 > /sys/class/misc/hw_random/rng_current")) == 0)

local REASONS = { "mmio", "io", "hlt" }
local function counts(dev)
  local e = vm:stats().exits
  local t = { total = 0, requests = dev:queue(0):stats().pushes }
  for k, n in pairs(e) do t.total = t.total + n; t[k] = n end
  return t
end
-- The counters' change over one command in the guest's shell.
local function over(dev, cmd)
  local before = counts(dev)
  local out, status = vm.console:run(cmd, 600)
  assert(status == 0, ("%s failed (%d): %s"):format(cmd, status, out))
  local after = counts(dev)
  local d = {}
  for k, v in pairs(after) do d[k] = v - (before[k] or 0) end
  return d
end

local loops = {
  blk = { dev = disk, cmd = "dd if=/dev/vda of=/dev/null bs=4096 count=%d iflag=direct 2>/dev/null" },
  rng = { dev = rng, cmd = "head -c %d /dev/hwrng >/dev/null", scale = 32 },
}
for _, name in ipairs{ "blk", "rng" } do
  local l = loops[name]
  over(l.dev, l.cmd:format(N * (l.scale or 1)))         -- warm: page cache, buffers
  local none = over(l.dev, l.cmd:format(0))
  local some = over(l.dev, l.cmd:format(N * (l.scale or 1)))
  local requests = some.requests - none.requests
  assert(requests > 0, name .. ": the device served no requests")
  local per = {}
  for _, k in ipairs{ "total", table.unpack(REASONS) } do
    per[#per + 1] = ("%s %.3f"):format(k, ((some[k] or 0) - (none[k] or 0)) / requests)
  end
  print(("exits: %s %d %s"):format(name, requests, table.concat(per, " ")))
  io.stdout:flush()
end
vm.console:send("poweroff -f\n")
vm:wait(60)
vm:close()
os.remove(image)
