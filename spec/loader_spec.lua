-- vmlua.Kernel: loading bzImage and ELF64 kernels, initrds and
-- boot_params into guest memory.  Fixtures are synthetic images built by
-- spec/helpers/images.lua and written into a scratch directory.
local core = require "vmlua.core"
local images = require "helpers.images"

local KiB, MiB, GiB = 1024, 1024 * 1024, 1024 * 1024 * 1024
local BP = 0x7000            -- X86_BOOT_PARAMS
local CMDLINE = 0x20000      -- X86_CMDLINE

-- Read the e820 table the loader wrote into boot_params.
local function bp_e820(mem)
  local t = {}
  local types = { "ram", "reserved", "acpi" }
  for i = 0, mem:u8(BP + 0x1e8) - 1 do
    local e = BP + 0x2d0 + 20 * i
    t[#t + 1] = { addr = mem:u64(e), size = mem:u64(e + 8), type = types[mem:u32(e + 16)] }
  end
  return t
end

describe("vmlua.Kernel", function()
  local tmp

  setup(function() tmp = images.tmpdir() end)
  teardown(function() tmp:remove() end)

  describe("kernel()", function()
    describe("with a bzImage", function()
      it("loads it at pref_address, entered at load address + 0x200", function()
        local mem = core.memory("64M")
        local k = assert(core.kernel(mem, { kernel = tmp:write("bz", images.bzimage()) }))
        assert.equal("bzImage", k.format)
        assert.equal("2.15", k.protocol)
        assert.equal(0x1000000, k.load_start)
        assert.equal(0x1000000 + 4 * MiB, k.load_end)   -- init_size
        assert.equal(0x1000200, k.entry)
        assert.is_nil(k.pvh_entry)
        assert.is_nil(k.initrd_addr)
        assert.is_nil(k.initrd_size)
        assert.equal(images.PM_CODE, mem:read(0x1000000, #images.PM_CODE))
        assert.equal(mem, k.memory)
        assert.equal("vmlua.Kernel (bzImage, entry 0x1000200, 0x1000000-0x1400000)",
          tostring(k))
      end)

      it("rounds a relocatable kernel's pref_address up to kernel_alignment", function()
        local mem = core.memory("64M")
        local k = assert(core.kernel(mem, { kernel = tmp:write("bz-align",
          images.bzimage{ pref_address = 0x1100000, kernel_alignment = 0x200000 }) }))
        assert.equal(0x1200000, k.load_start)
        assert.equal(0x1200200, k.entry)
      end)

      it("moves a relocatable kernel to 16 MiB when pref_address is not RAM", function()
        local mem = core.memory("64M")
        local k = assert(core.kernel(mem, { kernel = tmp:write("bz-far",
          images.bzimage{ pref_address = 0x10000000 }) }))
        assert.equal(0x1000000, k.load_start)
        assert.equal(images.PM_CODE, mem:read(0x1000000, #images.PM_CODE))
      end)

      it("loads a kernel that cannot move at its code32_start", function()
        local mem = core.memory("64M")
        local k = assert(core.kernel(mem, { kernel = tmp:write("bz-fixed",
          images.bzimage{ relocatable = false, pref_address = 0x2000000 }) }))
        assert.equal(0x100000, k.load_start)
        assert.equal(0x100200, k.entry)
        assert.equal(images.PM_CODE, mem:read(0x100000, #images.PM_CODE))
      end)

      it("writes boot_params: setup header, loader fields, cmdline, RSDP, e820", function()
        local mem = core.memory("64M")
        local k = assert(core.kernel(mem, { kernel = tmp:write("bz", images.bzimage()),
          cmdline = "console=ttyS0 quiet", rsdp = 0xe0000 }))
        assert.equal(BP, k.boot_params)
        assert.equal(0xaa55, mem:u16(BP + 0x1fe))
        assert.equal("HdrS", mem:read(BP + 0x202, 4))
        assert.equal(0x20f, mem:u16(BP + 0x206))
        assert.equal(0x200000, mem:u32(BP + 0x230))    -- kernel_alignment, copied
        assert.equal(2047, mem:u32(BP + 0x238))        -- cmdline_size, copied
        assert.equal(0xff, mem:u8(BP + 0x210))         -- type_of_loader
        assert.equal(0x81, mem:u8(BP + 0x211) & 0x81)  -- LOADED_HIGH | CAN_USE_HEAP
        assert.equal(0xfe00, mem:u16(BP + 0x224))      -- heap_end_ptr
        assert.equal(0x1000000, mem:u32(BP + 0x214))   -- code32_start
        assert.equal(0, mem:u32(BP + 0x218))           -- no initrd
        assert.equal(0, mem:u32(BP + 0x21c))
        assert.equal(CMDLINE, mem:u32(BP + 0x228))
        assert.equal(0, mem:u32(BP + 0x0c8))           -- ext_cmd_line_ptr
        assert.equal("console=ttyS0 quiet\0", mem:read(CMDLINE, 20))
        assert.equal("console=ttyS0 quiet", k.cmdline)
        assert.equal(0xe0000, mem:u64(BP + 0x070))     -- acpi_rsdp_addr
        assert.same(core.e820(mem), bp_e820(mem))
        assert.equal(4, mem:u8(BP + 0x1e8))
      end)

      it("defaults to an empty command line and no RSDP", function()
        local mem = core.memory("64M")
        mem:fill(CMDLINE, 16, 0x41)
        mem:u64(BP + 0x070, 12345)
        local k = assert(core.kernel(mem, { kernel = tmp:write("bz", images.bzimage()) }))
        assert.equal("", k.cmdline)
        assert.equal("\0", mem:read(CMDLINE, 1))
        assert.equal(0, mem:u64(BP + 0x070))
      end)

      it("places the initrd page-aligned, as high as allowed, above the kernel", function()
        local mem = core.memory("64M")
        local data = string.rep("initrd!", 10000)     -- 70000 bytes
        local k = assert(core.kernel(mem, { kernel = tmp:write("bz", images.bzimage()),
          initrd = tmp:write("initrd", data) }))
        assert.equal(#data, k.initrd_size)
        assert.equal(0, k.initrd_addr % 4096)
        assert.is_true(k.initrd_addr >= k.load_end)
        assert.is_true(k.initrd_addr + #data <= 64 * MiB)
        assert.equal((64 * MiB - #data) & ~0xfff, k.initrd_addr)
        assert.equal(data, mem:read(k.initrd_addr, #data))
        assert.equal(k.initrd_addr, mem:u32(BP + 0x218))   -- ramdisk_image
        assert.equal(#data, mem:u32(BP + 0x21c))           -- ramdisk_size
        assert.equal(0, mem:u32(BP + 0x0c0))               -- ext_ramdisk_image
        assert.equal(0, mem:u32(BP + 0x0c4))               -- ext_ramdisk_size
      end)

      it("keeps the initrd below initrd_addr_max", function()
        local mem = core.memory("64M")
        local data = string.rep("x", 5000)
        local k = assert(core.kernel(mem, {
          kernel = tmp:write("bz-max", images.bzimage{ initrd_addr_max = 0x1ffffff }),
          initrd = tmp:write("initrd-small", data) }))
        assert.equal((0x2000000 - #data) & ~0xfff, k.initrd_addr)
        assert.equal(data, mem:read(k.initrd_addr, #data))
      end)
    end)

    describe("with an ELF64", function()
      local text = string.rep("\x90", 0x100) .. "\xf4"
      local function elf(note)
        return images.elf64{ entry = 0x200000, segments = {
          { type = 1, paddr = 0x200000, data = text },
          { type = 4, data = images.other_note() .. note },
          { type = 1, paddr = 0x300000, data = "initialised", memsz = 0x2000 },
        } }
      end

      it("loads each PT_LOAD at p_paddr, zeroes bss, reads the PVH note", function()
        local mem = core.memory("64M")
        mem:fill(0x300000, 0x2000, 0xcc)              -- stale bytes where bss goes
        local k = assert(core.kernel(mem, { kernel = tmp:write("elf",
          elf(images.pvh_note(0x200040))) }))
        assert.equal("elf", k.format)
        assert.is_nil(k.protocol)
        assert.equal(0x200000, k.entry)
        assert.equal(0x200040, k.pvh_entry)
        assert.equal(0x200000, k.load_start)
        assert.equal(0x302000, k.load_end)
        assert.equal(text, mem:read(0x200000, #text))
        assert.equal("initialised", mem:read(0x300000, 11))
        assert.equal(string.rep("\0", 0x2000 - 11), mem:read(0x300000 + 11, 0x2000 - 11))
      end)

      it("reads a 64-bit PVH note", function()
        local mem = core.memory("64M")
        local k = assert(core.kernel(mem, { kernel = tmp:write("elf-pvh64",
          elf(images.pvh_note(0x200080, 8))) }))
        assert.equal(0x200080, k.pvh_entry)
      end)

      it("has no pvh_entry without the note", function()
        local mem = core.memory("64M")
        local k = assert(core.kernel(mem, { kernel = tmp:write("elf-nopvh", elf("")) }))
        assert.is_nil(k.pvh_entry)
      end)

      it("writes a minimal setup header into boot_params", function()
        local mem = core.memory("64M")
        assert(core.kernel(mem, { kernel = tmp:write("elf", elf("")), cmdline = "hi" }))
        assert.equal(0xaa55, mem:u16(BP + 0x1fe))
        assert.equal("HdrS", mem:read(BP + 0x202, 4))
        assert.equal(0x20f, mem:u16(BP + 0x206))
        assert.equal(0xff, mem:u8(BP + 0x210))
        assert.equal(CMDLINE, mem:u32(BP + 0x228))
        assert.equal("hi\0", mem:read(CMDLINE, 3))
        assert.same(core.e820(mem), bp_e820(mem))
      end)
    end)

    -- Environmental failures return nil and a message naming the file.
    -- One spec per check, each asserting the whole message.
    describe("errors", function()
      local function fails(mem, opts)
        local k, err = core.kernel(mem, opts)
        assert.is_nil(k)
        return err
      end

      -- A file with mode 000 is still readable by root, which the specs
      -- may run as, so a path that does not exist stands for unreadable.
      it("an unreadable file", function()
        local p = tmp:path("no-such-kernel")
        assert.equal(p .. ": cannot open: No such file or directory",
          fails(core.memory("64M"), { kernel = p }))
      end)

      it("a directory", function()
        assert.equal(tmp.dir .. ": is a directory",
          fails(core.memory("64M"), { kernel = tmp.dir }))
      end)

      it("an empty file", function()
        local p = tmp:write("empty", "")
        assert.equal(p .. ": empty file", fails(core.memory("64M"), { kernel = p }))
      end)

      it("a truncated bzImage header", function()
        local p = tmp:write("bz-trunc", images.bzimage{ truncate = 0x220 })
        assert.equal(p .. ": truncated header (the file is 544 bytes, the setup header ends at 620)",
          fails(core.memory("64M"), { kernel = p }))
      end)

      it("a bzImage with its setup sectors cut short", function()
        local p = tmp:write("bz-trunc-setup", images.bzimage{ setup_sects = 8, truncate = 2048 })
        assert.equal(p .. ": truncated header (the file is 2048 bytes, its 8 setup sectors end at 4608 and the kernel follows them)",
          fails(core.memory("64M"), { kernel = p }))
      end)

      it("a truncated ELF header", function()
        local p = tmp:write("elf-trunc", images.elf64{ truncate = 40 })
        assert.equal(p .. ": truncated header (the file is 40 bytes, an ELF64 header needs 64)",
          fails(core.memory("64M"), { kernel = p }))
      end)

      it("truncated program headers", function()
        local p = tmp:write("elf-trunc-ph", images.elf64{
          segments = { { paddr = 0x200000, data = "x" } }, truncate = 100 })
        assert.equal(p .. ": truncated header (the file is 100 bytes, the program headers end at 120)",
          fails(core.memory("64M"), { kernel = p }))
      end)

      it("a truncated segment", function()
        local p = tmp:write("elf-trunc-seg", images.elf64{ entry = 0x200000,
          segments = { { paddr = 0x200000, data = "abcd", filesz = 4096 } } })
        assert.equal(p .. ": segment 0 truncated (it ends at file offset 4216, the file is 124 bytes)",
          fails(core.memory("64M"), { kernel = p }))
      end)

      it("bad magic", function()
        local p = tmp:write("text", string.rep("not a kernel\n", 100))
        assert.equal(p .. ": bad magic: not a bzImage or ELF64 kernel",
          fails(core.memory("64M"), { kernel = p }))
      end)

      it("an ELF32 kernel", function()
        local p = tmp:write("elf32", images.elf64{ class = 1 })
        assert.equal(p .. ": ELF32 kernel, need ELF64", fails(core.memory("64M"), { kernel = p }))
      end)

      it("a big-endian ELF", function()
        local p = tmp:write("elf-be", images.elf64{ data = 2 })
        assert.equal(p .. ": big-endian ELF, need little-endian",
          fails(core.memory("64M"), { kernel = p }))
      end)

      it("an ELF for another machine", function()
        local p = tmp:write("elf-arm", images.elf64{ machine = 183 })
        assert.equal(p .. ": ELF for machine 183, need x86-64 (62)",
          fails(core.memory("64M"), { kernel = p }))
      end)

      it("an ELF without PT_LOAD segments", function()
        local p = tmp:write("elf-empty", images.elf64{
          segments = { { type = 4, data = images.pvh_note(0x200000) } } })
        assert.equal(p .. ": no loadable segments", fails(core.memory("64M"), { kernel = p }))
      end)

      it("a segment larger in the file than in memory", function()
        local p = tmp:write("elf-filesz", images.elf64{ entry = 0x200000,
          segments = { { paddr = 0x200000, data = "abcdefgh", memsz = 4 } } })
        assert.equal(p .. ": segment 0: file size 8 is larger than its memory size 4",
          fails(core.memory("64M"), { kernel = p }))
      end)

      it("segments that overlap", function()
        local p = tmp:write("elf-overlap", images.elf64{ entry = 0x200000, segments = {
          { paddr = 0x200000, data = "a", memsz = 0x2000 },
          { type = 4, data = "" },
          { paddr = 0x201000, data = "b" } } })
        assert.equal(p .. ": segments 0 and 2 overlap", fails(core.memory("64M"), { kernel = p }))
      end)

      it("a segment that does not fit in RAM", function()
        local p = tmp:write("elf-high", images.elf64{ entry = 0x8000000,
          segments = { { paddr = 0x8000000, data = "a", memsz = 0x1000 } } })
        assert.equal(p .. ": kernel does not fit in RAM: segment 0 needs 4096 bytes at 0x8000000",
          fails(core.memory("64M"), { kernel = p }))
      end)

      it("a segment that wraps around 2^64", function()
        local p = tmp:write("elf-wrap", images.elf64{ entry = 0x200000,
          segments = { { paddr = -4096, data = "a", memsz = 0x2000 } } })
        assert.equal(p .. ": kernel does not fit in RAM: segment 0 needs 8192 bytes at 0xfffffffffffff000",
          fails(core.memory("64M"), { kernel = p }))
      end)

      it("a segment below 1 MiB", function()
        local p = tmp:write("elf-low", images.elf64{ entry = 0x7000,
          segments = { { paddr = 0x7000, data = "a" } } })
        assert.equal(p .. ": segment 0 at 0x7000 is below 1 MiB, where vmlua keeps its boot data",
          fails(core.memory("64M"), { kernel = p }))
      end)

      it("an entry point outside every segment", function()
        local p = tmp:write("elf-entry", images.elf64{ entry = 0x400000,
          segments = { { paddr = 0x200000, data = "a" } } })
        assert.equal(p .. ": entry point 0x400000 is not inside any PT_LOAD segment",
          fails(core.memory("64M"), { kernel = p }))
      end)

      it("a malformed PVH note", function()
        local note = string.pack("<I4 I4 I4 c4 I2", 4, 2, 18, "Xen\0", 0) .. "\0\0"
        local p = tmp:write("elf-note", images.elf64{ entry = 0x200000, segments = {
          { paddr = 0x200000, data = "a" }, { type = 4, data = note } } })
        assert.equal(p .. ": Xen PVH entry note in segment 1 has 2 bytes, need 4 or 8",
          fails(core.memory("64M"), { kernel = p }))
      end)

      it("a note that runs past its segment", function()
        local note = string.pack("<I4 I4 I4 c4", 4, 64, 18, "Xen\0")
        local p = tmp:write("elf-note-long", images.elf64{ entry = 0x200000, segments = {
          { paddr = 0x200000, data = "a" }, { type = 4, data = note } } })
        assert.equal(p .. ": malformed note in segment 1 at offset 0",
          fails(core.memory("64M"), { kernel = p }))
      end)

      it("a boot protocol that is too old", function()
        local p = tmp:write("bz-old", images.bzimage{ protocol = 0x204 })
        assert.equal(p .. ": boot protocol 2.04 too old, need 2.06 or later",
          fails(core.memory("64M"), { kernel = p }))
      end)

      it("a setup header shorter than its protocol needs", function()
        local p = tmp:write("bz-short", images.bzimage{ jump = 0x40 })
        assert.equal(p .. ": bad setup header (protocol 2.15 needs it to reach 0x264, it ends at 0x242)",
          fails(core.memory("64M"), { kernel = p }))
      end)

      it("a bzImage without a 64-bit entry point", function()
        local p = tmp:write("bz-32", images.bzimage{ xloadflags = 0 })
        assert.equal(p .. ": no 64-bit entry point (xloadflags lacks XLF_KERNEL_64)",
          fails(core.memory("64M"), { kernel = p }))
      end)

      -- A setup header that disagrees with the file: the kernel it
      -- describes runs past the file's end, or a wrong setup_sects moves
      -- the kernel so that its payload is not where the header says.
      describe("a setup header that disagrees with the file", function()
        -- 8 KiB of kernel, a gzip payload 0x400 bytes into it.
        local code = ("\0"):rep(0x400) .. "\31\139\8\0" .. ("z"):rep(0x1000) .. ("\0"):rep(0xbfc)
        local ok_opts = { code = code, syssize = #code // 16, payload_offset = 0x400, payload_length = 0x1004 }

        it("loads when they agree (and when a signature follows the kernel)", function()
          local mem = core.memory("64M")
          assert(core.kernel(mem, { kernel = tmp:write("bz-agree", images.bzimage(ok_opts)) }))
          local o = setmetatable({ code = code .. ("S"):rep(1472) }, { __index = ok_opts })
          assert(core.kernel(mem, { kernel = tmp:write("bz-signed", images.bzimage(o)) }))
        end)

        it("refuses a syssize past the end of the file", function()
          local o = setmetatable({ syssize = #code // 16 + 1 }, { __index = ok_opts })
          local p = tmp:write("bz-syssize", images.bzimage(o))
          assert.equal(p .. ": setup header disagrees with the file (syssize says 8208 bytes of kernel " ..
            "after the 4 setup sectors, the file holds 8192)", fails(core.memory("64M"), { kernel = p }))
        end)

        it("refuses a payload that does not fit", function()
          local o = setmetatable({ payload_length = 0x3000 }, { __index = ok_opts })
          local p = tmp:write("bz-payload", images.bzimage(o))
          assert.equal(p .. ": setup header disagrees with the file (the payload at 1024+12288 does not " ..
            "fit in the 8192 bytes after the 4 setup sectors)", fails(core.memory("64M"), { kernel = p }))
        end)

        it("refuses a setup_sects that moves the kernel off its payload", function()
          -- Two sectors of the kernel taken for setup: the header still
          -- says 4, the file has 6.
          local o = setmetatable({ code = ("\0"):rep(1024) .. code, syssize = #code // 16 }, { __index = ok_opts })
          local p = tmp:write("bz-sects", images.bzimage(o))
          assert.equal(p .. ": setup header disagrees with the file (no compressed kernel at payload " ..
            "offset 1024 after the 4 setup sectors: is setup_sects right?)", fails(core.memory("64M"), { kernel = p }))
        end)
      end)

      it("a bzImage with nothing after its setup code", function()
        local p = tmp:write("bz-nocode", images.bzimage{ code = "" })
        assert.equal(p .. ": truncated header (the file is 2560 bytes, its 4 setup sectors end at 2560 and the kernel follows them)",
          fails(core.memory("64M"), { kernel = p }))
      end)

      -- Found by fuzz/fuzz_loader.c: the kernel was taken and its entry
      -- point lay past the end of what had been loaded.
      it("a bzImage that ends before its 64-bit entry point", function()
        local p = tmp:write("bz-noentry", images.bzimage{ code = string.rep("\x90", 0x200) })
        assert.equal(p .. ": truncated kernel (its protected-mode part is 512 bytes, the 64-bit entry point is at offset 0x200 in it)",
          fails(core.memory("64M"), { kernel = p }))
        p = tmp:write("bz-entry", images.bzimage{ code = string.rep("\x90", 0x201) })
        assert.equal(0x1000200, assert(core.kernel(core.memory("64M"), { kernel = p })).entry)
      end)

      it("a bad kernel_alignment", function()
        local p = tmp:write("bz-align3", images.bzimage{ kernel_alignment = 0x300000 })
        assert.equal(p .. ": bad kernel_alignment 0x300000 (not a power of two)",
          fails(core.memory("64M"), { kernel = p }))
      end)

      it("a kernel that does not fit in RAM", function()
        local p = tmp:write("bz", images.bzimage())
        assert.equal(p .. ": kernel does not fit in RAM: needs 4194304 bytes at 0x1000000",
          fails(core.memory("16M"), { kernel = p }))
      end)

      it("an initrd that does not fit in RAM", function()
        local k = tmp:write("bz-24m", images.bzimage{ initrd_addr_max = 0x17fffff })
        local i = tmp:write("initrd-big", string.rep("\0", 4 * MiB + 1))
        assert.equal(i .. ": initrd does not fit in RAM (4194305 bytes, 4194304 free below 0x1800000)",
          fails(core.memory("64M"), { kernel = k, initrd = i }))
      end)

      it("an initrd that cannot be opened", function()
        local i = tmp:path("no-such-initrd")
        assert.equal(i .. ": cannot open: No such file or directory",
          fails(core.memory("64M"), { kernel = tmp:write("bz", images.bzimage()), initrd = i }))
      end)

      it("an empty initrd", function()
        local i = tmp:write("initrd-empty", "")
        assert.equal(i .. ": empty file",
          fails(core.memory("64M"), { kernel = tmp:write("bz", images.bzimage()), initrd = i }))
      end)

      it("a command line longer than the kernel accepts", function()
        local p = tmp:write("bz-cl16", images.bzimage{ cmdline_size = 16 })
        assert.equal(p .. ": command line is 17 bytes, the kernel takes at most 16",
          fails(core.memory("64M"), { kernel = p, cmdline = string.rep("c", 17) }))
        assert.is_truthy(core.kernel(core.memory("64M"),
          { kernel = p, cmdline = string.rep("c", 16) }))
      end)
    end)

    describe("bad arguments", function()
      it("names each one", function()
        local mem = core.memory("64M")
        assert.has_error(function() core.kernel() end,
          "bad argument #1 to 'kernel' (vmlua.Memory expected, got no value)")
        assert.has_error(function() core.kernel({}, { kernel = "k" }) end,
          "bad argument #1 to 'kernel' (vmlua.Memory expected, got table)")
        assert.has_error(function() core.kernel(mem) end,
          "bad argument #2 to 'kernel' (table expected, got no value)")
        assert.has_error(function() core.kernel(mem, "vmlinuz") end,
          "bad argument #2 to 'kernel' (table expected, got string)")
        assert.has_error(function() core.kernel(mem, {}) end,
          "bad argument #2 to 'kernel' (field 'kernel' is required)")
        assert.has_error(function() core.kernel(mem, { kernel = 1 }) end,
          "bad argument #2 to 'kernel' (field 'kernel' must be a string)")
        assert.has_error(function() core.kernel(mem, { kernel = "k", initrd = true }) end,
          "bad argument #2 to 'kernel' (field 'initrd' must be a string)")
        assert.has_error(function() core.kernel(mem, { kernel = "k", cmdline = 5 }) end,
          "bad argument #2 to 'kernel' (field 'cmdline' must be a string)")
        assert.has_error(function() core.kernel(mem, { kernel = "k", cmdline = "a\0b" }) end,
          "bad argument #2 to 'kernel' (field 'cmdline' must not contain a NUL byte)")
        assert.has_error(function() core.kernel(mem, { kernel = "k", rsdp = "0xe0000" }) end,
          "bad argument #2 to 'kernel' (field 'rsdp' must be an integer)")
        assert.has_error(function() core.kernel(mem, { kernel = "k", rsdp = 1.5 }) end,
          "bad argument #2 to 'kernel' (field 'rsdp' must be an integer)")
        assert.has_error(function() core.kernel(mem, { kernel = "k", initramfs = "i" }) end,
          "bad argument #2 to 'kernel' (unknown option 'initramfs')")
        assert.has_error(function() core.kernel(mem, { "k" }) end,
          "bad argument #2 to 'kernel' (options must be named, got a number key)")
        assert.has_error(function() core.kernel(mem, { kernel = "k" }, 3) end,
          "no more than 2 arguments expected, got 3")
        assert.has_error(function() core.e820() end,
          "bad argument #1 to 'e820' (vmlua.Memory expected, got no value)")
        assert.has_error(function() core.e820(mem, 1) end,
          "no more than 1 argument expected, got 2")
        mem:close()
        assert.has_error(function() core.kernel(mem, { kernel = "k" }) end,
          "attempt to use a closed vmlua.Memory")
      end)

      it("keeps a Kernel's fields read-only", function()
        local mem = core.memory("64M")
        local k = assert(core.kernel(mem, { kernel = tmp:write("bz", images.bzimage()) }))
        assert.has_error(function() k.entry = 0 end, "vmlua.Kernel fields are read-only")
        assert.is_nil(k.no_such_field)
      end)
    end)

    it("keeps its Memory alive", function()
      local k = assert(core.kernel(core.memory("64M"),
        { kernel = tmp:write("bz", images.bzimage()), cmdline = "alive" }))
      collectgarbage(); collectgarbage()
      assert.equal("alive\0", k.memory:read(CMDLINE, 6))
      assert.equal(images.PM_CODE:sub(1, 8), k.memory:read(k.load_start, 8))
    end)

    describe("a real kernel", function()
      -- Debian's cloud kernel, fetched by `make guest` for the kvm backend,
      -- as a bzImage and as the uncompressed vmlinux.  linux.uml is not
      -- tried on purpose: it is a user-mode program, not a kernel for the
      -- x86 boot protocol.
      local function exists(p)
        local f = io.open(p, "rb")
        if f then f:close() end
        return f ~= nil
      end
      local vmlinuz = "build/guest-cache/kvm/vmlinuz"
      local vmlinux = "build/guest-cache/kvm/vmlinux"

      if exists(vmlinuz) then
        it("loads Debian's cloud kernel bzImage", function()
          local mem = core.memory("512M")
          local k = assert(core.kernel(mem, { kernel = vmlinuz, cmdline = "console=ttyS0" }))
          assert.equal("bzImage", k.format)
          local major, minor = k.protocol:match("^(%d+)%.(%d+)$")
          assert.is_true(tonumber(major) * 256 + tonumber(minor) >= 0x206)
          assert.equal(k.load_start + 0x200, k.entry)
          assert.equal("HdrS", mem:read(BP + 0x202, 4))
          assert.equal("console=ttyS0\0", mem:read(CMDLINE, 14))
          mem:close()
        end)
      else
        pending(vmlinuz .. " missing: run make guest to fetch Debian's cloud kernel")
      end

      if exists(vmlinux) then
        it("loads Debian's cloud kernel vmlinux and finds its PVH entry", function()
          local mem = core.memory("512M")
          local k = assert(core.kernel(mem, { kernel = vmlinux }))
          assert.equal("elf", k.format)
          assert.equal(k.load_start, k.entry)
          assert.is_not_nil(k.pvh_entry)
          assert.is_true(k.pvh_entry >= k.load_start and k.pvh_entry < k.load_end)
          mem:close()
        end)
      else
        pending(vmlinux .. " missing: run make guest to fetch Debian's cloud kernel")
      end
    end)
  end)

  describe("e820()", function()
    it("maps low RAM, the reserved EBDA and ACPI areas, and high RAM", function()
      assert.same({
        { addr = 0, size = 0x9fc00, type = "ram" },
        { addr = 0x9fc00, size = 0x400, type = "reserved" },
        { addr = 0xe0000, size = 0x20000, type = "reserved" },
        { addr = 0x100000, size = 64 * MiB - 0x100000, type = "ram" },
      }, core.e820(core.memory("64M")))
    end)

    it("handles a 1 MiB machine", function()
      assert.same({
        { addr = 0, size = 0x9fc00, type = "ram" },
        { addr = 0x9fc00, size = 0x400, type = "reserved" },
        { addr = 0xe0000, size = 0x20000, type = "reserved" },
      }, core.e820(core.memory("1M")))
    end)

    it("puts RAM above 4 GiB for a 5 GiB machine", function()
      local mem = core.memory("5G")
      local map = core.e820(mem)
      assert.same({ addr = 0x100000, size = 3 * GiB - 0x100000, type = "ram" }, map[4])
      assert.same({ addr = 4 * GiB, size = 2 * GiB, type = "ram" }, map[5])
      assert.equal(5, #map)
      -- and boot_params carries the same map
      assert(core.kernel(mem, { kernel = tmp:write("bz", images.bzimage()) }))
      assert.same(map, bp_e820(mem))
      mem:close()
    end)

    it("never lists more RAM than the Memory has", function()
      for _, size in ipairs{ "1M", "2M", "64M", "3G", "5G" } do
        local mem = core.memory(size)
        local ram = 0
        for _, e in ipairs(core.e820(mem)) do
          if e.type == "ram" then ram = ram + e.size end
        end
        assert.is_true(ram <= mem:size())
        assert.is_true(ram >= mem:size() - 384 * KiB - 1024)
        mem:close()
      end
    end)
  end)
end)
