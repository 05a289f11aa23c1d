-- ACPI tables: what a guest reads to learn its CPUs, power and devices.
local core = require "vmlua.core"
local acpi = require "helpers.acpi"

local function build(opts, size)
  local mem = core.memory(size or "64M")
  local rsdp = assert(core.acpi(mem, opts))
  return acpi.parse(mem, rsdp), mem, rsdp
end

describe("acpi()", function()
  it("puts the RSDP at 0xE0000 with both checksums", function()
    local t, _, rsdp = build{ cpus = 1 }
    assert.equal(0xe0000, rsdp)
    assert.equal(2, t.rsdp.revision)
    assert.is_true(t.rsdp.checksum_ok)
  end)

  it("checksums every table and lists FADT and MADT in the XSDT", function()
    local t = build{ cpus = 2 }
    for _, sig in ipairs{ "XSDT", "FACP", "APIC", "DSDT" } do
      assert.is_truthy(t.tables[sig], sig .. " missing")
      assert.is_true(t.tables[sig].checksum_ok, sig .. " checksum")
    end
    assert.equal(276, t.tables.FACP.length)
    assert.equal(6, t.tables.FACP.revision)
  end)

  it("makes a hardware-reduced FADT with sleep and reset registers", function()
    local f = build{ cpus = 1 }.fadt
    assert.equal(1 << 20, f.flags & (1 << 20))  -- HW_REDUCED_ACPI
    assert.equal(1 << 10, f.flags & (1 << 10))  -- RESET_REG_SUP
    assert.same({ space = 1, width = 8, address = 0x600 }, f.sleep_control)
    assert.same({ space = 1, width = 8, address = 0x601 }, f.sleep_status)
    assert.same({ space = 1, width = 8, address = 0xcf9 }, f.reset_reg)
    assert.equal(6, f.reset_value)
    assert.equal(f.dsdt, f.dsdt32)
  end)

  for _, n in ipairs{ 1, 2, 8, 255 } do
    it(("declares %d CPU(s), the IOAPIC and the PIT override in the MADT"):format(n), function()
      local m = build{ cpus = n }.madt
      assert.equal(n, m.cpus)
      assert.equal(0xfee00000, m.lapic_addr)
      assert.equal(1, #m.ioapics)
      assert.same({ id = n % 256, addr = 0xfec00000, gsi_base = 0 }, m.ioapics[1])
      assert.same({ { irq = 0, gsi = 2 } }, m.overrides)
      for i = 1, n do assert.equal(i - 1, m.apic_ids[i]) end
    end)
  end

  it("names \\_S5 with SLP_TYP 5 and the serial port in the DSDT", function()
    local d = build{ cpus = 1 }.dsdt
    assert.equal(5, d.s5_typ)
    assert.equal(1, #d.devices)
    local com = d.devices[1]
    assert.equal("COM1", com.name)
    assert.equal(0x0105d041, com._HID)
    assert.equal(0x3f8, com.io)
    assert.equal(4, com.irq)
  end)

  for _, n in ipairs{ 0, 1, 3, 32 } do
    it(("declares %d virtio-mmio device(s) as LNRO0005"):format(n), function()
      local mmio = {}
      for i = 1, n do
        mmio[i] = { base = 0xd0000000 + (i - 1) * 0x1000, size = 0x200, gsi = 4 + i % 20 }
      end
      local d = build{ cpus = 1, mmio = mmio }.dsdt
      local found = {}
      for _, dev in ipairs(d.devices) do
        if dev._HID == "LNRO0005" then found[#found + 1] = dev end
      end
      assert.equal(n, #found)
      for i, dev in ipairs(found) do
        assert.equal(i - 1, dev._UID)
        assert.equal(mmio[i].base, dev.base)
        assert.equal(mmio[i].size, dev.size)
        assert.equal(mmio[i].gsi, dev.gsi)
      end
    end)
  end

  it("decodes with iasl, when acpica-tools is installed", function()
    if os.execute("command -v iasl >/dev/null 2>&1") ~= true then
      pending("iasl not installed (apt-get install acpica-tools)")
      return
    end
    local t, mem = build{ cpus = 2, mmio = { { base = 0xd0000000, size = 0x200, gsi = 5 } } }
    local dir = os.tmpname(); os.remove(dir); os.execute("mkdir -p " .. dir)
    local f = assert(io.open(dir .. "/dsdt.dat", "wb"))
    f:write(mem:read(t.tables.DSDT.addr, t.tables.DSDT.length)); f:close()
    local p = io.popen("cd " .. dir .. " && iasl -d dsdt.dat >/dev/null 2>&1 && cat dsdt.dsl")
    local dsl = p:read("a"); p:close()
    os.execute("rm -rf " .. dir)
    assert.matches('Name %(_S5, Package', dsl)
    assert.matches('"LNRO0005"', dsl)
    assert.matches("Memory32Fixed %(ReadWrite,%s*0xD0000000", dsl)
  end)

  describe("bad arguments", function()
    local mem = core.memory("64M")
    it("names each one", function()
      assert.has_error(function() core.acpi(1, {}) end,
        "bad argument #1 to 'acpi' (vmlua.Memory expected, got number)")
      assert.has_error(function() core.acpi(mem) end,
        "bad argument #2 to 'acpi' (table expected, got no value)")
      assert.has_error(function() core.acpi(mem, {}) end,
        "bad argument #2 to 'acpi' (field 'cpus' is required)")
      assert.has_error(function() core.acpi(mem, { cpus = "2" }) end,
        "bad argument #2 to 'acpi' (field 'cpus' must be an integer)")
      assert.has_error(function() core.acpi(mem, { cpus = 0 }) end,
        "bad argument #2 to 'acpi' (field 'cpus' must be 1..255, got 0)")
      assert.has_error(function() core.acpi(mem, { cpus = 256 }) end,
        "bad argument #2 to 'acpi' (field 'cpus' must be 1..255, got 256)")
      assert.has_error(function() core.acpi(mem, { cpus = 1, x = 1 }) end,
        "bad argument #2 to 'acpi' (unknown option 'x')")
      assert.has_error(function() core.acpi(mem, { cpus = 1, mmio = { 5 } }) end,
        "bad argument #2 to 'acpi' (mmio[1] must be a table)")
      assert.has_error(function() core.acpi(mem, { cpus = 1, mmio = { { base = 0, size = 0, gsi = 5 } } }) end,
        "bad argument #2 to 'acpi' (mmio[1] needs base >= 0, size > 0 and gsi 0..23)")
    end)
  end)
end)
