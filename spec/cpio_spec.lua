-- vmlua.cpio: newc archives for initramfs, written from Lua.
local cpio = require "vmlua.cpio"
local env = require "helpers.env"

-- The entries of a newc archive: { name, mode, data } in order.
local function entries(s)
  local out, pos = {}, 1
  while pos <= #s do
    assert.equal("070701", s:sub(pos, pos + 5))
    local field = function(i) return tonumber(s:sub(pos + 6 + 8 * i, pos + 13 + 8 * i), 16) end
    local mode, size, namesize = field(1), field(6), field(11)
    local name = s:sub(pos + 110, pos + 110 + namesize - 2)
    local data_at = pos + 110 + namesize
    data_at = data_at + (4 - (data_at - 1) % 4) % 4
    out[#out + 1] = { name = name, mode = mode, data = s:sub(data_at, data_at + size - 1) }
    pos = data_at + size
    pos = pos + (4 - (pos - 1) % 4) % 4
    if name == "TRAILER!!!" then break end
  end
  return out
end

describe("vmlua.cpio", function()
  it("writes newc entries with 4-byte padding and a trailer", function()
    local s = cpio.new():dir("etc"):file("/etc/motd", "hello\n"):symlink("sh", "busybox"):finish()
    assert.equal(0, #s % 4)
    local e = entries(s)
    assert.same({ "etc", "etc/motd", "sh", "TRAILER!!!" },
      { e[1].name, e[2].name, e[3].name, e[4].name })
    assert.equal(0x41ed, e[1].mode)
    assert.equal(0x81a4, e[2].mode)
    assert.equal("hello\n", e[2].data)
    assert.equal(0xa1ff, e[3].mode)
    assert.equal("busybox", e[3].data)
  end)

  it("refuses an empty name or one holding NUL", function()
    assert.has_error(function() cpio.new():file("", "x") end)
    assert.has_error(function() cpio.new():file("a\0b", "x") end)
    assert.has_error(function() cpio.new():file("a", 42) end,
      "bad argument #2 to 'file' (string expected, got number)")
  end)

  it("names its objects", function()
    assert.matches("^vmlua.cpio.Archive: ", tostring(cpio.new()))
  end)

  it("writes a file, and says so when the disk is full", function()
    local path = env.tmpname()
    assert.is_true(cpio.new():file("x", "y"):write(path))
    local f = assert(io.open(path, "rb"))
    assert.equal("x", entries(f:read("a"))[1].name)
    f:close()
    os.remove(path)
    local ok, err = cpio.new():file("big", ("x"):rep(1 << 20)):write("/dev/full")
    assert.is_nil(ok)
    assert.matches("^/dev/full: .*No space left on device", err)
  end)
end)
