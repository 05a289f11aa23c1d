-- The cost of a Lua notify hook, per notify, against the same device
-- with no hook (the C path only), in one run.  Medians of 7 rounds.
--
--   build/vmlua bench/notify_hook.lua [notifies per round]
local vmlua = require "vmlua"
local driver = require "vmlua.driver"
local core = vmlua.core
local bench = require "bench.lib"

local N = tonumber(arg and arg[1]) or 200000

local function rounds(dev)
  local d = assert(driver.attach(dev, vmlua.memory("8M")))
  local times = {}
  for r = 1, 7 do
    local t0 = core.monotonic()
    for _ = 1, N do d:kick(0) end
    times[r] = (core.monotonic() - t0) / N
  end
  return bench.median(times)
end

local bare = core.device{ id = 4, queues = { 64 } }
local hooked = core.device{ id = 4, queues = { 64 } }
local calls = 0
hooked:on("notify", function() calls = calls + 1 end)

local t_bare, t_hook = rounds(bare), rounds(hooked)
assert(calls == 7 * N, "the hook ran " .. calls .. " times")
local result = { bench = "notify_hook", runs = 7, per_run = N,
  title = "a Lua notify hook, per notify (driver harness, no VM)",
  rows = {
    { what = "notify, C device, no hook", value = t_bare * 1e9, unit = "ns" },
    { what = "notify, same device with a Lua hook", value = t_hook * 1e9, unit = "ns" },
    { what = "hook cost", value = (t_hook - t_bare) * 1e9, unit = "ns" },
  },
  ratios = { { what = "with hook / without", value = t_hook / t_bare } } }
bench.print(result)
bench.save(result)
