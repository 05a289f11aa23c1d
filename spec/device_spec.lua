-- vmlua.Device: the transport-agnostic virtio device, its hooks, the
-- devices written in Lua, all driven by vmlua.driver with no VM.
local core = require "vmlua.core"
local virtio = require "vmlua.virtio"
local driver = require "vmlua.driver"

local ACK, DRV, DRIVER_OK, FEATURES_OK, NEEDS_RESET = 1, 2, 4, 8, 64

local function plain(o)
  o = o or {}
  return core.device{ id = o.id or 4, queues = o.queues or { 8 },
    features = o.features, config = o.config }
end

describe("vmlua.Device", function()
  local mem
  before_each(function() mem = core.memory("8M") end)

  describe("bad arguments", function()
    it("names each one", function()
      assert.has_error(function() core.device() end,
        "bad argument #1 to 'device' (table expected, got no value)")
      assert.has_error(function() core.device{ queues = { 8 } } end,
        "bad argument #1 to 'device' (field 'id' must be a virtio device id (1..65535))")
      assert.has_error(function() core.device{ id = 4 } end,
        "bad argument #1 to 'device' (field 'queues' must be a list of queue sizes)")
      assert.has_error(function() core.device{ id = 4, queues = { 6 } } end,
        "bad argument #1 to 'device' (queues[1] must be a power of 2 from 1 to 32768)")
      assert.has_error(function() core.device{ id = 4, queues = { 8 }, features = { 64 } } end,
        "bad argument #1 to 'device' (features[1] must be a bit number 0..63)")
      assert.has_error(function() core.device{ id = 4, queues = { 8 }, config = ("x"):rep(257) } end,
        "bad argument #1 to 'device' (field 'config' is longer than 256 bytes)")
      local dev = plain()
      assert.has_error(function() dev:on("kick", print) end,
        "bad argument #1 to 'on' (unknown event 'kick' (notify, status, reset, config or error))")
      assert.has_error(function() dev:queue(1) end, "bad argument #1 to 'queue' (no such queue)")
      assert.has_error(function() virtio.device{ id = "disk", queues = { 8 } } end,
        "bad argument #1 to 'device' (unknown device name 'disk')")
    end)
  end)

  describe("after its Memory is closed", function()
    -- The rings were in that memory: each of these was a SIGSEGV.
    it("raises on notify and interrupt, for C and Lua devices", function()
      for _, dev in ipairs{ core.rng(), virtio.device{ id = 4, queues = { 8 },
                                          notify = function(_, q) q:pop() end } } do
        local m = core.memory("4M")
        local d = assert(driver.attach(dev, m))
        d.rings[0]:add{ { write = 4 } }
        m:close()
        assert.has_error(function() dev:notify(0) end, "attempt to use a closed vmlua.Memory")
        assert.has_error(function() dev:interrupt(0) end, "attempt to use a closed vmlua.Memory")
      end
    end)
  end)

  describe("negotiation", function()
    it("offers VERSION_1 and keeps FEATURES_OK for an offered subset", function()
      local dev = plain{ features = { virtio.F.EVENT_IDX } }
      assert.equal((1 << 32) | (1 << 29), dev.features)
      local d = assert(driver.attach(dev, mem))
      assert.equal((1 << 32) | (1 << 29), d.accepted)
      assert.equal(ACK | DRV | FEATURES_OK | DRIVER_OK, dev.status)
    end)

    it("refuses FEATURES_OK for features it did not offer, or without VERSION_1", function()
      local dev = plain()
      dev:attach(mem)
      dev:set_status(ACK | DRV)
      dev:set_driver_features((1 << 32) | (1 << 5))
      dev:set_status(ACK | DRV | FEATURES_OK)
      assert.equal(ACK | DRV, dev.status)
      dev:set_status(0)
      dev:set_status(ACK | DRV)
      dev:set_driver_features(0)
      dev:set_status(ACK | DRV | FEATURES_OK)
      assert.equal(ACK | DRV, dev.status)
    end)
  end)

  describe("needs a reset, naming the rule, when the driver", function()
    local function broken(dev, reason)
      assert.equal(reason, dev.broken)
      assert.equal(NEEDS_RESET, dev.status & NEEDS_RESET)
      assert.equal(2, dev.isr & 2)       -- a config interrupt tells the driver
    end
    it("clears a status bit", function()
      local dev = plain()
      driver.attach(dev, mem)
      dev:set_status(ACK | DRV)
      broken(dev, "status_bit_cleared")
    end)
    it("sets DRIVER_OK before FEATURES_OK", function()
      local dev = plain()
      dev:attach(mem)
      dev:set_status(ACK | DRV | DRIVER_OK)
      broken(dev, "driver_ok_before_features_ok")
    end)
    it("changes features after FEATURES_OK", function()
      local dev = plain()
      driver.attach(dev, mem)
      dev:set_driver_features(1 << 32)
      broken(dev, "features_after_features_ok")
    end)
    it("changes a queue while it is ready", function()
      local dev = plain()
      driver.attach(dev, mem)
      dev:set_queue(0, { num = 8, desc = 0, driver = 0, device = 0 })
      broken(dev, "queue_changed_while_ready")
    end)
    it("asks for a queue larger than the device allows", function()
      local dev = plain()
      dev:attach(mem)
      dev:set_queue(0, { num = 16, desc = 0x1000, driver = 0x2000, device = 0x3000 })
      broken(dev, "queue_size_over_max")
    end)
    it("enables a queue with a bad layout", function()
      local dev = plain()
      dev:attach(mem)
      dev:set_queue(0, { num = 8, desc = 0x1008, driver = 0x2000, device = 0x3000 })
      dev:set_queue_ready(0, true)
      broken(dev, "desc_misaligned")
    end)
    it("kicks a queue that does not exist", function()
      local dev = plain()
      driver.attach(dev, mem)
      dev:notify(3)
      broken(dev, "notify_bad_queue")
    end)
    it("writes beyond the config space", function()
      local dev = plain{ config = "abcd" }
      driver.attach(dev, mem)
      dev:write_config(2, "xyz")
      broken(dev, "config_out_of_range")
    end)
    it("breaks a ring rule", function()
      local dev = plain()
      local d = driver.attach(dev, mem)
      d.rings[0]:set_avail_idx(100)
      d:kick(0)
      local c, reason = dev:queue(0):pop()
      assert.is_nil(c)
      assert.equal("avail_idx_jump", reason)
      broken(dev, "avail_idx_jump")
    end)
    it("and a reset makes it whole again", function()
      local dev = plain()
      driver.attach(dev, mem)
      dev:notify(3)
      assert.truthy(dev.broken)
      assert.truthy(driver.attach(dev, mem))
      assert.is_nil(dev.broken)
      assert.equal(ACK | DRV | FEATURES_OK | DRIVER_OK, dev.status)
    end)
  end)

  describe("hooks", function()
    it("fire for notify, status, reset, config and error", function()
      local dev = plain{ config = "\0\0\0\0" }
      local log = {}
      dev:on("notify", function(d, q) log[#log + 1] = "notify " .. tostring(q) .. " " .. tostring(d == dev) end)
      dev:on("status", function(_, new, old) log[#log + 1] = ("status %d<-%d"):format(new, old) end)
      dev:on("reset", function() log[#log + 1] = "reset" end)
      dev:on("config", function(_, off) log[#log + 1] = "config " .. off end)
      dev:on("error", function(_, why) log[#log + 1] = "error " .. why end)
      local d = driver.attach(dev, mem)
      d:kick(0)
      d:write_config(1, "\7")
      dev:notify(9)
      assert.same({
        "reset", "reset", "status 0<-0", "status 1<-0", "status 3<-1", "status 11<-3",
        "status 15<-11", "notify vmlua.Virtqueue (size 8, ok) true", "config 1",
        "error notify_bad_queue",
      }, log)
      assert.equal("\0\7\0\0", d:read_config(0, 4))
    end)

    it("report an error with a traceback and break only the device", function()
      local dev = plain()
      dev:on("notify", function() error("hook went wrong") end)
      local d = driver.attach(dev, mem)
      d:kick(0)                      -- does not raise here
      assert.equal("hook_error", dev.broken)
      assert.equal(NEEDS_RESET, dev.status & NEEDS_RESET)
    end)

    it("can be removed", function()
      local dev, n = plain(), 0
      dev:on("notify", function() n = n + 1 end)
      local d = driver.attach(dev, mem)
      d:kick(0)
      dev:on("notify", nil)
      d:kick(0)
      assert.equal(1, n)
      assert.equal(2, dev.notifies)
    end)
  end)

  describe("config space", function()
    it("counts generations and interrupts the driver on device changes", function()
      local dev = plain{ config = "abcd" }
      local d = driver.attach(dev, mem)
      d:interrupt_status()
      assert.equal(0, dev.generation)
      dev:set_config(0, "AB")
      assert.equal(1, dev.generation)
      assert.equal("ABcd", d:read_config(0, 4))
      assert.equal(2, d:interrupt_status() & 2)
      assert.equal("cd\0\0", d:read_config(2, 4))   -- beyond reads zero
    end)
  end)

  describe("devices written in Lua", function()
    it("rng: the guest reads the bytes the script chose", function()
      local rng = dofile("scripts/devices/rng.lua")
      local dev = rng(function(n) return ("\42"):rep(n) end)
      local d = assert(driver.attach(dev, mem))
      local used = d:request(0, { { write = 16 } })
      assert.equal(1, #used)
      assert.equal(16, used[1].len)
      assert.equal(("\42"):rep(16), used[1].data)
      assert.equal(1, d:interrupt_status() & 1)
    end)

    it("echo: direct and indirect chains, config, EVENT_IDX", function()
      local dev = dofile("scripts/devices/echo.lua")()
      local d = assert(driver.attach(dev, mem))
      assert.equal(1 << 28 | 1 << 29 | 1 << 32, d.accepted)
      local used = d:request(0, { "hello, ", "world", { write = 8 }, { write = 8 } })
      assert.equal("hello, world", used[1].data)
      d:write_config(0, "\1")
      used = d:request(0, { "quiet", { write = 5 } }, { indirect = true })
      assert.equal("QUIET", used[1].data)
    end)

    it("a notify hook that pops nothing still leaves the device fine", function()
      local dev = virtio.device{ id = 4, queues = { 8 }, notify = function() end }
      local d = driver.attach(dev, mem)
      d:kick(0)
      assert.is_nil(dev.broken)
    end)
  end)
end)
