-- vmlua.VhostUser: a device served over a vhost-user socket, against a
-- frontend the spec runs (build/vu-peer), well-behaved or hostile.
local core = require "vmlua.core"
local virtio = require "vmlua.virtio"
local env = require "helpers.env"

local PEER = env.build .. "/vu-peer"

local function exists(p)
  local f = io.open(p, "rb")
  if f then f:close() end
  return f ~= nil
end

local function socket_path()
  local p = env.tmpname()
  os.remove(p)
  return p .. ".vhost"
end

-- Run the peer in the background against srv, serving it meanwhile;
-- return its output once it prints "end" (or fail after `secs`).
local function run_peer(srv, mode, secs)
  local out = env.tmpname()
  assert(os.execute(("%s %s %s > %s 2>&1 &"):format(PEER, srv.path, mode, out)))
  local deadline, text = os.time() + (secs or 60)
  repeat
    srv:poll(0.05)
    local f = io.open(out, "rb")
    text = f and f:read("a") or ""
    if f then f:close() end
  until text:match("\nend\n") or text:match("^end\n") or text:match("failed:") or os.time() > deadline
  os.remove(out)
  return text
end

local function rng(byte)
  return dofile("scripts/devices/rng.lua")(function(n) return byte:rep(n) end)
end

describe("vmlua.VhostUser", function()
  if not exists(PEER) then
    pending(PEER .. " is not built: run make test")
    return
  end

  it("serves a Lua device to a frontend that shares its memory", function()
    local dev = rng("\x5a")
    local statuses = {}
    dev:on("status", function(_, new) statuses[#statuses + 1] = new end)
    local srv = assert(core.vhost_user{ device = dev, path = socket_path() })
    assert.equal("vmlua.VhostUser", getmetatable(srv).__name)
    local out = run_peer(srv, "good")
    assert.matches("features 0x1%x%x%x%x%x%x%x%x\n", out)   -- VERSION_1 and bit 30
    assert.matches("protocol features 0x4228\n", out)       -- REPLY_ACK, BACKEND_REQ, CONFIG, INBAND
    assert.matches("used idx 1, 16 bytes: 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 5a\n", out)
    -- The frontend's RAM, as the device saw it: the peer's 1 MiB memfd.
    local regions = srv.memory:regions()
    assert.equal(1, #regions)
    assert.equal(0x100000, regions[1].gpa)
    assert.equal(0x100000, regions[1].size)
    assert.equal(string.rep("\x5a", 16), srv.memory:read(0x101000, 16))
    -- No status register over vhost-user: features and the first running
    -- ring stand for it.
    assert.same({ 3, 11, 15 }, statuses)
    assert.is_true(srv.connected)
    assert.is_nil(srv.last_error)
    local path = srv.path
    srv:close()       -- hangs up: the device is reset
    assert.equal(0, dev.status)
    assert.is_false(exists(path), "the socket is removed on close")
  end)

  -- Found by fuzz/fuzz_vhost_user.c: taking features again reset the
  -- device, but the server still counted the ring as running, so it was
  -- never served again and could not be set up anew.
  it("keeps a running ring served when the frontend sets its features again", function()
    for _, dev in ipairs{ rng("\x77"), core.rng() } do
      local srv = assert(core.vhost_user{ device = dev, path = socket_path() })
      local out = run_peer(srv, "renegotiate")
      assert.matches("used idx 1, 16 bytes:", out)
      assert.matches("used idx 2, 16 bytes:", out)
      assert.not_matches("failed:", out)
      assert.is_nil(srv.last_error)
      assert.equal(15, dev.status)     -- DRIVER_OK again, not NEEDS_RESET
      srv:close()
    end
  end)

  it("drops each malformed message's connection with a reason and keeps serving", function()
    local dev = rng("\x33")
    local srv = assert(core.vhost_user{ device = dev, path = socket_path(), quiet = true })
    local out = run_peer(srv, "hostile", 120)
    assert.matches("20 of 20 dropped\n", out)
    assert.not_matches("NOT dropped", out)
    assert.equal(20, srv.drops)
    assert.equal("SET_MEM_TABLE: region 0 of 1099511627776 bytes makes more than 68719476736 bytes of RAM",
                 srv.last_error)
    -- After all that, a good frontend is served as before.
    out = run_peer(srv, "good")
    assert.matches("used idx 1, 16 bytes: 33 33 33", out)
    srv:close()
  end)

  it("names each reason a message is refused", function()
    -- The reasons, as the hostile peer provokes them, one at a time.
    local dev = rng("\0")
    local seen = {}
    local srv = assert(core.vhost_user{ device = dev, path = socket_path(), quiet = true })
    local out = env.tmpname()
    assert(os.execute(("%s %s hostile > %s 2>&1 &"):format(PEER, srv.path, out)))
    local deadline, drops = os.time() + 120, 0
    while drops < 20 and os.time() < deadline do
      srv:poll(0)       -- one round at a time: at most one drop in each
      if srv.drops > drops then
        drops = srv.drops
        seen[#seen + 1] = srv.last_error
      end
    end
    os.remove(out)
    srv:close()
    local want = {
      "GET_FEATURES: bad header flags 0x2 (version 1, not a reply)",
      "SET_FEATURES: payload of 100000 bytes (at most 512)",
      "truncated message header (not whole within 1 s)",
      "SET_FEATURES: truncated payload (8 bytes announced, not whole within 1 s)",
      "unknown request (99) is not supported",
      "SET_VRING_NUM before SET_OWNER",
      "SET_FEATURES: payload of 4 bytes (8 expected)",
      "SET_VRING_NUM: no ring 7 (the device has 1)",
      "SET_VRING_NUM: ring 0 size 3 (a power of 2, at most 32768)",
      "SET_MEM_TABLE: 9 regions (1 to 8)",
      "SET_MEM_TABLE: 0 file descriptors for 1 regions",
      "SET_MEM_TABLE: region 0 runs past the end of its file (0 + 1048576 > 4096 bytes)",
      "SET_MEM_TABLE: region 0 is not backed by a file",
      "SET_VRING_ADDR: ring 0 descriptor table 0x1000 is not in the memory table",
      "SET_VRING_KICK: 2 file descriptors (1 expected)",
      "GET_CONFIG: 300 bytes at offset 0 (config space is 256 bytes)",
      "GET_FEATURES: carries 1 file descriptors (none expected)",
      "SET_FEATURES: 0x1000000000000000 has bits that were not offered (0x100000000)",
      -- /dev/zero is always readable: polled as a kick fd, a busy loop.
      "SET_VRING_KICK: ring 0 kick fd is not an eventfd",
      -- A terabyte of "RAM" is an attack on our address space.
      "SET_MEM_TABLE: region 0 of 1099511627776 bytes makes more than 68719476736 bytes of RAM",
    }
    assert.same(want, seen)
  end)

  describe("against a frontend that fights dirty", function()
    -- The frontend's RAM is a file it can truncate after we mapped it;
    -- a touch past the new end is SIGBUS, which killed vmlua.  Now the
    -- device needs a reset, the script gets an error, vmlua goes on.
    for _, size in ipairs{ 0, 4096 } do
      it("survives its memory shrinking to " .. size .. " bytes after SET_MEM_TABLE", function()
        for i, dev in ipairs{ rng("\x42"), core.rng() } do
          local srv = assert(core.vhost_user{ device = dev, path = socket_path(), quiet = true })
          local out = run_peer(srv, "shrink " .. size)
          assert.matches("used idx 1, 16 bytes:", out)
          assert.matches("shrunk to " .. size .. " bytes\n", out)
          assert.is_true(srv.connected)
          if size == 0 or i == 1 then
            -- The rings (size 0) or the buffer (4096) are gone.  (The C
            -- rng fills buffers with getrandom(2), which gets EFAULT,
            -- not SIGBUS, for a lost buffer: it writes nothing.)
            assert.equal("memory_gone", dev.broken)
          end
          assert.has_error(function() srv.memory:read(0x101000, 16) end,
            "guest address 0x101000 (+16 bytes): the memory is gone (its file was truncated)")
          -- A new frontend, a fresh start.
          out = run_peer(srv, "good")
          assert.matches("used idx 1, 16 bytes:", out)
          srv:close()
        end
      end)
    end

    it("drops a message that trickles in, without waiting for it", function()
      local srv = assert(core.vhost_user{ device = rng("\1"), path = socket_path(), quiet = true })
      local out = env.tmpname()
      assert(os.execute(("%s %s slow > %s 2>&1 &"):format(PEER, srv.path, out)))
      local longest, deadline, text = 0, os.time() + 30
      repeat
        local t = core.monotonic()
        srv:poll(0.05)
        longest = math.max(longest, core.monotonic() - t)
        local f = io.open(out, "rb")
        text = f and f:read("a") or ""
        if f then f:close() end
      until text:match("end\n") or os.time() > deadline
      os.remove(out)
      -- One byte every 0.7 s: the header is late after a second.
      assert.matches("dropped after 2 bytes\n", text)
      assert.equal("truncated message header (not whole within 1 s)", srv.last_error)
      assert.is_true(longest < 0.5, ("one poll took %.2f s"):format(longest))
      srv:close()
    end)

    it("serves one kick for 32768 chains of 1 MiB in turns, hearing others in between", function()
      local busy = rng("\x11")
      local srv1 = assert(core.vhost_user{ device = busy, path = socket_path(), quiet = true })
      local srv2 = assert(core.vhost_user{ device = rng("\x22"), path = socket_path(), quiet = true })
      local o1, o2 = env.tmpname(), env.tmpname()
      assert(os.execute(("%s %s flood > %s 2>&1 &"):format(PEER, srv1.path, o1)))
      local function read(p)
        local f = io.open(p, "rb")
        local t = f and f:read("a") or ""
        if f then f:close() end
        return t
      end
      -- Until the flood is under way.
      local deadline = os.time() + 30
      repeat srv1:poll(0.05) until read(o1):match("kicked") or os.time() > deadline
      assert(os.execute(("%s %s good > %s 2>&1 &"):format(PEER, srv2.path, o2)))
      local longest, text = 0
      deadline = os.time() + 30
      repeat
        local t = core.monotonic()
        srv1:poll(0)
        longest = math.max(longest, core.monotonic() - t)
        srv2:poll(0.01)
        text = read(o2)
      until text:match("\nend\n") or text:match("failed:") or os.time() > deadline
      os.remove(o1)
      os.remove(o2)
      assert.matches("used idx 1, 16 bytes: 22 22 22", text)
      assert.is_true(longest < 1, ("one turn took %.2f s"):format(longest))
      assert.is_true(busy.notifies > 1, "served in more than one turn")
      srv1:close()
      srv2:close()
    end)

    it("refuses a chain whose frontend hung up, instead of writing into unmapped memory", function()
      local held
      local dev = virtio.device{ id = virtio.ID.rng, queues = { 64 },
        notify = function(_, q) held = held or q:pop() end }
      local srv = assert(core.vhost_user{ device = dev, path = socket_path(), quiet = true })
      local out = run_peer(srv, "hangup")
      assert.matches("hung up", out)
      local deadline = os.time() + 10
      while srv.connected and os.time() < deadline do srv:poll(0.05) end
      assert.is_false(srv.connected)
      assert.truthy(held)
      assert.has_error(function() held:write("x") end,
        "attempt to use a chain whose memory is gone")
      assert.has_error(function() held:read() end,
        "attempt to use a chain whose memory is gone")
      assert.has_error(function() dev:queue(0):push(held) end,
        "attempt to use a chain whose memory is gone")
      srv:close()
    end)
  end)

  it("checks its arguments", function()
    assert.has_error(function() core.vhost_user{ path = "/tmp/x" } end,
      "bad argument #1 to 'vhost_user' (field 'device' must be a vmlua.Device)")
    local dev = virtio.device{ id = 4, queues = { 8 } }
    assert.has_error(function() core.vhost_user{ device = dev } end,
      "bad argument #1 to 'vhost_user' (field 'path' must be a string)")
    local srv, err = core.vhost_user{ device = dev, path = ("/tmp/" .. ("x"):rep(120)) }
    assert.is_nil(srv)
    assert.matches("socket path longer than 107 bytes", err)
    srv, err = core.vhost_user{ device = dev, path = "spec/vhost_user_spec.lua" }
    assert.is_nil(srv)
    assert.equal("spec/vhost_user_spec.lua: exists and is not a socket", err)
    srv = assert(core.vhost_user{ device = dev, path = socket_path() })
    assert.has_error(function() core.vhost_user{ device = dev, path = socket_path() } end,
      "bad argument #1 to 'vhost_user' (field 'device' is already on a transport)")
    assert.has_error(function() srv:poll(-1) end,
      "bad argument #1 to 'poll' (timeout must not be negative)")
    srv:close()
    assert.has_error(function() srv:poll() end, "attempt to use a closed vmlua.VhostUser")
    assert.is_true(srv.closed)
  end)
end)
