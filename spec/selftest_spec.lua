-- The selftest guest under the kvm backend: it checks from inside that
-- the ACPI tables and e820 map match what vmlua built, then powers off
-- through the FADT sleep register.
local vmlua = require "vmlua"
local env = require "helpers.env"

describe("selftest guest #kvm", function()
  local ok, why = env.kvm_selftest()
  if not ok then pending(why) return end

  for _, cpus in ipairs{ 1, 2 } do
    for _, mem in ipairs{ "256M", "5G" } do
      it(("passes with %d vCPU(s) and %s"):format(cpus, mem), function()
        local bytes = mem == "5G" and 5 * 1024 ^ 3 // 1 or 256 * 1024 ^ 2 // 1
        local vm = assert(vmlua.vm{
          backend = "kvm", kernel = env.selftest, memory = mem, cpus = cpus,
          cmdline = ("selftest.cpus=%d selftest.mem=%d"):format(cpus, bytes),
          console = "none",
        })
        vm:start()
        local reason, detail = vm:wait(120)
        local out = vm:output()
        vm:close()
        assert.equal("poweroff", reason, out)
        assert.equal("guest wrote 0x34 to the sleep control register", detail)
        assert.matches("selftest: PASS\n", out)
        assert.not_matches("FAIL", out)
        -- The guest saw the MADT with this many CPUs and RAM above 4 GiB.
        assert.matches("selftest: ok madt", out)
        if mem == "5G" then assert.matches("selftest: e820 0x100000000 ", out) end
      end)
    end
  end
end)

