-- fuzz/seeds.lua - writes the binary seeds for fuzz_vhost_user and
-- fuzz_loader into fuzz/corpus/.  Run from the top of the tree:
--
--   lua5.4 fuzz/seeds.lua
--
-- Each seed is a small, valid input: a vhost-user session as UML's
-- virtio_uml would run it, or a minimal kernel file.  The fuzzer takes
-- them apart from there; the harnesses' header comments describe the
-- input formats these follow.

local pack = string.pack

local function write(dir, name, bytes)
  local f = assert(io.open(("fuzz/corpus/%s/%s"):format(dir, name), "wb"))
  f:write(bytes)
  f:close()
end

---------------------------------------------------------------------------
-- vhost-user sessions (fuzz/fuzz_vhost_user.c)

local USER = 0x7f0000000000     -- where the frontend says its RAM is mapped
local RAM = 0x10000

-- File descriptor kinds the harness attaches (op bits 5..7); kind 7
-- takes one more byte, which picks among the odd ones (fd_kinds[]).
local FD = { ram = 0, kick = 1, call = 2, backend = 3, odd = 7 }
local ODD = { dev_zero = 0, huge_memfd = 1, sealed_memfd = 2, socket = 3, directory = 4,
              timerfd = 5, proc_file = 6, write_only_memfd = 7 }

local NEED_REPLY = 8

