-- vmlua.virtio.blk: the C block device over real files, driven by
-- vmlua.driver with no VM, including requests a hostile driver makes.
local env = require "helpers.env"
local core = require "vmlua.core"
local virtio = require "vmlua.virtio"
local driver = require "vmlua.driver"

local IN, OUT, FLUSH, GET_ID, DISCARD, WRITE_ZEROES = 0, 1, 4, 8, 11, 13
local OK, IOERR, UNSUPP = 0, 1, 2
local F_RO, F_FLUSH, F_DISCARD, F_WRITE_ZEROES = 5, 9, 13, 14
local NEEDS_RESET = 64

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function spit(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

-- A 1 MiB image whose sector n is filled with the byte n % 251.
local function image()
  local path = env.tmpname()
  local t = {}
  for n = 0, 2047 do t[#t + 1] = string.char(n % 251):rep(512) end
  spit(path, table.concat(t))
  return path
end

local function header(type, sector) return string.pack("<I4I4I8", type, 0, sector) end

-- Sends one request; returns status, the data written before it, used len.
local function req(d, bufs)
  local used = d:request(0, bufs)
  assert(#used == 1, "the device answered " .. #used .. " requests")
  local data = used[1].data
  return data:byte(-1), data:sub(1, -2), used[1].len
end

describe("vmlua.virtio.blk", function()
  local mem, path, dev, d
  before_each(function()
    mem = core.memory("8M")
    path = image()
  end)
  after_each(function()
    if dev then dev:close() end
    dev, d = nil, nil
    os.remove(path)
  end)
  local function open(opts)
    opts = opts or {}
    opts.path = opts.path or path
    dev = assert(virtio.blk(opts))
    d = assert(driver.attach(dev, mem))
    return dev, d
  end

  describe("options", function()
    it("names each bad one", function()
      assert.has_error(function() virtio.blk() end,
        "bad argument #1 to 'blk' (table expected, got no value)")
      assert.has_error(function() virtio.blk{} end,
        "bad argument #1 to 'blk' (option 'path' must be the image's file name)")
      assert.has_error(function() virtio.blk{ path = path, rw = true } end,
        "bad argument #1 to 'blk' (unknown option 'rw' (path, readonly, cow, serial, label, queue))")
      assert.has_error(function() virtio.blk{ path = path, readonly = "yes" } end,
        "bad argument #1 to 'blk' (option 'readonly' must be a boolean)")
      assert.has_error(function() virtio.blk{ path = path, cow = 1 } end,
        "bad argument #1 to 'blk' (option 'cow' must be true (a temporary overlay) or an overlay file name)")
      assert.has_error(function() virtio.blk{ path = path, cow = true, readonly = true } end,
        "bad argument #1 to 'blk' (options 'readonly' and 'cow' exclude each other)")
      assert.has_error(function() virtio.blk{ path = path, serial = ("s"):rep(21) } end,
        "bad argument #1 to 'blk' (option 'serial' must be a string of at most 20 bytes)")
      assert.has_error(function() virtio.blk{ path = path, queue = 100 } end,
        "bad argument #1 to 'blk' (option 'queue' must be a power of 2 from 4 to 32768)")
    end)

    it("says what is wrong with the image", function()
      assert.same({ nil, "/nonexistent.img: No such file or directory" },
        { virtio.blk{ path = "/nonexistent.img" } })
      assert.same({ nil, "/tmp: Is a directory" }, { virtio.blk{ path = "/tmp" } })
      assert.same({ nil, "/dev/null: not a regular file or block device" },
        { virtio.blk{ path = "/dev/null" } })
      local odd = env.tmpname()
      spit(odd, ("x"):rep(1000))
      assert.same({ nil, odd .. ": size 1000 is not a whole number of 512-byte sectors" },
        { virtio.blk{ path = odd } })
      spit(odd, "")
      assert.same({ nil, odd .. ": empty image" }, { virtio.blk{ path = odd } })
      os.remove(odd)
    end)
  end)

  it("offers its size, features and limits in config space", function()
    open()
    assert.equal(2048, dev.sectors)
    assert.equal(2048, string.unpack("<I8", d:read_config(0, 8)))
    assert.equal(126, string.unpack("<I4", d:read_config(12, 4)))    -- seg_max
    assert.equal(512, string.unpack("<I4", d:read_config(20, 4)))    -- blk_size
    assert.equal(0, dev.features & (1 << F_RO))
    for _, f in ipairs{ F_FLUSH, F_DISCARD, F_WRITE_ZEROES } do
      assert.not_equal(0, dev.features & (1 << f))
    end
    local ro = assert(virtio.blk{ path = path, readonly = true })
    assert.not_equal(0, ro.features & (1 << F_RO))
    assert.equal(0, ro.features & (1 << F_DISCARD))
    ro:close()
  end)

  it("reads and writes sectors of the file", function()
    open()
    local st, data = req(d, { header(IN, 3), { write = 1024 + 1 } })
    assert.equal(OK, st)
    assert.equal(("\3"):rep(512) .. ("\4"):rep(512), data)
    st = req(d, { header(OUT, 10), ("A"):rep(512), ("B"):rep(512), { write = 1 } })
    assert.equal(OK, st)
    local file = slurp(path)
    assert.equal(("A"):rep(512) .. ("B"):rep(512), file:sub(10 * 512 + 1, 12 * 512))
    assert.equal(("\9"):rep(512), file:sub(9 * 512 + 1, 10 * 512))
    assert.equal(("\12"):rep(512), file:sub(12 * 512 + 1, 13 * 512))
    st, data = req(d, { header(IN, 10), { write = 512 }, { write = 512 }, { write = 1 } })
    assert.equal(OK, st)
    assert.equal(("A"):rep(512) .. ("B"):rep(512), data)
    assert.equal(2, dev.reads)
    assert.equal(1, dev.writes)
    assert.equal(1024, dev.bytes_written)
  end)

  it("answers GET_ID with its serial, and FLUSH after syncing", function()
    open{ serial = "disk-0042" }
    local st, id = req(d, { header(GET_ID, 0), { write = 21 } })
    assert.equal(OK, st)
    assert.equal("disk-0042" .. ("\0"):rep(11), id)
    assert.equal(OK, (req(d, { header(FLUSH, 0), { write = 1 } })))
    assert.equal(1, dev.flushes)
    dev:close()
    open()
    local _, named = req(d, { header(GET_ID, 0), { write = 21 } })
    assert.equal(path:match("[^/]+$"):sub(1, 20), (named:gsub("%z+$", "")))
  end)

  it("zeroes and discards ranges", function()
    open()
    local seg = string.pack("<I8I4I4", 4, 2, 0) .. string.pack("<I8I4I4", 100, 1, 1)
    assert.equal(OK, (req(d, { header(WRITE_ZEROES, 0), seg, { write = 1 } })))
    local file = slurp(path)
    assert.equal(("\0"):rep(1024), file:sub(4 * 512 + 1, 6 * 512))
    assert.equal(("\0"):rep(512), file:sub(100 * 512 + 1, 101 * 512))
    assert.equal(("\6"):rep(512), file:sub(6 * 512 + 1, 7 * 512))
    assert.equal(OK, (req(d, { header(DISCARD, 0), string.pack("<I8I4I4", 200, 8, 0), { write = 1 } })))
    assert.equal(#file, #slurp(path))
    assert.equal(1, dev.write_zeroes)
    assert.equal(1, dev.discards)
  end)

  describe("a hostile driver", function()
    it("gets IOERR or UNSUPP for each bad request, and the file is untouched", function()
      open()
      local before = slurp(path)
      local cases = {
        { "a header short of 16 bytes", IOERR, { "\0\0\0\0\0\0\0\0", { write = 513 } } },
        { "a read of part of a sector", IOERR, { header(IN, 0), { write = 100 + 1 } } },
        { "a write of part of a sector", IOERR, { header(OUT, 0), ("x"):rep(100), { write = 1 } } },
        { "a read past the end", IOERR, { header(IN, 2047), { write = 1024 + 1 } } },
        { "a write past the end", IOERR, { header(OUT, 2048), ("x"):rep(512), { write = 1 } } },
        { "a sector that wraps around", IOERR, { header(OUT, 0xffffffffffffffff), ("x"):rep(512), { write = 1 } } },
        { "a sector near 2^64 / 512", IOERR, { header(IN, 0x0080000000000000), { write = 513 } } },
        { "an unknown request type", UNSUPP, { header(99, 0), { write = 1 } } },
        { "zeroes with unknown flags", UNSUPP, { header(WRITE_ZEROES, 0), string.pack("<I8I4I4", 0, 1, 2), { write = 1 } } },
        { "a discard asking to unmap", UNSUPP, { header(DISCARD, 0), string.pack("<I8I4I4", 0, 1, 1), { write = 1 } } },
        { "zeroes past the end", IOERR, { header(WRITE_ZEROES, 0), string.pack("<I8I4I4", 2040, 16, 0), { write = 1 } } },
        { "zeroes with a torn range", IOERR, { header(WRITE_ZEROES, 0), ("\0"):rep(10), { write = 1 } } },
        { "zeroes with no range", IOERR, { header(WRITE_ZEROES, 0), { write = 1 } } },
        { "zeroes with 33 ranges", IOERR, { header(WRITE_ZEROES, 0), string.pack("<I8I4I4", 0, 1, 0):rep(33), { write = 1 } } },
      }
      for _, c in ipairs(cases) do
        local st = req(d, c[3])
        assert.equal(c[2], st, c[1])
      end
      assert.equal(before, slurp(path))
      assert.equal(11, dev.errors)
      assert.equal(3, dev.unsupported)
      assert.is_nil(dev.broken)
    end)

    it("gets nothing back for a chain with no byte to put the status in", function()
      open()
      local used = d:request(0, { header(IN, 0) })
      assert.equal(1, #used)
      assert.equal(0, used[1].len)
      assert.equal(1, dev.errors)
      assert.is_nil(dev.broken)
    end)

    it("cannot write a read-only disk", function()
      open{ readonly = true }
      local before = slurp(path)
      assert.equal(IOERR, (req(d, { header(OUT, 0), ("x"):rep(512), { write = 1 } })))
      assert.equal(IOERR, (req(d, { header(WRITE_ZEROES, 0), string.pack("<I8I4I4", 0, 1, 0), { write = 1 } })))
      local st, data = req(d, { header(IN, 1), { write = 513 } })
      assert.equal(OK, st)
      assert.equal(("\1"):rep(512), data)
      assert.equal(before, slurp(path))
    end)

    it("breaks the ring, not the host, with a buffer outside guest memory", function()
      open()
      local used = d:request(0, { header(IN, 0), { addr = 0x7ffe00, len = 0x1000, write = true } })
      assert.equal(0, #used)
      assert.equal(NEEDS_RESET, dev.status & NEEDS_RESET)
    end)
  end)

  describe("copy-on-write", function()
    it("never writes the master; a temporary overlay holds the writes", function()
      local before = slurp(path)
      open{ cow = true }
      assert.equal(OK, (req(d, { header(OUT, 5), ("C"):rep(512), { write = 1 } })))
      local st, data = req(d, { header(IN, 4), { write = 3 * 512 + 1 } })
      assert.equal(OK, st)
      -- the written sector, and its neighbours in the same cluster from the master
      assert.equal(("\4"):rep(512) .. ("C"):rep(512) .. ("\6"):rep(512), data)
      assert.equal(OK, (req(d, { header(WRITE_ZEROES, 0), string.pack("<I8I4I4", 1000, 300, 0), { write = 1 } })))
      st, data = req(d, { header(IN, 999), { write = 2 * 512 + 1 } })
      assert.equal(OK, st)
      assert.equal(("\246"):rep(512) .. ("\0"):rep(512), data)
      assert.equal(OK, (req(d, { header(FLUSH, 0), { write = 1 } })))
      assert.equal(before, slurp(path))
      dev:close()
      -- a fresh temporary overlay starts from the master again
      open{ cow = true }
      st, data = req(d, { header(IN, 5), { write = 513 } })
      assert.equal(OK, st)
      assert.equal(("\5"):rep(512), data)
    end)

    it("keeps a named overlay to reopen later over the same master", function()
      local before = slurp(path)
      local overlay = env.tmpname()
      os.remove(overlay)
      open{ cow = overlay }
      assert.equal(OK, (req(d, { header(OUT, 2047), ("Z"):rep(512), { write = 1 } })))
      assert.equal(OK, (req(d, { header(FLUSH, 0), { write = 1 } })))
      dev:close()
      open{ cow = overlay }
      local st, data = req(d, { header(IN, 2046), { write = 1024 + 1 } })
      assert.equal(OK, st)
      assert.equal(("\38"):rep(512) .. ("Z"):rep(512), data)     -- 2046 % 251 = 38
      dev:close()
      dev = nil
      assert.equal(before, slurp(path))
      -- the master changed: the overlay no longer fits it
      assert(os.execute("touch -d '2001-01-01' " .. path))
      local none, why = virtio.blk{ path = path, cow = overlay }
      assert.is_nil(none)
      assert.equal(overlay .. ": made over a different master (its size or modification time changed)", why)
      spit(overlay, ("junk"):rep(2048))
      none, why = virtio.blk{ path = path, cow = overlay }
      assert.is_nil(none)
      assert.equal(overlay .. ": not a vmlua overlay", why)
      assert.same({ nil, path .. ": the overlay cannot be the master itself" },
        { virtio.blk{ path = path, cow = path } })
      os.remove(overlay)
    end)
  end)
end)