describe("selftest guest with virtio-mmio devices #kvm", function()
  local ok, why = env.kvm_selftest()
  if not ok then pending(why) return end

  it("drives a Lua rng and a Lua echo device through a round trip each", function()
    local rng = dofile("scripts/devices/rng.lua")(function(n) return ("\x5a\xa5"):rep(n // 2) end)
    local echo = dofile("scripts/devices/echo.lua")()
    local statuses = {}
    rng:on("status", function(_, new) statuses[#statuses + 1] = new end)
    local vm = assert(vmlua.vm{
      backend = "kvm", kernel = env.selftest, memory = "256M", cpus = 1,
      cmdline = "selftest.cpus=1 selftest.mem=268435456", console = "none",
      devices = { rng, echo },
    })
    vm:start()
    local reason = vm:wait(120)
    local out = vm:output()
    vm:close()
    assert.equal("poweroff", reason, out)
    assert.matches("selftest: ok dsdt %(\\_S5 SLP_TYP 5, 2 LNRO0005 virtio%-mmio devices%)", out)
    assert.matches("selftest: virtio 16 bytes: 5a a5 5a a5 5a a5 5a a5 5a a5 5a a5 5a a5 5a a5\n", out)
    assert.matches("selftest: ok virtio%-mmio device 4 at 0xd0000000 %(round trip", out)
    assert.matches("selftest: virtio 4 bytes: 70 69 6e 67\n", out)
    assert.matches("selftest: ok virtio%-mmio device 65535 at 0xd0001000 %(round trip", out)
    assert.matches("selftest: PASS\n", out)
    -- The Lua hooks saw the driver walk the status machine, then reset.
    assert.same({ 0, 1, 3, 11, 15, 0 }, statuses)
    assert.equal(1, rng.notifies)
    assert.equal(1, echo.notifies)
  end)

  it("sends selftest.vreq=N more requests, each one notify and two MMIO exits (make bench)", function()
    local rng = dofile("scripts/devices/rng.lua")(function(n) return ("\1"):rep(n) end)
    local function boot(more)
      local vm = assert(vmlua.vm{
        backend = "kvm", kernel = env.selftest, memory = "256M", cpus = 1,
        cmdline = "selftest.cpus=1 selftest.mem=268435456 selftest.vreq=" .. more, console = "none",
        devices = { rng },
      })
      vm:start()
      local reason = vm:wait(120)
      local out, mmio = vm:output(), vm:stats().exits.mmio
      vm:close()
      assert.equal("poweroff", reason, out)
      assert.matches("selftest: PASS\n", out)
      return out, mmio
    end
    local _, mmio0 = boot(0)
    local out, mmio = boot(40)
    assert.matches("selftest: ok virtio%-mmio device 4: 40 more requests", out)
    assert.equal(1 + 41, rng.notifies)          -- a round trip in each boot, 40 more
    assert.equal(80, mmio - mmio0)              -- status read and ack; the notify is an ioeventfd
  end)

  it("answers every access a vCPU posts without waiting out the loop's poll, on one CPU", function()
    -- Pinned to one CPU, the vCPU that the loop has just answered runs
    -- at once and posts its next access while the loop is between
    -- serving and polling.  The loop used to clear its wakeup there, so
    -- the vCPU sat out the whole poll timeout (3 of 3 runs, 60-160
    -- requests in).
    local out, status = env.sh(("taskset -c 0 %s spec/fixtures/one_cpu_requests.lua 500 60 2>&1")
      :format(env.vmlua))
    assert.equal(0, status, out)
    assert.equal("poweroff after 501 notifies\n", out)
  end)

  it("drives the C rng (vmlua.virtio.rng) through a round trip", function()
    local rng = require("vmlua.virtio").rng()
    local vm = assert(vmlua.vm{
      backend = "kvm", kernel = env.selftest, memory = "256M", cpus = 1,
      cmdline = "selftest.cpus=1 selftest.mem=268435456", console = "none",
      devices = { rng },
    })
    vm:start()
    local reason = vm:wait(120)
    local out = vm:output()
    vm:close()
    assert.equal("poweroff", reason, out)
    local bytes = out:match("selftest: virtio 16 bytes:([ %x]+)\n")
    assert.is_string(bytes, out)
    -- the guest prints each byte as %x: 16 numbers, not all zero
    local n, nonzero = 0, 0
    for b in bytes:gmatch("%x+") do
      n = n + 1
      if tonumber(b, 16) ~= 0 then nonzero = nonzero + 1 end
    end
    assert.equal(16, n)
    assert.is_true(nonzero > 0)
    assert.matches("selftest: ok virtio%-mmio device 4 at 0xd0000000 %(round trip", out)
    assert.matches("selftest: PASS\n", out)
    assert.equal(1, rng.notifies)
  end)

  it("reads the serial of a vmlua disk (GET_ID) over virtio-mmio", function()
    local img = env.tmpname()
    assert(os.execute("truncate -s 1M " .. img))
    local disk = assert(require("vmlua.virtio").blk{ path = img, serial = "ABC" })
    local vm = assert(vmlua.vm{
      backend = "kvm", kernel = env.selftest, memory = "256M", cpus = 1,
      cmdline = "selftest.cpus=1 selftest.mem=268435456", console = "none",
      devices = { disk },
    })
    vm:start()
    local reason = vm:wait(120)
    local out = vm:output()
    vm:close()
    os.remove(img)
    assert.equal("poweroff", reason, out)
    -- "ABC", zero padding to 20 bytes, then the status byte: OK
    assert.matches("selftest: virtio 21 bytes: 41 42 43" .. (" 0"):rep(17) .. " 0\n", out)
    assert.matches("selftest: ok virtio%-mmio device 2 at 0xd0000000 %(round trip", out)
    assert.matches("selftest: PASS\n", out)
  end)

  it("keeps going when a device's hook fails: the device needs a reset, the guest sees no answer", function()
    local errors = {}
    local bad = require("vmlua.virtio").device{ id = 4, queues = { 8 },
      notify = function() error("this device is broken") end,
      on_error = function(_, reason) errors[#errors + 1] = reason end }
    local vm = assert(vmlua.vm{
      backend = "kvm", kernel = env.selftest, memory = "256M",
      cmdline = "selftest.cpus=1 selftest.mem=268435456", console = "none",
      devices = { bad },
    })
    vm:start()
    local reason = vm:wait(120)
    local out = vm:output()
    vm:close()
    assert.equal("poweroff", reason, out)
    assert.matches("selftest: FAIL virtio: device 4 at 0xd0000000: no answer", out)
    -- The hook's error broke the device; the guest's reset mended it.
    assert.same({ "hook_error" }, errors)
    assert.is_nil(bad.broken)
  end)
end)
