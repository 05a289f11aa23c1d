-- Read the ACPI tables vmlua built back out of a Memory, as a guest
-- would: follow RSDP -> XSDT -> tables, check every checksum, and decode
-- the parts of FADT, MADT and DSDT that vmlua writes.
--
--   acpi.parse(mem, rsdp) -> {
--     rsdp   = { addr, revision, checksum_ok, xsdt },
--     tables = { [sig] = { addr, length, revision, checksum_ok } },
--     fadt   = { flags, boot_arch, sleep_control, sleep_status, reset_reg
--                (each { space, width, address }), reset_value, dsdt, dsdt32 },
--     madt   = { lapic_addr, flags, cpus, apic_ids, ioapics = { {id, addr,
--                gsi_base} }, overrides = { {irq, gsi} } },
--     dsdt   = { s5 (the package), s5_typ, aml, devices = { { name, hid,
--                uid, base, size, gsi, irq_flags, io, io_len, irq } } },
--   }
local acpi = {}

local function sum(mem, addr, len)
  local s, bytes = 0, mem:read(addr, len)
  for i = 1, #bytes do s = s + bytes:byte(i) end
  return s % 256
end

local function gas(mem, a)
  return { space = mem:u8(a), width = mem:u8(a + 1), address = mem:u64(a + 4) }
end

-- A small AML walker for what vmlua emits: Name, Scope, Device, Package,
-- Buffer with resource descriptors.
local function pkglen(b, i)
  local lead = b:byte(i)
  local n = lead >> 6
  if n == 0 then return lead & 0x3f, 1 end
  local len = lead & 0x0f
  for k = 1, n do len = len | (b:byte(i + k) << (4 + 8 * (k - 1))) end
  return len, n + 1
end

local function integer(b, i)
  local op = b:byte(i)
  if op == 0x00 then return 0, 1 end
  if op == 0x01 then return 1, 1 end
  if op == 0x0a then return b:byte(i + 1), 2 end
  if op == 0x0b then return string.unpack("<I2", b, i + 1), 3 end
  if op == 0x0c then return string.unpack("<I4", b, i + 1), 5 end
  error(("AML: no integer at %d (op 0x%02x)"):format(i, op))
end

local function resources(buf, dev)
  local i = 1
  while i <= #buf do
    local tag = buf:byte(i)
    if tag == 0x79 then break end
    if tag == 0x86 then
      dev.base, dev.size = string.unpack("<I4I4", buf, i + 4)
      i = i + 12
    elseif tag == 0x89 then
      dev.irq_flags = buf:byte(i + 3)
      dev.gsi = string.unpack("<I4", buf, i + 5)
      i = i + 9
    elseif tag == 0x47 then
      dev.io = string.unpack("<I2", buf, i + 2)
      dev.io_len = buf:byte(i + 7)
      i = i + 8
    elseif tag == 0x22 then
      local mask = string.unpack("<I2", buf, i + 1)
      for bit = 0, 15 do if mask & (1 << bit) ~= 0 then dev.irq = bit end end
      i = i + 3
    else
      error(("AML: unknown resource tag 0x%02x"):format(tag))
    end
  end
end

-- EISAID("PNP0501") is stored as a DWord: three 5-bit letters, big-endian
-- in the first two bytes, then two bytes of hex digits.
local function eisaid(v)
  local b0, b1, b2, b3 = v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >> 24
  local c = (b0 << 8) | b1
  return string.char(((c >> 10) & 31) + 64, ((c >> 5) & 31) + 64, (c & 31) + 64)
    .. ("%02X%02X"):format(b2, b3)
end
acpi.eisaid = eisaid

