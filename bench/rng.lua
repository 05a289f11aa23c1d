-- A Lua-written rng (scripts/devices/rng.lua, reading /dev/urandom)
-- against the C rng (vmlua.virtio.rng, getrandom), on the driver
-- harness: the ring is filled with 64 writable buffers, and only the
-- notify that makes the device fill and return all 64 is timed - the
-- device's own cost per request, with no guest and no wake-ups.
-- Medians of 7 rounds, in one run.
--
--   build/vmlua bench/rng.lua [notifies per round]
local vmlua = require "vmlua"
local virtio = require "vmlua.virtio"
local driver = require "vmlua.driver"
local bench = require "bench.lib"
local core = vmlua.core

local KICKS = tonumber(arg and arg[1]) or 200
local CHAINS = 64

local function per_request(dev, size)
  local mem = vmlua.memory("16M")
  local d = assert(driver.attach(dev, mem, { queue_size = CHAINS }))
  local ring = d.rings[0]
  local bufs = {}
  for i = 1, CHAINS do bufs[i] = 0x400000 + (i - 1) * size end
  local times = {}
  for r = 1, 7 do
    local spent = 0
    for _ = 1, KICKS do
      for i = 1, CHAINS do ring:add({ { addr = bufs[i], len = size, write = true } }) end
      local t0 = core.monotonic()
      d:kick(0)
      spent = spent + core.monotonic() - t0
      local used = ring:used_elems()
      if #used ~= CHAINS or used[1].len ~= size then
        error(("the device returned %d chains (first %d bytes)"):format(#used, used[1] and used[1].len or 0))
      end
    end
    times[r] = spent / (KICKS * CHAINS)
  end
  return bench.median(times)
end

local urandom = assert(io.open("/dev/urandom", "rb"))
local function lua_rng() return dofile("scripts/devices/rng.lua")(function(n) return urandom:read(n) end) end

local result = { bench = "rng", runs = 7, per_run = KICKS * CHAINS, rows = {}, ratios = {},
  title = ("rng device cost per request, Lua vs C (driver harness, %d chains a notify)"):format(CHAINS) }
for _, size in ipairs{ 64, 4096 } do
  local c = per_request(virtio.rng(), size)
  local l = per_request(lua_rng(), size)
  table.insert(result.rows, { what = ("C rng, %d-byte request"):format(size), value = c * 1e6, unit = "us" })
  table.insert(result.rows, { what = ("Lua rng, %d-byte request"):format(size), value = l * 1e6, unit = "us" })
  table.insert(result.ratios, { what = ("Lua rng / C rng, %d bytes"):format(size), value = l / c })
end
urandom:close()
bench.print(result)
bench.save(result)
