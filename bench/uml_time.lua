-- Time on the uml backend: how soon the guest's /init runs, and what
-- virtual time saves.
--
--   time to /init: from just before vm:start() (the exec of linux.uml)
--                  to vmlua reading the first line /init prints
--                  (bench-init) on the console, on the host's monotonic
--                  clock; vmlua's own kernel and Debian's linux.uml, each
--                  booting bench/guest-initramfs.lua's initramfs.
--   sleep 60:      the default guest on virtual time (time = "virtual")
--                  runs `sleep 60; echo woke` at its shell: wall seconds
--                  from sending the line to reading its answer.
--
-- Medians of N runs (default 20; 5 for the sleep).
--
--   build/vmlua bench/uml_time.lua [runs]
local bench = require "bench.lib"
local vmlua = require "vmlua"
local now = require("vmlua.core").monotonic

local RUNS = tonumber(arg and arg[1]) or 20
local CACHE = "build/guest-cache"
local DEBIAN = CACHE .. "/uml/root/usr/bin/linux.uml"
local OUT = "build/bench"

local g = assert(vmlua.guest("uml"))
assert(os.execute("mkdir -p " .. OUT))
assert(os.execute(("build/vmlua bench/guest-initramfs.lua %s/uml/root/bin/busybox %s"):format(CACHE, OUT)))

-- Seconds from start to the guest's "bench-init", once.
local function to_init(kernel)
  local vm = assert(vmlua.vm{ backend = "uml", kernel = kernel, initrd = OUT .. "/poweroff.cpio",
    memory = "128M", cmdline = "quiet", console = "none" })
  local seen
  vm:on("output", function() if not seen and vm:output():find("bench-init", 1, true) then seen = now() end end)
  local t = now()
  assert(vm:start())
  local reason = vm:wait(60)
  vm:close()
  assert(reason == "poweroff" and seen, "the guest did not reach /init: " .. tostring(reason))
  return seen - t
end

local function median_of(n, fn)
  local t = {}
  for i = 1, n do t[i] = fn() end
  return bench.median(t)
end

io.write("bench: time to /init, ", RUNS, " boots each...\n")
local own = median_of(RUNS, function() return to_init(g.kernel) end)
local rows = { { what = "time to /init, vmlua's kernel", value = own * 1000, unit = "ms" } }
local ratios = {}
local f = io.open(DEBIAN, "rb")
if f then
  f:close()
  local deb = median_of(RUNS, function() return to_init(DEBIAN) end)
  rows[#rows + 1] = { what = "time to /init, Debian's linux.uml", value = deb * 1000, unit = "ms" }
  ratios[#ratios + 1] = { what = "vmlua's kernel / Debian's, time to /init", value = own / deb }
end

io.write("bench: sleep 60 on virtual time, 5 runs...\n")
local vm = assert(vmlua.vm{ backend = "uml", kernel = g.kernel, initrd = g.initrd, cmdline = g.cmdline,
  console = "none", time = "virtual" })
assert(vm:start())
vm.console:expect(g.ready, 60, true)
local sleep = median_of(5, function()
  local t = now()
  local _, status = vm.console:run("sleep 60; echo woke", 60)
  assert(status == 0)
  return now() - t
end)
vm:close()
rows[#rows + 1] = { what = "sleep 60 on virtual time, wall time", value = sleep, unit = "s" }
ratios[#ratios + 1] = { what = "wall / guest time, sleep 60 on virtual time", value = sleep / 60 }

local result = { bench = "uml_time", runs = RUNS,
  title = "uml: exec to the guest's /init; a guest's minute of sleep on virtual time",
  note = "the sleep: medians of 5", rows = rows, ratios = ratios }
bench.print(result)
bench.save(result)
