--- vmlua.driver: Lua plays the guest's virtio driver, with no VM.
--
-- Like QEMU's qtest/libqos: a spec (or a fuzzer, or a curious person)
-- lays out virtqueues in a Memory, adds chains of buffers, kicks the
-- device and reads what it put in the used ring.  Everything is written
-- byte by byte as a guest driver would, so rules can also be broken on
-- purpose to see the device refuse them.
--
-- @module vmlua.driver
local M = {}

local DESC_F_NEXT, DESC_F_WRITE, DESC_F_INDIRECT = 1, 2, 4
M.DESC_F_NEXT, M.DESC_F_WRITE, M.DESC_F_INDIRECT = DESC_F_NEXT, DESC_F_WRITE, DESC_F_INDIRECT

local Ring = {}
Ring.__index = Ring
Ring.__name = "vmlua.driver.Ring"

local function align(x, a) return (x + a - 1) // a * a end

--- Lay out a split virtqueue of `size` entries in `mem` from `base`:
-- descriptor table, available ring, used ring, then a data area that
-- `ring:alloc()` hands out.
-- @tparam table o size, base (default 0x100000), event_idx, indirect,
--   data (bytes of data area, default 64 KiB)
function M.ring(mem, o)
  if type(o) ~= "table" then error("bad argument #2 to 'ring' (table expected)", 2) end
  local size = o.size
  if math.type(size) ~= "integer" or size < 1 then
    error("bad argument #2 to 'ring' (field 'size' must be a positive integer)", 2)
  end
  local base = o.base or 0x100000
  local r = setmetatable({ mem = mem, size = size, event_idx = o.event_idx or false,
                           indirect = o.indirect or false }, Ring)
  r.desc = base
  r.avail = base + 16 * size
  r.used = align(r.avail + 6 + 2 * size, 4096)
  r.data = align(r.used + 6 + 8 * size, 4096)
  r.data_end = r.data + (o.data or 64 * 1024)
  r.next_data = r.data
  r.avail_idx = 0
  r.last_used = 0
  r.free = 0              -- next free descriptor (a bump allocator)
  mem:fill(r.desc, r.data - r.desc, 0)
  return r
end

--- The layout as a Virtqueue expects it.
function Ring:layout()
  return { size = self.size, desc = self.desc, avail = self.avail, used = self.used,
           event_idx = self.event_idx, indirect = self.indirect }
end

--- n bytes of guest memory from the data area, 16-byte aligned.
function Ring:alloc(n)
  local a = align(self.next_data, 16)
  if a + n > self.data_end then error("driver ring: data area full", 2) end
  self.next_data = a + n
  return a
end

--- Write descriptor i (no checks: a spec may write nonsense on purpose).
function Ring:set_desc(i, addr, len, flags, next, table_addr)
  local a = (table_addr or self.desc) + 16 * i
  self.mem:u64(a, addr)
  self.mem:u32(a + 8, len)
  self.mem:u16(a + 12, flags or 0)
  self.mem:u16(a + 14, next or 0)
end

--- Put `head` in the available ring and bump avail->idx.
function Ring:publish(head)
  self.mem:u16(self.avail + 4 + 2 * (self.avail_idx % self.size), head)
  self.avail_idx = (self.avail_idx + 1) & 0xffff
  self.mem:u16(self.avail + 2, self.avail_idx)
end

--- Set avail->idx to any value (to break the rules).
function Ring:set_avail_idx(n)
  self.avail_idx = n & 0xffff
  self.mem:u16(self.avail + 2, self.avail_idx)
end

function Ring:set_avail_flags(f) self.mem:u16(self.avail, f) end
function Ring:set_used_event(n) self.mem:u16(self.avail + 4 + 2 * self.size, n & 0xffff) end
function Ring:avail_event() return self.mem:u16(self.used + 4 + 8 * self.size) end

