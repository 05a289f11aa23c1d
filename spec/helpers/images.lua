-- Synthetic kernel images for the loader specs: a bzImage with just a
-- setup header and a recognisable "protected-mode kernel", and ELF64
-- files with chosen program headers.  Each builder takes a table of
-- overrides, so a negative spec can break exactly one thing.
--
-- Layouts follow Linux's Documentation/x86/boot.rst (setup header at
-- 0x1f1) and the ELF64 specification (64-byte header, 56-byte program
-- headers).  Everything is little-endian.
local env = require "helpers.env"

local images = {}

local function opt(o, k, default)
  if o[k] == nil then return default end
  return o[k]
end

--- The payload that stands for a bzImage's protected-mode code.
images.PM_CODE = string.rep("vmlua-pm", 1024)   -- 8 KiB

--- A bzImage.  Options (defaults): protocol (0x20f), setup_sects (4),
-- jump (0x6a: the header ends at 0x26c), boot_flag (0xaa55), magic
-- ("HdrS"), relocatable (true), kernel_alignment (0x200000),
-- xloadflags (1 = XLF_KERNEL_64), pref_address (0x1000000), init_size
-- (4 MiB), initrd_addr_max (0x7fffffff), cmdline_size (2047), loadflags
-- (1 = LOADED_HIGH), syssize (0, in 16-byte units), payload_offset and
-- payload_length (0), code (images.PM_CODE), truncate (cut the file to
-- this many bytes).
function images.bzimage(o)
  o = o or {}
  local sects = opt(o, "setup_sects", 4)
  local setup_size = ((sects == 0 and 4 or sects) + 1) * 512
  local hdr = string.pack("<B I2 I4 I2 I2 I2 I2 B B c4 I2 I4 I2 I2 B B I2 I4 I4 I4 I4 I2 B B"
      .. " I4 I4 I4 B B I2 I4 I4 I8 I4 I4 I8 I8 I4 I4 I4",
    sects,                          -- 0x1f1 setup_sects
    0, opt(o, "syssize", 0), 0, 0xffff, 0,  -- root_flags, syssize, ram_size, vid_mode, root_dev
    opt(o, "boot_flag", 0xaa55),    -- 0x1fe
    0xeb, opt(o, "jump", 0x6a),     -- 0x200 jump
    opt(o, "magic", "HdrS"),        -- 0x202
    opt(o, "protocol", 0x20f),      -- 0x206 version
    0, 0x1000, 0,                   -- realmode_swtch, start_sys_seg, kernel_version
    0,                              -- 0x210 type_of_loader
    opt(o, "loadflags", 1),         -- 0x211 loadflags
    0, 0x100000,                    -- setup_move_size, code32_start
    0, 0, 0,                        -- ramdisk_image, ramdisk_size, bootsect_kludge
    0, 0, 0,                        -- heap_end_ptr, ext_loader_ver, ext_loader_type
    0,                              -- 0x228 cmd_line_ptr
    opt(o, "initrd_addr_max", 0x7fffffff),
    opt(o, "kernel_alignment", 0x200000),
    opt(o, "relocatable", true) and 1 or 0,
    21,                             -- 0x235 min_alignment
    opt(o, "xloadflags", 1),        -- 0x236
    opt(o, "cmdline_size", 2047),   -- 0x238
    0, 0,                           -- subarch, subarch_data
    opt(o, "payload_offset", 0), opt(o, "payload_length", 0),
    0,                              -- setup_data
    opt(o, "pref_address", 0x1000000),
    opt(o, "init_size", 4 * 1024 * 1024),
    0, 0)                           -- handover_offset, kernel_info_offset
  assert(#hdr == 0x26c - 0x1f1)
  local img = string.rep("\0", 0x1f1) .. hdr
  img = img .. string.rep("\0", setup_size - #img) .. opt(o, "code", images.PM_CODE)
  if o.truncate then img = img:sub(1, o.truncate) end
  return img
end

--- A Xen PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY), desc of 4 or 8 bytes.
function images.pvh_note(addr, width)
  width = width or 4
  return string.pack("<I4 I4 I4 c4", 4, width, 18, "Xen\0")
      .. string.pack(width == 4 and "<I4" or "<I8", addr)
end

--- A note the loader should pass over (GNU build id).
function images.other_note()
  return string.pack("<I4 I4 I4 c4 c8", 4, 8, 3, "GNU\0", "buildid!")
end

--- An ELF64 executable.  Options (defaults): class (2), data (1), machine
-- (62), entry (0x1000000), phentsize (56), segments: a list of
-- { type = 1 (PT_LOAD) | 4 (PT_NOTE), paddr =, data = "bytes", memsz =
-- (#data), offset = (computed), filesz = (#data) }, truncate (cut the file
-- to this many bytes).  Segment data follows the program headers.
function images.elf64(o)
  o = o or {}
  local segs = o.segments or {}
  local phoff = 64
  local data_off = phoff + 56 * #segs
  local phdrs, blobs = {}, {}
  for i, s in ipairs(segs) do
    local d = s.data or ""
    phdrs[i] = string.pack("<I4 I4 I8 I8 I8 I8 I8 I8",
      s.type or 1, 7, s.offset or data_off, s.paddr or 0, s.paddr or 0,
      s.filesz or #d, s.memsz or #d, 0x1000)
    blobs[i] = d
    data_off = data_off + #d
  end
  local ehdr = string.pack("<c4 B B B B c8 I2 I2 I4 I8 I8 I8 I4 I2 I2 I2 I2 I2 I2",
    "\x7fELF", opt(o, "class", 2), opt(o, "data", 1), 1, 0, string.rep("\0", 8),
    2, opt(o, "machine", 62), 1, opt(o, "entry", 0x1000000), phoff, 0, 0,
    64, opt(o, "phentsize", 56), #segs, 64, 0, 0)
  assert(#ehdr == 64)
  local img = ehdr .. table.concat(phdrs) .. table.concat(blobs)
  if o.truncate then img = img:sub(1, o.truncate) end
  return img
end

--- A scratch directory for fixture files; :path(name), :write(name,
-- bytes) -> path, :remove() when done.
function images.tmpdir()
  local dir = env.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -m 700 '" .. dir .. "'"))
  return {
    dir = dir,
    path = function(_, name) return dir .. "/" .. name end,
    write = function(_, name, bytes)
      local p = dir .. "/" .. name
      local f = assert(io.open(p, "wb"))
      f:write(bytes)
      f:close()
      return p
    end,
    remove = function() os.execute("rm -rf '" .. dir .. "'") end,
  }
end

return images
