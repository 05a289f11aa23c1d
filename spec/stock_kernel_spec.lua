-- Debian's cloud kernel on the kvm backend.  Where the CPU has vmx/svm
-- it boots for real; on emulated kvm (kvm_pvm) it is a smoke test: the
-- kernel reaches its banner and prints the e820 map vmlua gave it.
local vmlua = require "vmlua"
local env = require "helpers.env"

local VMLINUX = "build/guest-cache/kvm/vmlinux"

local function readable(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

local TYPES = { usable = "ram", reserved = "reserved", ["ACPI data"] = "acpi" }

-- e820 entries as the kernel prints them ("BIOS-e820: [mem A-B] type").
local function printed_e820(text)
  local map = {}
  for a, b, t in text:gmatch("BIOS%-e820: %[mem 0x(%x+)%-0x(%x+)%] ([%w ]-)\r?\n") do
    local addr, last = tonumber(a, 16), tonumber(b, 16)
    map[#map + 1] = { addr = addr, size = last - addr + 1, type = TYPES[t] or t }
  end
  return map
end

describe("Debian's cloud kernel on kvm #slow #kvm", function()
  local ok, why = env.kvm()
  if not ok then pending("needs the kvm backend: " .. why) return end
  if not readable(VMLINUX) then
    -- make test fetches it (scripts/fetch-kernel.sh)
    pending(VMLINUX .. " missing: run sh scripts/fetch-kernel.sh")
    return
  end

  it("reaches its banner and prints the e820 map vmlua gave it", function()
    local vm = assert(vmlua.vm{
      backend = "kvm", kernel = VMLINUX, memory = "512M", cpus = 1,
      cmdline = "earlyprintk=serial,ttyS0,115200 console=ttyS0 loglevel=8",
      console = "none",
    })
    local expected = vmlua.e820(vm.memory)
    vm:start()
    local deadline = vmlua.core.monotonic() + 600
    local text
    repeat
      local reason = vm:wait(1)
      text = vm:output()
      if reason then break end
    until (text:match("Linux version") and #printed_e820(text) >= #expected
           and text:match("BIOS%-e820.-\n[^B]"))
      or vmlua.core.monotonic() > deadline
    vm:close()
    assert.matches("Linux version %d+%.%d+", text)
    assert.same(expected, printed_e820(text))
  end)

  it("boots to userspace where the CPU has vmx/svm", function()
    local hw, reason = vmlua.backends.kvm.hardware()
    if not hw then pending(reason) return end
    local vm = assert(vmlua.vm{
      backend = "kvm", kernel = VMLINUX, memory = "512M", cpus = 2,
      cmdline = "console=ttyS0 panic=-1", console = "none",
    })
    vm:start()
    vm:wait(120)
    local text = vm:output()
    vm:close()
    -- With no initrd the kernel gets as far as mounting root and panics:
    -- that proves the whole kernel ran.
    assert.matches("VFS: Unable to mount root fs", text)
  end)
end)
