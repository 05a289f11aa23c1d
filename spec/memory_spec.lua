-- vmlua.Memory: guest-physical memory.
local core = require "vmlua.core"

local MiB, GiB = 1024 * 1024, 1024 * 1024 * 1024

describe("vmlua.Memory", function()
  it("sets no globals", function()
    local before = {}
    for k in pairs(_G) do before[k] = true end
    package.loaded["vmlua.core"] = nil
    require "vmlua.core"
    for k in pairs(_G) do assert.is_true(before[k], "new global " .. k) end
  end)

  describe("memory()", function()
    it("accepts bytes and size strings", function()
      assert.equal(256 * MiB, core.memory(256 * MiB):size())
      assert.equal(256 * MiB, core.memory("256M"):size())
      assert.equal(MiB, core.memory("1M"):size())
      assert.equal(2 * MiB, core.memory("2048K"):size())
      assert.equal(2 * GiB, core.memory{ size = "2G" }:size())
    end)

    it("lays RAM below the 32-bit hole and the rest above 4 GiB", function()
      local r = core.memory("5G"):regions()
      assert.same({ { gpa = 0, size = 3 * GiB }, { gpa = 4 * GiB, size = 2 * GiB } }, r)
      assert.same({ { gpa = 0, size = 256 * MiB } }, core.memory("256M"):regions())
    end)

    it("allocates 64 GiB lazily", function()
      local m = core.memory("64G")
      assert.equal(64 * GiB, m:size())
      m:u64(63 * GiB, 0x1122334455667788)
      assert.equal(0x1122334455667788, m:u64(63 * GiB))
      m:close()
    end)

    it("starts zeroed", function()
      local m = core.memory("1M")
      assert.equal(string.rep("\0", 64), m:read(0, 64))
    end)
  end)

  describe("bad arguments", function()
    it("names each one", function()
      assert.has_error(function() core.memory() end,
        "bad argument #1 to 'memory' (size must be a size (bytes, or a string like '256M'), got no value)")
      assert.has_error(function() core.memory("lots") end,
        "bad argument #1 to 'memory' (size: cannot read 'lots' as a size (try '256M' or '5G'))")
      assert.has_error(function() core.memory(4096) end,
        "bad argument #1 to 'memory' (size must be at least 1 MiB)")
      assert.has_error(function() core.memory(MiB + 1) end,
        "bad argument #1 to 'memory' (size must be a multiple of 4 KiB)")
      assert.has_error(function() core.memory({}) end,
        "bad argument #1 to 'memory' (field 'size' is required)")
      assert.has_error(function() core.memory("1M", 2) end,
        "no more than 1 argument expected, got 2")
      local m = core.memory("1M")
      assert.has_error(function() m:u8() end,
        "bad argument #1 to 'u8' (number expected, got no value)")
      assert.has_error(function() m:u8(0, 256) end,
        "bad argument #2 to 'u8' (value does not fit in the field)")
      assert.has_error(function() m:u16(0, 0x10000) end,
        "bad argument #2 to 'u16' (value does not fit in the field)")
      assert.has_error(function() m:read(0, -1) end,
        "bad argument #2 to 'read' (length must not be negative)")
      assert.has_error(function() m:fill(0, 1, 300) end,
        "bad argument #3 to 'fill' (byte must be 0..255)")
    end)
  end)

  describe("accessors", function()
    local m
    before_each(function() m = core.memory("2M") end)

    it("read back what write wrote", function()
      m:write(0x1000, "hello")
      assert.equal("hello", m:read(0x1000, 5))
      assert.equal("", m:read(0x1000, 0))
    end)

    it("are little-endian", function()
      m:u32(0x10, 0x11223344)
      assert.equal("\x44\x33\x22\x11", m:read(0x10, 4))
      assert.equal(0x3344, m:u16(0x10))
      assert.equal(0x44, m:u8(0x10))
      m:u64(0x20, -1)
      assert.equal(-1, m:u64(0x20))
      assert.equal(0xffffffff, m:u32(0x24))
    end)

    it("fill", function()
      m:fill(0x100, 4, 0xab)
      assert.equal("\xab\xab\xab\xab\0", m:read(0x100, 5))
    end)

    it("reach the last byte and no further", function()
      m:u8(2 * MiB - 1, 7)
      assert.equal(7, m:u8(2 * MiB - 1))
      assert.has_error(function() m:u16(2 * MiB - 1) end,
        "guest address 0x1fffff (+2 bytes) is outside guest RAM")
      assert.has_error(function() m:read(2 * MiB, 1) end,
        "guest address 0x200000 (+1 bytes) is outside guest RAM")
    end)

    it("reject ranges that wrap around 2^64", function()
      assert.has_error(function() m:read(-1, 2) end,
        "guest address 0xffffffffffffffff (+2 bytes) is outside guest RAM")
      assert.has_error(function() m:u64(-4) end,
        "guest address 0xfffffffffffffffc (+8 bytes) is outside guest RAM")
    end)

    it("reject the 32-bit hole and ranges across it", function()
      local big = core.memory("5G")
      assert.has_error(function() big:u8(0xc0000000) end,
        "guest address 0xc0000000 (+1 bytes) is outside guest RAM")
      assert.has_error(function() big:read(0xbffffff0, 32) end,
        "guest address 0xbffffff0 (+32 bytes) is outside guest RAM")
      big:u8(0x100000000, 1)
      assert.equal(1, big:u8(0x100000000))
      big:close()
    end)
  end)

  describe(":close()", function()
    it("is idempotent and makes the object unusable", function()
      local m = core.memory("1M")
      m:close(); m:close()
      assert.has_error(function() m:u8(0) end, "attempt to use a closed vmlua.Memory")
      assert.equal("vmlua.Memory (closed)", tostring(m))
    end)

    it("works with <close>", function()
      local escaped
      do
        local m <close> = core.memory("1M")
        escaped = m
      end
      assert.has_error(function() escaped:size() end, "attempt to use a closed vmlua.Memory")
    end)
  end)

  it("has a readable tostring", function()
    assert.equal("vmlua.Memory (6144 MiB in 2 regions)", tostring(core.memory("6G")))
  end)
end)
