-- vmlua.Virtqueue and vmlua.Chain: the split ring walker, driven by the
-- Lua driver harness.  One negative spec per validation rule.
local core = require "vmlua.core"
local driver = require "vmlua.driver"

local function setup(o)
  o = o or {}
  local mem = core.memory("4M")
  local ring = driver.ring(mem, { size = o.size or 8, base = o.base or 0x100000,
    event_idx = o.event_idx, indirect = o.indirect })
  local layout = ring:layout()
  layout.base = o.start
  if o.start then ring:start_at(o.start) end
  local q = assert(core.virtqueue(mem, layout))
  return q, ring, mem
end

-- Pop and expect the queue to break with `reason`, reported to on_error.
local function breaks(q, reason)
  local heard
  q:on_error(function(_, r) heard = r end)
  local c, r = q:pop()
  assert.is_nil(c)
  assert.equal(reason, r)
  assert.equal(reason, q.broken)
  assert.equal(reason, heard)
  -- Broken for good: pop keeps refusing, without reporting again.
  heard = nil
  assert.same({ nil, reason }, { q:pop() })
  assert.is_nil(heard)
end

describe("vmlua.Virtqueue", function()
  it("sets no globals", function()
    local g = {}
    for k in pairs(_G) do g[k] = true end
    require "vmlua.driver"
    for k in pairs(_G) do assert.is_true(g[k], k) end
  end)

  describe("virtqueue()", function()
    local mem = core.memory("4M")
    local function try(o)
      local t = { size = 8, desc = 0x1000, avail = 0x2000, used = 0x3000 }
      for k, v in pairs(o) do t[k] = v end
      return core.virtqueue(mem, t)
    end
    it("refuses a size that is not a power of 2", function()
      assert.same({ nil, "size_not_power_of_2" }, { try{ size = 6 } })
      assert.same({ nil, "size_not_power_of_2" }, { try{ size = 0 } })
    end)
    it("refuses a size over 32768", function()
      assert.same({ nil, "size_too_large" }, { try{ size = 65536 } })
      assert.truthy(try{ size = 32768, desc = 0x100000, avail = 0x200000, used = 0x300000 })
    end)
    it("refuses misaligned rings", function()
      assert.same({ nil, "desc_misaligned" }, { try{ desc = 0x1008 } })
      assert.same({ nil, "avail_misaligned" }, { try{ avail = 0x2001 } })
      assert.same({ nil, "used_misaligned" }, { try{ used = 0x3002 } })
    end)
    it("refuses rings outside RAM", function()
      assert.same({ nil, "ring_outside_ram" }, { try{ used = 4 * 1024 * 1024 - 8 } })
      assert.same({ nil, "ring_outside_ram" }, { try{ desc = -16 } })
    end)
    it("checks its arguments", function()
      assert.has_error(function() core.virtqueue(mem) end,
        "bad argument #2 to 'virtqueue' (table expected, got no value)")
      assert.has_error(function() core.virtqueue(mem, { size = 8 }) end,
        "bad argument #2 to 'virtqueue' (field 'desc' must be an integer)")
      assert.has_error(function() try{ event_idx = 1 } end,
        "bad argument #2 to 'virtqueue' (field 'event_idx' must be a boolean)")
    end)
  end)

  -- A queue and the chains popped from it hold raw pointers into their
  -- Memory; after mem:close() each of these was a SIGSEGV.
  describe("after its Memory is closed", function()
    it("raises instead of touching unmapped rings or buffers", function()
      local q, ring, mem = setup()
      ring:add{ "hi", { write = 4 } }
      ring:add{ "again", { write = 4 } }
      local c = assert(q:pop())
      mem:close()
      local closed = "attempt to use a closed vmlua.Memory"
      assert.has_error(function() q:pop() end, closed)
      assert.has_error(function() c:write("x") end, closed)
      assert.has_error(function() c:read() end, closed)
      assert.has_error(function() q:push(c) end, closed)
      assert.has_error(function() q:interrupt() end, closed)
    end)

    it("keeps the Memory a chain was popped from alive", function()
      local q, ring = setup()
      ring:add{ "kept", { write = 4 } }
      local c = assert(q:pop())
      q = nil          -- luacheck: ignore
      collectgarbage()
      collectgarbage()
      c:write("ok")
      assert.equal("kept", c:read())
    end)
  end)

  describe("pop() and push()", function()
    it("walks a direct chain of readable then writable buffers", function()
      local q, ring = setup()
      local head = ring:add{ "hello ", "world", { write = 4 }, { write = 8 } }
      local c = q:pop()
      assert.equal(head, c.head)
      assert.equal(11, c.readable)
      assert.equal(12, c.writable)
      assert.equal(4, c.buffers)
      assert.equal("hello", c:read(5))
      assert.equal(" world", c:read())
      assert.equal("", c:read())
      c:write("abcdef")        -- spans both writable buffers
      c:write("gh")
      assert.equal(8, c.written)
      assert.has_error(function() c:write("12345") end,
        "bad argument #1 to 'write' (does not fit in the chain's writable buffers)")
      q:push(c)
      assert.same({ { id = head, len = 8 } }, ring:used_elems())
      assert.is_nil(q:pop())
      assert.has_error(function() return c.readable end, "attempt to use a closed vmlua.Chain")
      assert.same({ pops = 1, pushes = 1, interrupts = 0, suppressed = 0 }, q:stats())
    end)

    it("walks an indirect chain", function()
      local q, ring = setup{ indirect = true }
      local head = ring:add({ "req", { write = 2 } }, { indirect = true })
      local c = q:pop()
      assert.equal(head, c.head)
      assert.equal("req", c:read())
      c:write("ok")
      q:push(c)
      assert.same({ { id = head, len = 2 } }, ring:used_elems())
    end)

    it("takes written from push when given, within the writable length", function()
      local q, ring = setup()
      ring:add{ { write = 16 } }
      local c = q:pop()
      assert.has_error(function() q:push(c, 17) end,
        "bad argument #2 to 'push' (written exceeds the chain's writable length)")
      q:push(c, 16)
      assert.equal(16, ring:used_elems()[1].len)
    end)

    it("wraps its 16-bit indexes", function()
      local q, ring = setup{ start = 65534, size = 4 }
      for i = 1, 5 do
        ring:add{ { write = 1 } }
        local c = q:pop()
        c:write(string.char(i))
        q:push(c)
        assert.equal(1, #ring:used_elems())
      end
      assert.equal(3, q.last_avail)
      assert.equal(3, q.used_idx)
    end)
  end)

  describe("breaks, naming the rule, when the driver", function()
    it("moves avail idx further than the queue size", function()
      local q, ring = setup()
      ring:set_avail_idx(9)
      breaks(q, "avail_idx_jump")
    end)
    it("publishes a head beyond the table", function()
      local q, ring = setup()
      ring:publish(8)
      breaks(q, "head_out_of_range")
    end)
    it("links to a next beyond the table", function()
      local q, ring = setup()
      local a = ring:alloc(4)
      ring:set_desc(0, a, 4, driver.DESC_F_NEXT, 8)
      ring:publish(0)
      breaks(q, "next_out_of_range")
    end)
    it("makes a chain loop (longer than the queue)", function()
      local q, ring = setup()
      local a = ring:alloc(4)
      ring:set_desc(0, a, 4, driver.DESC_F_NEXT, 1)
      ring:set_desc(1, a, 4, driver.DESC_F_NEXT, 0)
      ring:publish(0)
      breaks(q, "chain_too_long")
    end)
    it("uses an indirect table without negotiating it", function()
      local q, ring = setup{ indirect = false }
      ring:add({ "x" }, { indirect = true })
      breaks(q, "indirect_not_negotiated")
    end)
    it("gives an empty indirect table", function()
      local q, ring = setup{ indirect = true }
      ring:set_desc(0, ring:alloc(16), 0, driver.DESC_F_INDIRECT)
      ring:publish(0)
      breaks(q, "indirect_empty")
    end)
    it("gives an indirect table that is not a multiple of 16 bytes", function()
      local q, ring = setup{ indirect = true }
      ring:set_desc(0, ring:alloc(32), 24, driver.DESC_F_INDIRECT)
      ring:publish(0)
      breaks(q, "indirect_bad_size")
    end)
    it("nests indirect tables", function()
      local q, ring = setup{ indirect = true }
      local t = ring:alloc(16)
      ring:set_desc(0, ring:alloc(16), 16, driver.DESC_F_INDIRECT, 0, t)
      ring:set_desc(0, t, 16, driver.DESC_F_INDIRECT)
      ring:publish(0)
      breaks(q, "indirect_nested")
    end)
    it("sets NEXT on an indirect descriptor", function()
      local q, ring = setup{ indirect = true }
      local t = ring:alloc(16)
      ring:set_desc(0, ring:alloc(4), 4, 0, 0, t)
      ring:set_desc(0, t, 16, driver.DESC_F_INDIRECT | driver.DESC_F_NEXT, 1)
      ring:publish(0)
      breaks(q, "indirect_with_next")
    end)
    it("makes an indirect chain longer than its table", function()
      local q, ring = setup{ indirect = true }
      local t = ring:alloc(32)
      local a = ring:alloc(4)
      ring:set_desc(0, a, 4, driver.DESC_F_NEXT, 1, t)
      ring:set_desc(1, a, 4, driver.DESC_F_NEXT, 0, t)
      ring:set_desc(0, t, 32, driver.DESC_F_INDIRECT)
      ring:publish(0)
      breaks(q, "chain_too_long")
    end)
    it("points a buffer outside RAM", function()
      local q, ring = setup()
      ring:set_desc(0, 4 * 1024 * 1024 - 2, 4, 0)
      ring:publish(0)
      breaks(q, "buffer_outside_ram")
    end)
    it("points a buffer that wraps around 2^64", function()
      local q, ring = setup()
      ring:set_desc(0, -2, 4, 0)
      ring:publish(0)
      breaks(q, "buffer_outside_ram")
    end)
    it("puts a readable buffer after a writable one", function()
      local q, ring = setup()
      ring:add{ { write = 4 }, "late" }
      breaks(q, "readable_after_writable")
    end)
  end)

  describe("interrupt()", function()
    it("honours NO_INTERRUPT without EVENT_IDX", function()
      local q, ring = setup()
      ring:add{ { write = 1 } }
      q:push(q:pop(), 0)
      assert.is_true(q:interrupt())
      ring:set_avail_flags(1)
      ring:add{ { write = 1 } }
      q:push(q:pop(), 0)
      assert.is_false(q:interrupt())
      assert.same({ pops = 2, pushes = 2, interrupts = 1, suppressed = 1 }, q:stats())
    end)

    it("honours used_event with EVENT_IDX and publishes avail_event", function()
      local q, ring = setup{ event_idx = true }
      for _ = 1, 4 do ring:add{ { write = 1 } } end
      ring:set_used_event(2)          -- tell me when entry 2 is used
      q:push(q:pop(), 0)              -- used idx 1: first, always
      assert.is_true(q:interrupt())
      assert.equal(1, ring:avail_event())
      q:push(q:pop(), 0)              -- used idx 2: entry 1, not asked for
      assert.is_false(q:interrupt())
      q:push(q:pop(), 0)              -- used idx 3: entry 2 asked for
      assert.is_true(q:interrupt())
      q:push(q:pop(), 0)
      assert.is_false(q:interrupt())
      assert.equal(4, ring:avail_event())
    end)
  end)
end)
