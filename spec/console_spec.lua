-- vmlua.Console, and virtio.console driven by vmlua.driver with no VM.
local core = require "vmlua.core"
local env = require "helpers.env"
local console = require "vmlua.console"
local virtio = require "vmlua.virtio"
local driver = require "vmlua.driver"

describe("vmlua.Console", function()
  it("keeps the last `size` bytes, feeds a sink, a log and hooks", function()
    local got, hooked = {}, {}
    local log = env.tmpname()
    local con = assert(console.new{ output = function(d) got[#got + 1] = d end, log = log, size = 8 })
    con:on("output", function(c, d) hooked[#hooked + 1] = d; assert.equal(con, c) end)
    con:write("hello, ")
    con:write("")
    con:write("world")
    assert.equal("o, world", con:output())
    assert.same({ "hello, ", "world" }, got)
    assert.same({ "hello, ", "world" }, hooked)
    assert.equal(12, con.bytes)
    con:close()
    assert.equal("hello, world", assert(io.open(log)):read("a"))
    os.remove(log)
  end)

  it("names bad arguments, and says when it has no input", function()
    local con = console.new{ output = "none" }
    assert.has_error(function() con:send(1) end, "bad argument #1 to 'send' (string expected, got number)")
    assert.has_error(function() con:send("x") end, "console:send(): this console has no input")
    assert.has_error(function() con:on("input", print) end,
      "bad argument #1 to 'on' (unknown event 'input' (output))")
    assert.same({ nil, "/nonexistent/dir/log: No such file or directory" },
      { console.new{ log = "/nonexistent/dir/log" } })
  end)

  it("is driven by the send and wait functions it was made with, or by driven_by", function()
    assert.has_error(function() console.new{ send = 1 } end,
      "bad argument #1 to 'new' (option 'send' must be a function)")
    local turns, sent = 0, {}
    local con = console.new{ output = "none", send = function(s) sent[#sent + 1] = s; return #s end,
      wait = function() turns = turns + 1; return "poweroff", "done" end }
    assert.equal(2, con:send("hi"))
    assert.same({ "hi" }, sent)
    assert.has_error(function() con:expect("never", 5) end)
    assert.equal(1, turns)
    local other = 0
    assert.equal(con, con:driven_by(function() other = other + 1; return "poweroff", "done" end))
    assert.has_error(function() con:expect("never", 5) end)
    assert.equal(1, other)
    assert.has_error(function() con:driven_by("x") end,
      "bad argument #1 to 'driven_by' (function expected, got string)")
    local log = require("helpers.env").tmpname()
    local closed
    do
      local c <close> = console.new{ output = "none", log = log }
      c:write("kept")
      closed = c
    end
    assert.has_error(function() closed._log:write("x") end)   -- closed, or gone
    local f = assert(io.open(log))
    assert.equal("kept", f:read("a"))
    f:close()
    os.remove(log)
  end)

  describe(":run()", function()
    -- A console whose "guest" echoes what it is sent, as a shell at a
    -- terminal does, and never answers.
    -- `more`: what it prints after the echo; `wait`: its loop.
    local function echoing(more, wait)
      local con
      con = console.new{ output = "none", wait = wait or function() return nil end,
        send = function(s) con:write((s:gsub("\n", "\r\n")) .. (more or "")); return #s end }
      return con
    end

    it("quotes the command when it times out, not the markers the shell echoed", function()
      local con = echoing()
      assert.has_error(function() con:run("sleep 100 # it's slow", 0.2) end,
        'run: "sleep 100 # it\'s slow" did not finish within 0.2 s; the last lines were:\n  | ')
    end)

    it("shows what the command printed before the timeout", function()
      local con = echoing("__vmlua_S_1__\r\nhalf a line")
      local ok, err = pcall(function() con:run("cat", 0.2) end)
      assert.is_false(ok)
      assert.matches('run: "cat" did not finish within 0.2 s; the last lines were:\n  | half a line$', err)
      assert.not_matches("__vmlua", err)
    end)

    it("says the guest ended before the command did", function()
      local con = echoing(nil, function() return "poweroff", "linux.uml exited with status 0" end)
      assert.has_error(function() con:run("sleep 100", 5) end,
        'run: the guest ended (poweroff: linux.uml exited with status 0) before the end of "sleep 100"; ' ..
        "the last lines were:\n  | ")
    end)
  end)

  it("is the console of a VM too", function()
    local vm = assert(require("vmlua").vm{ backend = "uml", console = "none",
      kernel = "/bin/true" })   -- not started: any program will do
    assert.equal("vmlua.Console", getmetatable(vm.console).__name)
    vm.console:write("as if the guest said it")
    assert.equal("as if the guest said it", vm:output())
    vm:close()
  end)
end)

describe("vmlua.virtio.console", function()
  local mem
  before_each(function() mem = core.memory("4M") end)

  -- Post `n` receive buffers of `size` bytes on queue 0; returns a reader.
  local function post(d, n, size)
    local ring, addrs = d.rings[0], {}
    for _ = 1, n do
      local a = ring:alloc(size)
      addrs[ring:add({ { addr = a, len = size, write = true } })] = a
    end
    d:kick(0)
    return function()
      local out = {}
      for _, e in ipairs(ring:used_elems()) do out[#out + 1] = mem:read(addrs[e.id], e.len) end
      return out
    end
  end

  it("checks its options, naming them", function()
    assert.has_error(function() virtio.console{ output = "stderr" } end,
      "bad argument #1 to 'console' (option 'output' must be 'stdout', 'none', false or a function(data))")
    assert.has_error(function() virtio.console{ echo = true } end,
      "bad argument #1 to 'console' (unknown option 'echo' (output, log, size, input))")
    assert.has_error(function() virtio.console{ input = 0 } end,
      "bad argument #1 to 'console' (option 'input' must be \"stdin\", a file name or a function)")
    assert.same({ nil, "/nonexistent.txt: No such file or directory" },
      { virtio.console{ input = "/nonexistent.txt" } })
  end)

  it("gives the guest's writes to its Console", function()
    local seen = {}
    local dev, con = virtio.console{ output = function(data) seen[#seen + 1] = data end }
    assert.equal(virtio.ID.console, dev.id)
    local d = assert(driver.attach(dev, mem))
    assert.equal(1, #d:request(1, { "hello ", "from the guest\n" }))
    assert.equal("hello from the guest\n", con:output())
    assert.same({ "hello from the guest\n" }, seen)
    assert.equal(21, dev.out_bytes)
  end)

  it("takes input for the guest and hands it over as buffers come", function()
    local dev, con = virtio.console{ output = "none" }
    local d = assert(driver.attach(dev, mem))
    assert.equal(10, con:send("0123456789"))
    assert.equal(10, dev.pending)
    local read = post(d, 2, 4)
    assert.same({ "0123", "4567" }, read())
    assert.equal(2, dev.pending)
    read = post(d, 1, 64)
    assert.same({ "89" }, read())
    assert.equal(10, dev.in_bytes)
  end)

  it("asks an input function for more when the guest wants it", function()
    local calls = 0
    local dev = virtio.console{ output = "none", input = function()
      calls = calls + 1
      if calls <= 2 then return "chunk" .. calls end
    end }
    local d = assert(driver.attach(dev, mem))
    local read = post(d, 1, 64)
    assert.same({}, read())            -- nothing before the guest speaks
    assert.equal(0, calls)
    d:request(1, { "login: " })
    assert.same({ "chunk1" }, read())
    read = post(d, 1, 64)
    assert.same({ "chunk2" }, read())
    read = post(d, 1, 64)
    assert.same({}, read())
    assert.equal(3, calls)
  end)

  describe("a hostile guest", function()
    it("gets nothing from output chains with no readable bytes, and a full input is cut", function()
      local dev, con = virtio.console{ output = "none" }
      local d = assert(driver.attach(dev, mem))
      assert.equal(1, #d:request(1, { { write = 16 } }))
      assert.equal("", con:output())
      local mib = ("x"):rep(1 << 20)
      assert.equal(1 << 20, con:send(mib))
      assert.equal(0, con:send("more"))
      assert.equal(4, dev.in_dropped)
      assert.is_nil(dev.broken)
    end)
  end)
end)
