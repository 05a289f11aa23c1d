-- vhost-user kick -> call latency: a frontend (build/vu-peer, playing
-- UML's virtio_uml) offers one 16-byte buffer, kicks, and waits for the
-- call, over and over.  Against vmlua's C rng, vmlua's Lua rng
-- (scripts/devices/rng.lua), and the floor: a process that only turns
-- each kick into a call.  Medians of 7 rounds each, in one run.
--
--   build/vmlua bench/vhost_latency.lua [requests per round]
local core = require "vmlua.core"
local virtio = require "vmlua.virtio"
local bench = require "bench.lib"

local N = tonumber(arg and arg[1]) or 20000
local PEER = "build/vu-peer"

local function peer(path, mode, srv)
  local out = os.tmpname()
  assert(os.execute(("%s %s %s %d > %s 2>&1 &"):format(PEER, path, mode, N, out)))
  local text, next_look = "", 0
  local deadline = core.monotonic() + 300
  repeat
    if srv then srv:poll(0.05) else os.execute("sleep 0.2") end
    -- Look at the output now and then, not after every request.
    if core.monotonic() >= next_look then
      local f = io.open(out, "rb")
      text = f and f:read("a") or ""
      if f then f:close() end
      next_look = core.monotonic() + 0.5
    end
  until text:match("kick%->call") or text:match("failed") or core.monotonic() > deadline
  os.remove(out)
  local ns = tonumber(text:match("median (%d+) ns"))
  if not ns then error("vu-peer " .. mode .. ": " .. text) end
  return ns
end

local function served(dev)
  local path = os.tmpname()
  os.remove(path)
  path = path .. ".vhost"
  local srv = assert(core.vhost_user{ device = dev, path = path })
  local ns = peer(path, "latency", srv)
  srv:close()
  os.remove(path)
  return ns
end

local urandom = assert(io.open("/dev/urandom", "rb"))
local c_ns = served(virtio.rng())
local lua_ns = served(dofile("scripts/devices/rng.lua")(function(n) return urandom:read(n) end))
local floor_ns = peer("-", "floor")
urandom:close()

local result = { bench = "vhost_latency", title = "vhost-user kick->call round trip (16-byte rng request)",
  runs = 7, per_run = N,
  rows = {
    { what = "vmlua, C rng", value = c_ns / 1000, unit = "us" },
    { what = "vmlua, Lua rng", value = lua_ns / 1000, unit = "us" },
    { what = "eventfd floor", value = floor_ns / 1000, unit = "us" },
  },
  ratios = {
    { what = "vmlua C rng / eventfd floor", value = c_ns / floor_ns },
    { what = "vmlua Lua rng / vmlua C rng", value = lua_ns / c_ns },
  },
  note = "floor: a forked process that answers each kick eventfd with a call eventfd, no ring work" }
bench.print(result)
bench.save(result)