-- One message: the op byte (nfds in bits 2..4, fd kind in 5..7), then
-- the header and payload as they go on the wire.
local function msg(req, payload, opts)
  opts = opts or {}
  payload = payload or ""
  local op = ((opts.nfds or 0) << 2) | ((opts.fd or 0) << 5)
  local odd = opts.fd == FD.odd and string.char(opts.odd) or ""
  return string.char(op) .. odd .. pack("<I4 I4 I4", req, 1 | (opts.flags or 0), #payload) .. payload
end

local function kick() return "\1" end
local function hang_up() return "\3" end
-- Resize the RAM memfd under the server: ram_sizes[i % 7] of the
-- harness (0 nothing, 1 a page, 2 half, 3 all, 4 twice, 5 2 MiB, 6 1 TiB).
local function resize(i) return string.char(3 | ((i == 0 and 7 or i) << 2)) end

-- The frontend's driver writing its memory.
local function poke(off, bytes)
  assert(#bytes < 256)
  return pack("<B I2 B", 2, off, #bytes) .. bytes
end

local function u64(v) return pack("<I8", v) end
local function state(index, num) return pack("<I4 I4", index, num) end

local function mem_table(regions, fd, odd)
  local p = pack("<I4 I4", #regions, 0)
  for _, r in ipairs(regions) do
    p = p .. pack("<I8 I8 I8 I8", r.gpa, r.size, r.user, r.offset or 0)
  end
  return msg(5, p, { nfds = #regions, fd = fd or FD.ram, odd = odd, flags = NEED_REPLY })
end

local function vring_addr(index, desc, used, avail)
  return msg(9, pack("<I4 I4 I8 I8 I8 I8", index, 0, desc, used, avail, 0),
             { flags = NEED_REPLY })
end

-- Negotiation as virtio_uml does it: owner, features, protocol features.
local function negotiate(features, protocol)
  return msg(3) .. msg(1) .. msg(15) ..
         msg(16, u64(protocol), { flags = NEED_REPLY }) ..
         msg(2, u64(features), { flags = NEED_REPLY }) .. msg(17)
end

local VERSION_1, PROTOCOL_FEATURES = 1 << 32, 1 << 30
local INDIRECT, EVENT_IDX = 1 << 28, 1 << 29
local REPLY_ACK, BACKEND_REQ, CONFIG, INBAND = 1 << 3, 1 << 5, 1 << 9, 1 << 14

-- Ring 0 of 8 entries at the start of RAM: descriptors at 0, the
-- available ring at 0x80, the used ring at 0x100.
local function ring0(call_fd)
  return mem_table{ { gpa = 0, size = RAM, user = USER } } ..
         msg(8, state(0, 8), { flags = NEED_REPLY }) ..
         msg(10, state(0, 0), { flags = NEED_REPLY }) ..
         vring_addr(0, USER, USER + 0x100, USER + 0x80) ..
         (call_fd and msg(13, u64(0), { nfds = 1, fd = FD.call })
                   or msg(13, u64(0x100))) ..
         msg(12, u64(0), { nfds = 1, fd = FD.kick })
end

local function desc(addr, len, flags, next)
  return pack("<I8 I4 I2 I2", addr, len, flags, next)
end

-- avail ring: flags, idx, then the heads.
local function avail(idx, ...)
  local p = pack("<I2 I2", 0, idx)
  for _, h in ipairs{ ... } do p = p .. pack("<I2", h) end
  return p
end

local WRITE, NEXT, IND = 2, 1, 4

write("vhost_user", "handshake-kick",
  negotiate(VERSION_1 | PROTOCOL_FEATURES | EVENT_IDX, REPLY_ACK | CONFIG) ..
  msg(24, pack("<I4 I4 I4", 0, 8, 0) .. ("\0"):rep(8)) ..
  ring0(true) ..
  msg(18, state(0, 1), { flags = NEED_REPLY }) ..
  poke(0, desc(0x1000, 16, WRITE, 0)) ..
  poke(0x80, avail(1, 0)) ..
  kick() ..
  msg(11, state(0, 0)))

write("vhost_user", "inband-backend-channel",
  negotiate(VERSION_1 | PROTOCOL_FEATURES,
            REPLY_ACK | BACKEND_REQ | CONFIG | INBAND) ..
  msg(21, "", { nfds = 1, fd = FD.backend }) ..
  ring0(false) ..
  msg(18, state(0, 1)) ..
  poke(0, desc(0x1000, 32, WRITE | NEXT, 1) .. desc(0x2000, 32, WRITE, 0)) ..
  poke(0x80, avail(1, 0)) ..
  msg(35, state(0, 0)) ..
  msg(25, pack("<I4 I4 I4", 0, 4, 0) .. "\1\2\3\4"))

write("vhost_user", "indirect-chain",
  negotiate(VERSION_1 | PROTOCOL_FEATURES | INDIRECT, REPLY_ACK) ..
  ring0(true) ..
  msg(18, state(0, 1)) ..
  poke(0, desc(0x3000, 32, IND, 0)) ..
  poke(0x3000, desc(0x1000, 8, WRITE | NEXT, 1) .. desc(0x1800, 8, WRITE, 0)) ..
  poke(0x80, avail(1, 0)) ..
  kick())

-- Without protocol features a ring runs as soon as it has its kick fd;
-- then the frontend goes away and a new one moves the table.
write("vhost_user", "reconnect-new-table",
  negotiate(VERSION_1, 0) ..
  ring0(true) ..
  poke(0, desc(0x1000, 16, WRITE, 0)) ..
  poke(0x80, avail(1, 0)) ..
  kick() ..
  hang_up() ..
  msg(3) .. msg(2, u64(VERSION_1)) ..
  ring0(true) ..
  mem_table{ { gpa = 0, size = 0x8000, user = USER },
             { gpa = 0x10000, size = 0x8000, user = USER + 0x10000, offset = 0x8000 } } ..
  kick() ..
  msg(4))

-- The frontend shrinks its memory under a running ring, then kicks: the
-- server's walk faults, and must end in a device needing a reset.
for _, size in ipairs{ 0, 1, 2 } do
  write("vhost_user", "shrink-to-" .. ({ [0] = "nothing", "a-page", "half" })[size] .. "-then-kick",
    negotiate(VERSION_1 | PROTOCOL_FEATURES, REPLY_ACK) ..
    ring0(true) ..
    msg(18, state(0, 1)) ..
    poke(0, desc(0x1000, 16, WRITE, 0) .. desc(0xc000, 16, WRITE, 0)) ..
    poke(0x80, avail(2, 0, 1)) ..
    resize(size) ..
    kick() ..
    resize(3) .. kick())
end

-- Odd fds where memory or a kick belongs.
for name, odd in pairs{ ["dev-zero"] = ODD.dev_zero, ["socket"] = ODD.socket,
                        ["timerfd"] = ODD.timerfd } do
  write("vhost_user", "kick-fd-" .. name,
    negotiate(VERSION_1, 0) ..
    mem_table{ { gpa = 0, size = RAM, user = USER } } ..
    msg(8, state(0, 8)) .. vring_addr(0, USER, USER + 0x100, USER + 0x80) ..
    msg(12, u64(0), { nfds = 1, fd = FD.odd, odd = odd }) ..
    poke(0, desc(0x1000, 16, WRITE, 0)) .. poke(0x80, avail(1, 0)) .. kick())
end
for name, r in pairs{
  ["huge-memfd"] = { odd = ODD.huge_memfd, size = 1 << 40 },
  ["sealed-memfd"] = { odd = ODD.sealed_memfd, size = RAM },
  ["directory"] = { odd = ODD.directory, size = RAM },
  ["write-only-memfd"] = { odd = ODD.write_only_memfd, size = RAM },
  ["dev-zero"] = { odd = ODD.dev_zero, size = RAM },
} do
  write("vhost_user", "mem-table-" .. name,
    negotiate(VERSION_1 | PROTOCOL_FEATURES, REPLY_ACK) ..
    mem_table({ { gpa = 0, size = r.size, user = USER } }, FD.odd, r.odd) ..
    msg(8, state(0, 8)) .. vring_addr(0, USER, USER + 0x100, USER + 0x80) ..
    msg(12, u64(0), { nfds = 1, fd = FD.kick }) .. kick())
end

---------------------------------------------------------------------------
-- Kernel files (fuzz/fuzz_loader.c)

-- The harness's header: layout, flags (1 initrd, 2 boot_params),
-- command line length, initrd size, RSDP address.
local function loader_input(layout, flags, cmdline_len, initrd_size, kernel)
  return pack("<B B I2 I4 I8", layout, flags, cmdline_len, initrd_size, 0xe0000) .. kernel
end

-- A bzImage: one setup sector after the boot sector, then `pm` bytes of
-- protected-mode kernel.  Fields are those of boot.rst's setup header.
local function bzimage(o)
  local setup = {}
  for i = 1, 1024 do setup[i] = 0 end
  local function put(off, fmt, v)
    local s = pack(fmt, v)
    for i = 1, #s do setup[off + i] = s:byte(i) end
  end
  put(0x1f1, "<B", 1)                       -- setup_sects
  put(0x1fe, "<I2", 0xaa55)                 -- boot_flag
  put(0x200, "<B", 0xeb)                    -- jump over the header...
  put(0x201, "<B", 0x268 - 0x202)           -- ...which ends at 0x268
  put(0x202, "c4", "HdrS")
  put(0x206, "<I2", o.version or 0x20f)
  put(0x211, "<B", 1)                       -- LOADED_HIGH
  put(0x214, "<I4", o.code32 or 0x100000)
  put(0x22c, "<I4", 0x7fffffff)             -- initrd_addr_max
  put(0x230, "<I4", 0x200000)               -- kernel_alignment
  put(0x234, "<B", o.relocatable and 1 or 0)
  put(0x236, "<I2", 1)                      -- XLF_KERNEL_64
  put(0x238, "<I4", 2047)                   -- cmdline_size
  put(0x258, "<I8", o.pref or 0x1000000)
  put(0x260, "<I4", o.init_size or 0x10000)
  local bytes = {}
  for i = 1, #setup do bytes[i] = string.char(setup[i]) end
  return table.concat(bytes) .. ("\x90"):rep(o.pm or 1024)
end

-- An ELF64 executable for x86-64: the given segments, in the order given,
-- each { type, offset, paddr, data, memsz }.
local function elf(entry, segs)
  local phoff, data_off = 64, 64 + 56 * #segs
  local ph, body = {}, {}
  for _, s in ipairs(segs) do
    ph[#ph + 1] = pack("<I4 I4 I8 I8 I8 I8 I8 I8", s.type, 5, data_off, s.paddr,
                       s.paddr, #s.data, s.memsz or #s.data, 0x1000)
    body[#body + 1] = s.data
    data_off = data_off + #s.data
  end
  local ehdr = "\x7fELF" .. pack("<B B B B", 2, 1, 1, 0) .. ("\0"):rep(8) ..
               pack("<I2 I2 I4 I8 I8 I8 I4 I2 I2 I2 I2 I2 I2",
                    2, 62, 1, entry, phoff, 0, 0, 64, 56, #segs, 64, 0, 0)
  return ehdr .. table.concat(ph) .. table.concat(body)
end

-- Xen's PHYS32_ENTRY note: namesz 4, descsz 4, type 18, "Xen\0", entry.
local function pvh_note(entry)
  return pack("<I4 I4 I4", 4, 4, 18) .. "Xen\0" .. pack("<I4", entry)
end

local PT_LOAD, PT_NOTE = 1, 4

write("loader", "bzimage-relocatable",
  loader_input(0, 3, 40, 8192, bzimage{ relocatable = true }))
write("loader", "bzimage-fixed-small-ram",
  loader_input(1, 3, 300, 4096, bzimage{ version = 0x20c, code32 = 0x100000, pm = 600 }))
write("loader", "bzimage-pref-straddle",
  loader_input(2, 1, 0, 65536, bzimage{ relocatable = true, pref = 0x200000,
                                        init_size = 0x80000 }))
write("loader", "elf-pvh",
  loader_input(0, 3, 16, 4096, elf(0x100000, {
    { type = PT_LOAD, paddr = 0x100000, data = ("\xf4"):rep(64), memsz = 0x3000 },
    { type = PT_NOTE, paddr = 0, data = pvh_note(0x100010) },
  })))
write("loader", "elf-two-segments-high",
  loader_input(3, 3, 8, 20000, elf(0x200010, {
    { type = PT_LOAD, paddr = 0x200000, data = ("\x90"):rep(256) },
    { type = PT_LOAD, paddr = 0x100000, data = ("\0"):rep(32), memsz = 0x10000 },
  })))
