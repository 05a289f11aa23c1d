-- The cost of a Lua notify hook, per notify, against the same device
-- with no hook (the C path only), in one run.  Medians of 7 rounds.
--
--   build/vmlua bench/notify_hook.lua [notifies per round]
local vmlua = require "vmlua"
local driver = require "vmlua.driver"
local core = vmlua.core

local N = tonumber(arg and arg[1]) or 200000

local function median(t)
  table.sort(t)
  return t[(#t + 1) // 2]
end

local function rounds(dev)
  local d = assert(driver.attach(dev, vmlua.memory("8M")))
  local times = {}
  for r = 1, 7 do
    local t0 = core.monotonic()
    for _ = 1, N do d:kick(0) end
    times[r] = (core.monotonic() - t0) / N
  end
  return median(times)
end

local bare = core.device{ id = 4, queues = { 64 } }
local hooked = core.device{ id = 4, queues = { 64 } }
local calls = 0
hooked:on("notify", function() calls = calls + 1 end)

local t_bare, t_hook = rounds(bare), rounds(hooked)
assert(calls == 7 * N, "the hook ran " .. calls .. " times")
print(string.format("notify, no hook:   %7.1f ns", t_bare * 1e9))
print(string.format("notify, Lua hook:  %7.1f ns", t_hook * 1e9))
print(string.format("hook cost:         %7.1f ns per notify (%.1fx the bare notify)",
  (t_hook - t_bare) * 1e9, t_hook / t_bare))
