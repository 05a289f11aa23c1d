-- ACPI tables: what a guest reads to learn its CPUs, power and devices.
local env = require "helpers.env"
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
    local t, mem = build{ cpus = 2 }
    assert.equal("RSD PTR ", mem:read(0xe0000, 8))
    assert.equal("VMLUA ", mem:read(0xe0000 + 9, 6))
    assert.equal(36, mem:u32(0xe0000 + 20))
    local n = 0
    for sig, tb in pairs(t.tables) do
      n = n + 1
      assert.equal(sig, mem:read(tb.addr, 4))
      assert.is_true(tb.checksum_ok, sig .. " checksum")
      assert.is_true(tb.addr >= 0xe0000 and tb.addr + tb.length <= 0x100000, sig .. " outside the ACPI area")
    end
    assert.equal(4, n)
    for _, sig in ipairs{ "XSDT", "FACP", "APIC", "DSDT" } do
      assert.is_truthy(t.tables[sig], sig .. " missing")
    end
    assert.equal(t.rsdp.xsdt, t.tables.XSDT.addr)
    assert.equal(52, t.tables.XSDT.length)   -- two entries
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
    assert.equal(0xe1000, f.dsdt)
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

  it("names \\_S5 with SLP_TYP 5, the serial port and pvpanic in the DSDT", function()
    local d = build{ cpus = 1 }.dsdt
    assert.equal(5, d.s5_typ)
    assert.same({ 5, 5, 0, 0 }, d.s5)
    assert.equal(2, #d.devices)
    local com, pev = d.devices[1], d.devices[2]
    assert.equal("COM1", com.name)
    assert.equal("PNP0501", com.hid)
    assert.equal(0, com.uid)
    assert.equal(0x3f8, com.io)
    assert.equal(8, com.io_len)
    assert.equal(4, com.irq)
    assert.equal("PEVT", pev.name)
    assert.equal("QEMU0001", pev.hid)
    assert.equal(0x505, pev.io)
    assert.equal(1, pev.io_len)
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
        assert.equal(("VR%02X"):format(i - 1), dev.name)
        assert.equal(i - 1, dev.uid)
        assert.equal(0x03, dev.irq_flags)  -- consumer, edge, active high, exclusive
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
    local dir = env.tmpdir()
    local f = assert(io.open(dir .. "/dsdt.dat", "wb"))
    f:write(mem:read(t.tables.DSDT.addr, t.tables.DSDT.length)); f:close()
    local p = io.popen("cd " .. dir .. " && iasl -d dsdt.dat >/dev/null 2>&1 && cat dsdt.dsl")
    local dsl = p:read("a"); p:close()
    os.execute("rm -rf " .. dir)
    assert.matches('Name %(_S5, Package', dsl)
    assert.matches('"LNRO0005"', dsl)
    assert.matches('"QEMU0001"', dsl)
    assert.matches('EisaId %("PNP0501"%)', dsl)
    assert.matches("Memory32Fixed %(ReadWrite,%s*0xD0000000", dsl)
  end)

  describe("failures", function()
    it("returns nil and a message for a window above 4 GiB", function()
      local mem = core.memory("1M")
      assert.same({ nil, "acpi: virtio-mmio window 1 (0xfffff000, 0x2000 bytes) is not below 4 GiB" },
        { core.acpi(mem, { cpus = 1, mmio = {
          { base = 0xd0000000, size = 0x200, gsi = 5 },
          { base = 0xfffff000, size = 0x2000, gsi = 6 } } }) })
      assert.same({ nil, "acpi: virtio-mmio window 0 (0x100000000, 0x1000 bytes) is not below 4 GiB" },
        { core.acpi(mem, { cpus = 1, mmio = { { base = 0x100000000, size = 0x1000, gsi = 5 } } }) })
    end)

    it("accepts a window that ends exactly at 4 GiB", function()
      local d = build({ cpus = 1, mmio = { { base = 0xfffff000, size = 0x1000, gsi = 5 } } }, "1M").dsdt
      assert.equal(0xfffff000, d.devices[3].base)
      assert.equal(0x1000, d.devices[3].size)
    end)
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
      assert.has_error(function() core.acpi(mem, { cpus = 1, mmio = { { base = 0, size = 1, gsi = 24 } } }) end,
        "bad argument #2 to 'acpi' (mmio[1] needs base >= 0, size > 0 and gsi 0..23)")
      assert.has_error(function() core.acpi(mem, { cpus = 1, mmio = { { size = 1, gsi = 5 } } }) end,
        "bad argument #2 to 'acpi' (mmio base must be an integer)")
      assert.has_error(function() core.acpi(mem, { cpus = 1, mmio = 5 }) end,
        "bad argument #2 to 'acpi' (field 'mmio' must be a table)")
      local many = {}
      for i = 1, 33 do many[i] = { base = 0xd0000000 + i * 0x1000, size = 0x200, gsi = 5 } end
      assert.has_error(function() core.acpi(mem, { cpus = 1, mmio = many }) end,
        "bad argument #2 to 'acpi' (field 'mmio' has more than 32 devices)")
      assert.has_error(function() core.acpi(mem, { cpus = 1.5 }) end,
        "bad argument #2 to 'acpi' (field 'cpus' must be an integer)")
      assert.has_error(function() core.acpi(mem, { cpus = 1 }, 3) end,
        "no more than 2 arguments expected, got 3")
      local closed = core.memory("1M")
      closed:close()
      assert.has_error(function() core.acpi(closed, { cpus = 1 }) end,
        "attempt to use a closed vmlua.Memory")
    end)
  end)
end)
