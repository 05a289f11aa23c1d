-- On the kvm backend: what one virtio request costs the selftest guest,
-- in VM exits and in time.  The guest (build/guest/selftest.elf) sends
-- selftest.vreq=N more 16-byte rng requests after its usual round trip -
-- notify, wait for the used ring, read and acknowledge the interrupt
-- status - printing nothing meanwhile; the cost of one request is the
-- difference between runs with N and with 0, divided by N.  Against the
-- C rng and the Lua rng (scripts/devices/rng.lua), medians of 5 runs.
--
--   build/vmlua bench/kvm_virtio.lua [N]
local vmlua = require "vmlua"
local virtio = require "vmlua.virtio"
local bench = require "bench.lib"
local core = vmlua.core

local N = tonumber(arg and arg[1]) or 2000
local RUNS = 5
local KERNEL = "build/guest/selftest.elf"

local kvm, why = vmlua.backends.kvm.supported()
if not kvm then
  print("kvm_virtio: skipped: " .. why)
  return
end

local urandom = assert(io.open("/dev/urandom", "rb"))
local make = {
  C = function() return virtio.rng() end,
  Lua = function() return dofile("scripts/devices/rng.lua")(function(n) return urandom:read(n) end) end,
}

-- One boot: wall time from start to poweroff, and exits by reason.
local function boot(kind, more)
  local vm = assert(vmlua.vm{ backend = "kvm", kernel = KERNEL, memory = "256M", cpus = 1,
    cmdline = "selftest.cpus=1 selftest.mem=268435456 selftest.vreq=" .. more,
    console = "none", devices = { make[kind]() } })
  local t0 = core.monotonic()
  vm:start()
  local reason = vm:wait(300)
  local t = core.monotonic() - t0
  local exits, out = vm:stats().exits, vm:output()
  vm:close()
  if reason ~= "poweroff" or not out:find("selftest: PASS", 1, true)
     or (more > 0 and not out:find(("%d more requests"):format(more), 1, true)) then
    error(("kvm_virtio: the %s run with %d requests failed (%s):\n%s"):format(kind, more, reason, out))
  end
  local total = 0
  for _, n in pairs(exits) do total = total + n end
  return t, exits.mmio, exits.io, total
end

local function cost(kind)
  local series = { [0] = { t = {}, mmio = {}, io = {}, total = {} }, [N] = { t = {}, mmio = {}, io = {}, total = {} } }
  for _ = 1, RUNS do
    for _, more in ipairs{ 0, N } do
      local s = series[more]
      local t, mmio, io, total = boot(kind, more)
      s.t[#s.t + 1], s.mmio[#s.mmio + 1], s.io[#s.io + 1], s.total[#s.total + 1] = t, mmio, io, total
    end
  end
  local per = {}
  for _, k in ipairs{ "t", "mmio", "io", "total" } do
    per[k] = (bench.median(series[N][k]) - bench.median(series[0][k])) / N
  end
  return per
end

local c, l = cost("C"), cost("Lua")
urandom:close()
local result = { bench = "kvm_virtio", runs = RUNS, per_run = N,
  title = "kvm, selftest guest: one 16-byte rng request",
  rows = {
    { what = "exits per request, C rng", value = c.total, unit = "exits" },
    { what = "mmio exits per request, C rng", value = c.mmio, unit = "exits" },
    { what = "time per request, C rng", value = c.t * 1e6, unit = "us" },
    { what = "exits per request, Lua rng", value = l.total, unit = "exits" },
    { what = "time per request, Lua rng", value = l.t * 1e6, unit = "us" },
  },
  ratios = { { what = "Lua rng / C rng, time per request", value = l.t / c.t } },
  note = "the notify is an ioeventfd (no exit); the two mmio exits are the interrupt status " ..
    "read and its ack; the io share is the guest's one line of output after the loop" }
bench.print(result)
bench.save(result)
