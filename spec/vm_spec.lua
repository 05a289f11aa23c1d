-- vmlua.VM on the kvm backend: the machine itself, with hand-made
-- programs (no kernel) and with the selftest guest.
local core = require "vmlua.core"
local env = require "helpers.env"
local x = require "helpers.x86code"

local ENTRY = 0x100000

-- A machine running `code` at 1 MiB in long mode.
local function machine(code, opts)
  opts = opts or {}
  local mem = assert(core.memory(opts.memory or "16M"))
  mem:write(ENTRY, code)
  local vm = assert(core.kvm_vm{ memory = mem, cpus = opts.cpus or 1 })
  assert(vm:start(ENTRY, 0x7000))
  return vm, mem
end

-- Poll until the machine exits or `timeout` passes; collect output.
local function run(vm, timeout)
  local out, deadline = {}, core.monotonic() + (timeout or 30)
  while core.monotonic() < deadline do
    local o, reason, detail = vm:poll(0.2)
    out[#out + 1] = o
    if reason then return table.concat(out), reason, detail end
  end
  return table.concat(out), nil, "timeout"
end

describe("vmlua.VM (kvm)", function()
  local ok, why = env.kvm()
  if not ok then
    pending("kvm backend unavailable here: " .. tostring(why))
    return
  end

  describe("bad arguments", function()
    it("names each one", function()
      assert.has_error(function() core.kvm_vm() end,
        "bad argument #1 to 'kvm_vm' (table expected, got no value)")
      assert.has_error(function() core.kvm_vm{} end,
        "bad argument #1 to 'kvm_vm' (field 'memory' is required)")
      assert.has_error(function() core.kvm_vm{ memory = 1 } end,
        "bad argument #1 to 'kvm_vm' (field 'memory' must be a vmlua.Memory)")
      local mem = core.memory("2M")
      assert.has_error(function() core.kvm_vm{ memory = mem, cpus = 0 } end,
        "bad argument #1 to 'kvm_vm' (field 'cpus' must be 1..64, got 0)")
      assert.has_error(function() core.kvm_vm{ memory = mem, cpus = "2" } end,
        "bad argument #1 to 'kvm_vm' (field 'cpus' must be an integer)")
      local vm = assert(core.kvm_vm{ memory = mem })
      assert.has_error(function() vm:poll(-1) end,
        "bad argument #1 to 'poll' (timeout must not be negative)")
      vm:close()
      assert.has_error(function() vm:poll() end, "attempt to use a closed vmlua.VM")
    end)
  end)

  it("answers supported() and hardware() with a reason", function()
    assert.is_true(core.kvm_supported())
    local hw, reason = core.kvm_hardware()
    if not hw then
      assert.matches("^no hardware virtualization %(.*%): stock kernels cannot boot here; use the uml backend$", reason)
    end
  end)

  it("prints on the UART and powers off through the sleep register", function()
    local vm = machine(x.print("hello\n") .. x.poweroff)
    local out, reason, detail = run(vm)
    assert.equal("hello\n", out)
    assert.equal("poweroff", reason)
    assert.equal("guest wrote 0x34 to the sleep control register", detail)
    local st = vm:stats()
    assert.equal(1, st.cpus)
    assert.is_true(st.exits.io >= 7)
    vm:close()
  end)

  it("reboots through the reset register and the i8042", function()
    local vm = machine(x.outb(0xcf9, 0x06) .. x.spin)
    assert.equal("reboot", select(2, run(vm)))
    vm:close()
    vm = machine(x.outb(0x64, 0xfe) .. x.spin)
    local _, reason, detail = run(vm)
    assert.equal("reboot", reason)
    assert.equal("guest pulsed reset through the i8042", detail)
    vm:close()
  end)

  it("reports a pvpanic as panic", function()
    local vm = machine(x.outb(0x505, 1) .. x.spin)
    assert.equal("panic", select(2, run(vm)))
    vm:close()
  end)

  it("ignores sleep types other than S5", function()
    local vm = machine(x.outb(0x600, (3 << 2) | 0x20) .. x.print("on\n") .. x.poweroff)
    local out, reason = run(vm)
    assert.equal("on\n", out)
    assert.equal("poweroff", reason)
    vm:close()
  end)

  it("takes console input", function()
    local vm = machine(x.echo_one .. x.print("\n") .. x.poweroff)
    vm:send("z")
    local out, reason = run(vm)
    assert.equal("z\n", out)
    assert.equal("poweroff", reason)
    vm:close()
  end)

  it("stops a spinning guest, and shows its registers", function()
    local vm = machine(x.spin, { cpus = 2 })
    local out, reason = vm:poll(0.3)
    assert.equal("", out)
    assert.is_nil(reason)
    assert.has_error(function() vm:regs(0) end, "vm:regs() needs a paused or stopped machine")
    vm:pause()
    local r = vm:regs(0)
    assert.equal(ENTRY, r.rip)
    assert.equal(0x500, r.efer & 0x500)  -- long mode
    vm:resume()
    vm:stop()
    assert.equal(ENTRY, vm:regs(0).rip)
    assert.equal(2, vm:stats().cpus)
    vm:close()
  end)

  it("keeps its Memory alive and busy while running", function()
    local vm, mem = machine(x.spin)
    assert.has_error(function() mem:close() end, "vmlua.Memory is in use by a running VM")
    vm:stop()
    mem:close()
    vm:close()
  end)
end)
