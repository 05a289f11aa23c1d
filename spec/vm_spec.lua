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

-- The Lua layer over it: options, states, events, console watching.
describe("vmlua.vm()", function()
  local vmlua = require "vmlua"
  local images = require "helpers.images"
  local ok, why = env.kvm()

  -- An ELF kernel whose code is `code`, at 1 MiB.
  local dir = images.tmpdir()
  local function kernel(name, code)
    return dir:write(name, images.elf64{ entry = ENTRY,
      segments = { { paddr = ENTRY, data = code } } })
  end
  teardown(function() dir:remove() end)

  describe("bad arguments", function()
    it("names each one", function()
      assert.has_error(function() vmlua.vm() end,
        "bad argument #1 to 'vm' (table expected, got nil)")
      assert.has_error(function() vmlua.vm{ backend = "kvm" } end,
        "bad argument #1 to 'vm' (option 'kernel' is required)")
      assert.has_error(function() vmlua.vm{ kernel = "k", color = "red" } end,
        "bad argument #1 to 'vm' (unknown option 'color')")
      assert.has_error(function() vmlua.vm{ kernel = "k", cpus = 0 } end,
        "bad argument #1 to 'vm' (option 'cpus' must be a positive integer)")
      assert.has_error(function() vmlua.vm{ kernel = "k", memory = {} } end,
        "bad argument #1 to 'vm' (option 'memory' must be a size such as '256M' or a number of bytes)")
      assert.has_error(function() vmlua.vm{ kernel = "k", backend = "xen" } end,
        "bad argument #1 to 'vm' (option 'backend' must be 'auto', 'kvm' or 'uml', got 'xen')")
      assert.has_error(function() vmlua.vm{ kernel = "k", console = 1 } end,
        "bad argument #1 to 'vm' (option 'console' must be 'stdout', 'none', false or a function)")
    end)

    it("refuses a memory size the backend cannot boot in, before anything starts", function()
      assert.has_error(function() vmlua.vm{ backend = "uml", memory = "0" } end,
        "bad argument #1 to 'vm' (option 'memory' is '0', but the uml backend needs at least 48M)")
      assert.has_error(function() vmlua.vm{ backend = "uml", memory = "16M" } end,
        "bad argument #1 to 'vm' (option 'memory' is '16M', but the uml backend needs at least 48M)")
      assert.has_error(function() vmlua.vm{ backend = "kvm", kernel = "k", memory = 0 } end,
        "bad argument #1 to 'vm' (option 'memory' is '0', but the kvm backend needs at least 4M)")
    end)

    it("points at the caller's line", function()
      local line = debug.getinfo(1, "l").currentline + 1
      local fine, err = pcall(function() vmlua.vm{ kernel = "k", color = "red" } end)
      assert.is_false(fine)
      assert.equal(("spec/vm_spec.lua:%d: bad argument #1 to 'vm' (unknown option 'color')"):format(line), err)
      line = debug.getinfo(1, "l").currentline + 1
      fine, err = pcall(function() vmlua.vm{ backend = "uml", memory = "1M" } end)
      assert.is_false(fine)
      assert.matches(("^spec/vm_spec%%.lua:%d: bad argument #1 to 'vm'"):format(line), err)
    end)
  end)

  if not ok then pending("kvm backend unavailable here: " .. tostring(why)) return end

  it("returns nil and the loader's message for a bad kernel", function()
    local vm, err = vmlua.vm{ backend = "kvm", kernel = "/nonexistent" }
    assert.is_nil(vm)
    assert.equal("/nonexistent: cannot open: No such file or directory", err)
  end)

  it("walks stopped -> starting -> running -> stopping -> stopped and fires exit", function()
    local vm = assert(vmlua.vm{ backend = "kvm", kernel = kernel("off", x.print("bye\n") .. x.poweroff),
                                memory = "16M", console = "none" })
    local states, exits, seen = {}, {}, {}
    vm:on("state", function(_, new, old) states[#states + 1] = old .. ">" .. new end)
    vm:on("exit", function(_, reason, detail) exits[#exits + 1] = reason .. ": " .. detail end)
    vm:on("output", function(_, data) seen[#seen + 1] = data end)
    assert.equal("stopped", vm.state)
    assert.equal(vm, vm:start())
    assert.equal("poweroff", (vm:wait(30)))
    assert.same({ "stopped>starting", "starting>running", "running>stopping", "stopping>stopped" }, states)
    assert.same({ "poweroff: guest wrote 0x34 to the sleep control register" }, exits)
    assert.equal("bye\n", table.concat(seen))
    assert.equal("bye\n", vm:output())
    assert.equal("poweroff", vm.exit_reason)
    assert.has_error(function() vm:start() end, "vm:start(): the machine is stopped (exited: poweroff)")
    vm:close()
  end)

  it("turns a kernel panic line on the console into exit reason panic", function()
    local vm = assert(vmlua.vm{ backend = "kvm", kernel = kernel("panic",
      x.print("[ 1.0] Kernel panic - not syncing: VFS: no root\n") .. x.spin),
      memory = "16M", console = "none" })
    vm:start()
    local reason, detail = vm:wait(30)
    assert.equal("panic", reason)
    assert.equal("Kernel panic - not syncing: VFS: no root", detail)
    vm:close()
  end)

  it("times out, can be paused and resumed, and stops", function()
    local vm = assert(vmlua.vm{ backend = "kvm", kernel = kernel("spin", x.spin), memory = "16M", console = "none" })
    vm:start()
    assert.same({ nil, "timeout" }, { vm:wait(0.2) })
    vm:pause()
    assert.equal("paused", vm.state)
    assert.equal(ENTRY, vm:regs().rip)
    vm:resume()
    assert.equal("running", vm.state)
    vm:stop()
    assert.equal("stopped", vm.exit_reason)
    vm:close()
  end)

  it("sends console input to the guest", function()
    local vm = assert(vmlua.vm{ backend = "kvm", kernel = kernel("echo", x.echo_one .. x.print("\n") .. x.poweroff),
                                memory = "16M", console = "none" })
    vm:start()
    vm:send("Q")
    assert.equal("poweroff", (vm:wait(30)))
    assert.equal("Q\n", vm:output())
    vm:close()
  end)

  it("writes a console log", function()
    local log = dir:path("console.log")
    local vm = assert(vmlua.vm{ backend = "kvm", kernel = kernel("log", x.print("logged\n") .. x.poweroff),
                                memory = "16M", console = "none", log = log })
    vm:start(); vm:wait(30); vm:close()
    local f = assert(io.open(log)); local text = f:read("a"); f:close()
    assert.equal("logged\n", text)
  end)
end)
