-- vmlua.virtio.rng: the C rng device, driven by vmlua.driver with no VM.
local core = require "vmlua.core"
local virtio = require "vmlua.virtio"
local driver = require "vmlua.driver"

local NEEDS_RESET = 64

describe("vmlua.virtio.rng", function()
  local mem
  before_each(function() mem = core.memory("8M") end)

  it("checks its options, naming them", function()
    assert.has_error(function() virtio.rng{ queue = 6 } end,
      "bad argument #1 to 'rng' (option 'queue' must be a power of 2 from 1 to 32768)")
    assert.has_error(function() virtio.rng{ size = 8 } end,
      "bad argument #1 to 'rng' (unknown option 'size' (queue))")
    assert.has_error(function() virtio.rng("x") end,
      "bad argument #1 to 'rng' (table expected, got string)")
    assert.equal(256, virtio.rng{ queue = 256 }:queue_max(0))
  end)

  it("is an entropy device with indirect chains and EVENT_IDX", function()
    local dev = virtio.rng()
    assert.equal(virtio.ID.rng, dev.id)
    assert.equal(64, dev:queue_max(0))
    local d = assert(driver.attach(dev, mem))
    assert.equal(1 << 28 | 1 << 29 | 1 << 32, d.accepted)
  end)

  it("fills every writable buffer of a chain with the host's random bytes", function()
    local d = assert(driver.attach(virtio.rng(), mem))
    local a = d:request(0, { { write = 64 } })
    local b = d:request(0, { { write = 32 }, { write = 32 } }, { indirect = true })
    assert.equal(64, a[1].len)
    assert.equal(64, b[1].len)
    -- 64 random bytes: never all zero, and never the same twice.
    assert.not_equal(("\0"):rep(64), a[1].data)
    assert.not_equal(a[1].data, b[1].data)
    local seen = {}
    for c in a[1].data:gmatch(".") do seen[c] = true end
    local distinct = 0
    for _ in pairs(seen) do distinct = distinct + 1 end
    assert.is_true(distinct > 16, "64 random bytes with only " .. distinct .. " distinct values")
    assert.equal(1, d:interrupt_status() & 1)
  end)

  it("leaves readable buffers alone and answers 0 bytes for a chain of them", function()
    local d = assert(driver.attach(virtio.rng(), mem))
    local used = d:request(0, { "keep me" })
    assert.equal(1, #used)
    assert.equal(0, used[1].len)
  end)

  it("serves every chain waiting at a kick", function()
    local d = assert(driver.attach(virtio.rng(), mem))
    local ring = d.rings[0]
    for _ = 1, 5 do ring:add({ { addr = ring:alloc(8), len = 8, write = true } }) end
    d:kick(0)
    local used = ring:used_elems()
    assert.equal(5, #used)
    for _, e in ipairs(used) do assert.equal(8, e.len) end
  end)

  it("lets a Lua hook watch each kick after the device served it", function()
    local dev = virtio.rng()
    local kicks = {}
    dev:on("notify", function(_, q) kicks[#kicks + 1] = { q.last_avail, q.used_idx } end)
    local d = assert(driver.attach(dev, mem))
    assert.equal(16, d:request(0, { { write = 16 } })[1].len)
    assert.same({ { 1, 1 } }, kicks)     -- the chain was already taken and answered
  end)

  it("refuses a buffer outside guest memory: NEEDS_RESET, nothing written", function()
    local dev = virtio.rng()
    local d = assert(driver.attach(dev, mem))
    local used = d:request(0, { { addr = 0x7fff00, len = 0x1000, write = true } })
    assert.equal(0, #used)
    assert.equal(NEEDS_RESET, dev.status & NEEDS_RESET)
    assert.matches("outside", tostring(dev.broken))
    -- and it works again after the driver resets it
    d = assert(driver.attach(dev, mem))
    assert.equal(8, d:request(0, { { write = 8 } })[1].len)
  end)
end)