local function walk(b, i, j, out, dev)
  while i < j do
    local op = b:byte(i)
    if op == 0x08 then                       -- Name
      local name = b:sub(i + 1, i + 4)
      i = i + 5
      local vop = b:byte(i)
      if vop == 0x0d then                    -- String
        local z = b:find("\0", i + 1, true)
        if dev then dev[name] = b:sub(i + 1, z - 1) end
        i = z + 1
      elseif vop == 0x12 then                -- Package
        local len, n = pkglen(b, i + 1)
        local count = b:byte(i + 1 + n)
        local k, items = i + 2 + n, {}
        for _ = 1, count do
          local v, used = integer(b, k)
          items[#items + 1] = v
          k = k + used
        end
        if name == "_S5_" then out.s5 = items end
        i = i + 1 + len
      elseif vop == 0x11 then                -- Buffer
        local len, n = pkglen(b, i + 1)
        local size, used = integer(b, i + 1 + n)
        local data = b:sub(i + 1 + n + used, i + n + used + size)
        if dev and name == "_CRS" then resources(data, dev) end
        i = i + 1 + len
      else
        local v, used = integer(b, i)
        if dev then dev[name] = v end
        i = i + used
      end
    elseif op == 0x10 then                   -- Scope
      local len, n = pkglen(b, i + 1)
      local k = i + 1 + n
      if b:sub(k, k) == "\\" then k = k + 1 end
      walk(b, k + 4, i + 1 + len, out, nil)
      i = i + 1 + len
    elseif op == 0x5b and b:byte(i + 1) == 0x82 then  -- Device
      local len, n = pkglen(b, i + 2)
      local d = { name = b:sub(i + 2 + n, i + 5 + n) }
      walk(b, i + 6 + n, i + 2 + len, out, d)
      d.hid = type(d._HID) == "number" and eisaid(d._HID) or d._HID
      d.uid = d._UID
      out.devices[#out.devices + 1] = d
      i = i + 2 + len
    else
      error(("AML: unexpected op 0x%02x at %d"):format(op, i))
    end
  end
end

--- Parse the tables starting at the RSDP at `rsdp`.
function acpi.parse(mem, rsdp)
  local r = { tables = {} }
  assert(mem:read(rsdp, 8) == "RSD PTR ", "no RSDP signature")
  r.rsdp = {
    addr = rsdp, revision = mem:u8(rsdp + 15),
    checksum_ok = sum(mem, rsdp, 20) == 0 and sum(mem, rsdp, 36) == 0,
    xsdt = mem:u64(rsdp + 24),
  }
  local function table_at(addr)
    local sig, len = mem:read(addr, 4), mem:u32(addr + 4)
    local t = { addr = addr, length = len, revision = mem:u8(addr + 8),
                checksum_ok = sum(mem, addr, len) == 0 }
    r.tables[sig] = t
    return sig, t
  end
  local _, x = table_at(r.rsdp.xsdt)
  for a = x.addr + 36, x.addr + x.length - 8, 8 do table_at(mem:u64(a)) end

  local f = r.tables.FACP
  if f then
    local a = f.addr
    r.fadt = {
      flags = mem:u32(a + 112), boot_arch = mem:u16(a + 109),
      reset_reg = gas(mem, a + 116), reset_value = mem:u8(a + 128),
      dsdt = mem:u64(a + 140), dsdt32 = mem:u32(a + 40),
      sleep_control = gas(mem, a + 244), sleep_status = gas(mem, a + 256),
    }
    table_at(r.fadt.dsdt)
  end
  local m = r.tables.APIC
  if m then
    local madt = { lapic_addr = mem:u32(m.addr + 36), flags = mem:u32(m.addr + 40),
                   cpus = 0, apic_ids = {}, ioapics = {}, overrides = {} }
    local a = m.addr + 44
    while a < m.addr + m.length do
      local typ, len = mem:u8(a), mem:u8(a + 1)
      assert(len > 0, "zero-length MADT entry")
      if typ == 0 and mem:u32(a + 4) & 1 == 1 then
        madt.cpus = madt.cpus + 1
        madt.apic_ids[#madt.apic_ids + 1] = mem:u8(a + 3)
      elseif typ == 1 then
        madt.ioapics[#madt.ioapics + 1] = { id = mem:u8(a + 2), addr = mem:u32(a + 4), gsi_base = mem:u32(a + 8) }
      elseif typ == 2 then
        madt.overrides[#madt.overrides + 1] = { irq = mem:u8(a + 3), gsi = mem:u32(a + 4) }
      end
      a = a + len
    end
    r.madt = madt
  end
  local d = r.tables.DSDT
  if d then
    local body = mem:read(d.addr + 36, d.length - 36)
    local out = { devices = {} }
    walk(body, 1, #body + 1, out, nil)
    r.dsdt = { s5 = out.s5, s5_typ = out.s5 and out.s5[1], devices = out.devices, aml = body }
  end
  return r
end

return acpi