-- Buffers from a list: { "bytes" } readable with content, or
-- { write = n } writable of n bytes, or { addr =, len =, write = }.
local function place(self, b)
  if type(b) == "string" then
    local a = self:alloc(#b)
    self.mem:write(a, b)
    return a, #b, 0
  end
  local len = b.len or b.write or 0
  local a = b.addr or self:alloc(len)
  return a, len, b.write and DESC_F_WRITE or 0
end

--- Add a chain and publish it.  `bufs` is a list of buffers (see place);
-- with opts.indirect the buffers go in an indirect table that one
-- descriptor points at.  Returns the head index.
function Ring:add(bufs, opts)
  opts = opts or {}
  local n = #bufs
  if opts.indirect then
    local tbl = self:alloc(16 * n)
    for i, b in ipairs(bufs) do
      local a, len, f = place(self, b)
      self:set_desc(i - 1, a, len, f | (i < n and DESC_F_NEXT or 0), i, tbl)
    end
    local head = self.free % self.size
    self.free = self.free + 1
    self:set_desc(head, tbl, 16 * n, DESC_F_INDIRECT, 0)
    if not opts.no_publish then self:publish(head) end
    return head
  end
  local head = self.free % self.size
  for i, b in ipairs(bufs) do
    local d = (self.free + i - 1) % self.size
    local a, len, f = place(self, b)
    self:set_desc(d, a, len, f | (i < n and DESC_F_NEXT or 0), (d + 1) % self.size)
  end
  self.free = self.free + n
  if not opts.no_publish then self:publish(head) end
  return head
end

--- Used elements added since the last call: { {id =, len =}, ... }.
function Ring:used_elems()
  local out = {}
  local idx = self.mem:u16(self.used + 2)
  while self.last_used ~= idx do
    local e = self.used + 4 + 8 * (self.last_used % self.size)
    out[#out + 1] = { id = self.mem:u32(e), len = self.mem:u32(e + 4) }
    self.last_used = (self.last_used + 1) & 0xffff
  end
  return out
end

--- Start all indexes at n (to test 16-bit wrap-around): the device's
-- queue must be created after this, as after a reset.
function Ring:start_at(n)
  self.avail_idx = n & 0xffff
  self.mem:u16(self.avail + 2, self.avail_idx)
  self.last_used = n & 0xffff
end

-- The driver of one device: negotiation, queues, requests.
local Driver = {}
Driver.__index = Driver
Driver.__name = "vmlua.driver.Driver"

local ACK, DRV, DRIVER_OK, FEATURES_OK = 1, 2, 4, 8
local VERSION_1 = 32

local function mask(bits)
  local m = 0
  for _, b in ipairs(bits) do m = m | (1 << b) end
  return m
end

--- Attach to `dev` as its driver, with rings in `mem`: reset, ACKNOWLEDGE,
-- DRIVER, accept the features both sides want, FEATURES_OK, lay out and
-- enable every queue, DRIVER_OK.
-- @tparam table opts features (list of bit numbers the driver wants;
--   default all offered), queue_size (default: each queue's maximum, at
--   most 256), base (where rings start, default 1 MiB), driver_ok (false
--   to stop before DRIVER_OK)
-- @return Driver, or nil and why the negotiation failed
function M.attach(dev, mem, opts)
  opts = opts or {}
  dev:attach(mem)
  dev:set_status(0)
  dev:set_status(ACK)
  dev:set_status(ACK | DRV)
  local want = opts.features and (mask(opts.features) | (1 << VERSION_1)) or -1
  local accepted = dev.features & want
  dev:set_driver_features(accepted)
  dev:set_status(ACK | DRV | FEATURES_OK)
  if dev.status & FEATURES_OK == 0 then
    return nil, "the device refused features 0x" .. string.format("%x", accepted)
  end
  local d = setmetatable({ dev = dev, mem = mem, rings = {}, accepted = accepted }, Driver)
  local base = opts.base or 0x100000
  for i = 0, dev.queues - 1 do
    local size = opts.queue_size or math.min(dev:queue_max(i), 256)
    local ring = M.ring(mem, { size = size, base = base,
      event_idx = accepted & (1 << 29) ~= 0, indirect = accepted & (1 << 28) ~= 0 })
    dev:set_queue(i, { num = size, desc = ring.desc, driver = ring.avail, device = ring.used })
    dev:set_queue_ready(i, true)
    d.rings[i] = ring
    base = ring.data_end
  end
  if opts.driver_ok ~= false then dev:set_status(ACK | DRV | FEATURES_OK | DRIVER_OK) end
  return d
end

--- Kick queue i: the device runs its notify handler now.
function Driver:kick(i) self.dev:notify(i) end

--- Add a chain to queue i, kick, and return the used elements that came
-- back, each with `data`: the bytes the device wrote into the writable
-- buffers (when they were allocated here).
function Driver:request(i, bufs, opts)
  local ring = self.rings[i] or error("driver: no queue " .. tostring(i), 2)
  local writable = {}
  for _, b in ipairs(bufs) do
    if type(b) == "table" and b.write and not b.addr then
      b.addr = ring:alloc(b.write)
      b.len = b.write
      writable[#writable + 1] = b
    end
  end
  local head = ring:add(bufs, opts)
  self:kick(i)
  local used = ring:used_elems()
  for _, e in ipairs(used) do
    if e.id == head then
      local parts, left = {}, e.len
      for _, b in ipairs(writable) do
        local n = math.min(left, b.len)
        parts[#parts + 1] = self.mem:read(b.addr, n)
        left = left - n
      end
      e.data = table.concat(parts)
    end
  end
  return used
end

--- Config space: read n bytes at off; write bytes at off.
function Driver:read_config(off, n) return self.dev:read_config(off, n) end
function Driver:write_config(off, s) return self.dev:write_config(off, s) end

--- Read and clear the device's interrupt status (1: queue, 2: config).
function Driver:interrupt_status() return self.dev:ack_interrupt(3) end

return M
