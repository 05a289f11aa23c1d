-- vmlua.virtio.net and vmlua.switch, driven by vmlua.driver with no VM:
-- frames between devices on a switch, the frame hook, hostile drivers.
local core = require "vmlua.core"
local vmlua = require "vmlua"
local virtio = require "vmlua.virtio"
local driver = require "vmlua.driver"

local HDR = ("\0"):rep(12)
local BCAST = ("\255"):rep(6)
local function mac(n) return string.char(0x52, 0x54, 0, 0, 0, n) end
local function frame(dst, src, payload) return dst .. src .. "\8\0" .. payload end

-- A device on `sw` with its own memory and driver; rx buffers posted.
local function nic(sw, n, opts)
  opts = opts or {}
  local dev = assert(virtio.net{ switch = sw, mac = ("52:54:00:00:00:%02x"):format(n),
    hook = opts.hook })
  local mem = core.memory("4M")
  local d = assert(driver.attach(dev, mem))
  local self = { dev = dev, d = d, mem = mem, posted = {} }
  function self.post(count, size)
    local ring = d.rings[0]
    for _ = 1, count do
      local a = ring:alloc(size or 1526)
      local head = ring:add({ { addr = a, len = size or 1526, write = true } })
      self.posted[head] = a
    end
    d:kick(0)
  end
  -- Frames received since the last call (header stripped), checking the header.
  function self.received()
    local out = {}
    for _, e in ipairs(d.rings[0]:used_elems()) do
      local bytes = mem:read(self.posted[e.id], e.len)
      assert(bytes:sub(1, 12) == ("\0"):rep(10) .. "\1\0", "a bad virtio_net_hdr")
      out[#out + 1] = bytes:sub(13)
    end
    return out
  end
  function self.send(f) return d:request(1, { HDR .. f }) end
  if opts.post ~= false then self.post(8) end
  return self
end

describe("vmlua.virtio.net", function()
  it("checks its options, naming them", function()
    assert.has_error(function() virtio.net{ mac = "01:00:5e:00:00:01" } end,
      "bad argument #1 to 'net' (option 'mac' must be a unicast address like \"52:54:00:12:34:56\")")
    assert.has_error(function() virtio.net{ mac = "52:54:00:12:34" } end,
      "bad argument #1 to 'net' (option 'mac' must be a unicast address like \"52:54:00:12:34:56\")")
    assert.has_error(function() virtio.net{ switch = {} } end,
      "bad argument #1 to 'net' (option 'switch' must be a vmlua.Switch)")
    assert.has_error(function() virtio.net{ hook = 1 } end,
      "bad argument #1 to 'net' (option 'hook' must be a function(frame, direction))")
    assert.has_error(function() virtio.net{ slirp = true } end,
      "bad argument #1 to 'net' (unknown option 'slirp' (mac, switch, tap, user, hook, queue, sandbox))")
    assert.has_error(function() virtio.net{ user = "yes" } end,
      "bad argument #1 to 'net' (option 'user' must be true or { forwards = { ... } })")
    assert.has_error(function() virtio.net{ user = true, tap = "t0" } end,
      "bad argument #1 to 'net' (options 'switch', 'tap' and 'user' exclude each other)")
    assert.has_error(function() virtio.net{ user = { forwards = { 80 } } } end,
      "bad argument #1 to 'net' (option 'user': forwards[1] must be a string)")
    assert.same({ nil, "forward 'tcp:80': not tcp|udp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT" },
      { virtio.net{ user = { forwards = { "tcp:80" } } } })
    assert.same({ nil, "forward 'sctp::1-:2': not tcp|udp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT" },
      { virtio.net{ user = { forwards = { "sctp::1-:2" } } } })
    assert.has_error(function() virtio.net{ tap = "" } end,
      "bad argument #1 to 'net' (option 'tap' must be the tap device's name)")
    assert.has_error(function() virtio.net{ tap = "t0", switch = vmlua.switch() } end,
      "bad argument #1 to 'net' (options 'switch' and 'tap' exclude each other)")
    assert.same({ nil, "tap a-name-far-too-long: a name of at most 15 bytes" },
      { virtio.net{ tap = "a-name-far-too-long" } })
  end)

  it("offers its MAC address and a link that is up", function()
    local dev = virtio.net{ mac = "52:54:00:ab:cd:ef" }
    local d = assert(driver.attach(dev, core.memory("4M")))
    assert.equal("\x52\x54\x00\xab\xcd\xef", d:read_config(0, 6))
    assert.equal(1, string.unpack("<I2", d:read_config(6, 2)))
    assert.not_equal(0, dev.features & (1 << 5))
    -- and without one, a random address in QEMU's 52:54:00 range
    local a, b = virtio.net(), virtio.net()
    local ma = assert(driver.attach(a, core.memory("4M"))):read_config(0, 6)
    local mb = assert(driver.attach(b, core.memory("4M"))):read_config(0, 6)
    assert.equal("\x52\x54\x00", ma:sub(1, 3))
    assert.not_equal(ma, mb)
  end)

  describe("on a switch", function()
    it("floods what it does not know, then sends only where it learned", function()
      local sw = vmlua.switch()
      local a, b, c = nic(sw, 1), nic(sw, 2), nic(sw, 3)
      assert.equal(3, sw.ports)
      local hello = frame(BCAST, mac(1), "who is 2?")
      a.send(hello)
      assert.same({ hello }, b.received())
      assert.same({ hello }, c.received())
      assert.same({}, a.received())
      local reply = frame(mac(1), mac(2), "I am 2")
      b.send(reply)                      -- 1 was learned: only a gets it
      assert.same({ reply }, a.received())
      assert.same({}, c.received())
      local to2 = frame(mac(2), mac(1), "just for 2")
      a.send(to2)
      assert.same({ to2 }, b.received())
      assert.same({}, c.received())
      assert.equal(3, sw.frames)
      assert.equal(1, sw.flooded)
      assert.equal(3, a.dev.tx_frames + b.dev.tx_frames)
      assert.equal(2, a.dev.rx_frames + c.dev.rx_frames)
    end)

    it("keeps frames for a guest with no buffers until it adds some", function()
      local sw = vmlua.switch()
      local a, b = nic(sw, 1), nic(sw, 2, { post = false })
      for i = 1, 3 do a.send(frame(BCAST, mac(1), "early " .. i)) end
      assert.same({}, b.received())
      b.post(2)
      assert.same({ frame(BCAST, mac(1), "early 1"), frame(BCAST, mac(1), "early 2") }, b.received())
      b.post(2)
      assert.same({ frame(BCAST, mac(1), "early 3") }, b.received())
      -- a full backlog drops, and says so
      for i = 1, 70 do a.send(frame(BCAST, mac(1), "flood " .. i)) end
      assert.equal(70 - 64 - 1, b.dev.rx_dropped)     -- one went into the buffer left
    end)

    it("passes frames through the hook, which can change or drop them", function()
      local sw = vmlua.switch()
      local seen = {}
      local a = nic(sw, 1, { hook = function(f, dir)
        seen[#seen + 1] = dir .. ":" .. f:sub(15)
        if f:find("secret", 15, true) then return false end
        if f:find("shout", 15, true) then return f:sub(1, 14) .. f:sub(15):upper() end
      end })
      local b = nic(sw, 2)
      a.send(frame(BCAST, mac(1), "shout this"))
      a.send(frame(BCAST, mac(1), "secret"))
      b.send(frame(mac(1), mac(2), "hello"))
      assert.same({ frame(BCAST, mac(1), "SHOUT THIS") }, b.received())
      assert.same({ frame(mac(1), mac(2), "hello") }, a.received())
      assert.same({ "tx:shout this", "tx:secret", "rx:hello" }, seen)
      assert.equal(1, a.dev.hook_dropped)
    end)

    it("drops a frame whose hook fails, and goes on", function()
      local sw = vmlua.switch()
      local a = nic(sw, 1, { hook = function() error("broken hook") end })
      local b = nic(sw, 2)
      a.send(frame(BCAST, mac(1), "x"))
      assert.same({}, b.received())
      assert.equal(1, a.dev.hook_dropped)
      assert.is_nil(a.dev.broken)
    end)

    it("reports a failing hook with the script's line and a traceback", function()
      local env = require "helpers.env"
      local script = env.tmpname()
      local f = assert(io.open(script, "w"))
      assert(f:write([[
local core, vmlua = require "vmlua.core", require "vmlua"
local virtio, driver = require "vmlua.virtio", require "vmlua.driver"
local sw = vmlua.switch()
local dev = assert(virtio.net{ switch = sw, mac = "52:54:00:00:00:01",
  hook = function() error("broken hook") end })
local d = assert(driver.attach(dev, core.memory("4M")))
d:request(1, { ("\0"):rep(12) .. ("\255"):rep(6) .. ("\1"):rep(6) .. "\8\0x" })
print("dropped", dev.hook_dropped)
]]))
      f:close()
      local out, status = env.sh(env.vmlua .. " " .. script .. " 2>&1")
      os.remove(script)
      assert.equal(0, status)
      assert.matches("dropped\t1", out)
      assert.matches("vmlua: error in frame hook: [^\n]*:5: broken hook", out)
      assert.matches("stack traceback", out)
    end)
  end)

  it("is collected, with its fds, when its frame hook is all that reaches it", function()
    local dirent = require "posix.dirent"
    local alive = setmetatable({}, { __mode = "k" })
    collectgarbage(); collectgarbage()
    local before = #dirent.dir("/proc/self/fd")
    for _ = 1, 10 do
      local dev
      dev = assert(virtio.net{ user = true, hook = function() return dev ~= nil end })
      alive[dev] = true
    end
    collectgarbage(); collectgarbage()
    assert.is_nil(next(alive), "a device its hook reaches was kept")
    assert.equal(before, #dirent.dir("/proc/self/fd"))
  end)

  describe("a hostile driver", function()
    it("has runt, oversized and headerless frames dropped and counted", function()
      local sw = vmlua.switch()
      local a, b = nic(sw, 1), nic(sw, 2)
      assert.equal(1, #a.d:request(1, { "short" }))                 -- not even a header
      assert.equal(1, #a.send("runt"))                             -- under 14 bytes
      local big = 0x300000                                          -- past the rings

      a.mem:write(big, HDR .. frame(BCAST, mac(1), ("j"):rep(65536)))
      assert.equal(1, #a.d:request(1, { { addr = big, len = 12 + 14 + 65536 } }))
      assert.equal(3, a.dev.tx_dropped)
      assert.same({}, b.received())
      assert.is_nil(a.dev.broken)
    end)

    it("gets nothing for a receive buffer too small, and the frame is dropped", function()
      local sw = vmlua.switch()
      local a, b = nic(sw, 1), nic(sw, 2, { post = false })
      b.post(1, 20)                                                 -- room for 8 bytes of frame
      a.send(frame(BCAST, mac(1), "does not fit"))
      local used = b.d.rings[0]:used_elems()
      assert.equal(1, #used)
      assert.equal(0, used[1].len)
      assert.equal(1, b.dev.rx_dropped)
    end)
  end)
end)
