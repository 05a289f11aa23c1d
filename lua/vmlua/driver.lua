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

return M
