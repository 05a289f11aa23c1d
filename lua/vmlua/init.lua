--- vmlua: virtual machines as Lua objects.
--
-- The friendly layer over the C core (`vmlua.core`).  Everything a
-- script needs is reachable from this table:
--
--     local vmlua = require "vmlua"
--     local vm = assert(vmlua.vm{ kernel = "vmlinuz", memory = "256M" })
--     vm:start()
--     print(vm:wait(30))
--
-- @module vmlua
local core = require "vmlua.core"

local vmlua = {
  _VERSION = core._VERSION,
  core = core,
}

--- Guest memory in the x86 layout.
-- @param size bytes, or a string such as "256M" or "5G"
-- @treturn[1] vmlua.Memory
-- @treturn[2] nil
-- @treturn[2] string what went wrong
vmlua.memory = core.memory

--- Load a kernel (and initrd) into a Memory and write its boot_params.
-- @param memory a vmlua.Memory
-- @tparam table opts `kernel` (path), `initrd` (path), `cmdline`, `rsdp`
-- @treturn[1] vmlua.Kernel
-- @treturn[2] nil
-- @treturn[2] string a one-line reason naming the file
vmlua.kernel = core.kernel

--- The e820 map vmlua gives a guest with this memory.
vmlua.e820 = core.e820

--- Build the ACPI tables for a machine into its memory.
vmlua.acpi = core.acpi

--- The backends, each answering `supported()` with true, or false and why.
vmlua.backends = {
  kvm = {
    supported = core.kvm_supported,
    --- Is /dev/kvm backed by vmx/svm (so stock kernels boot)?
    hardware = core.kvm_hardware,
  },
}

local paths = require "vmlua.paths"

--- The default guest for a backend ("uml" or "kvm"): { kernel, initrd,
-- cmdline, ready, dir }, or nil and where it looked.  Found from any
-- directory: beside the executable, in the installed share directory,
-- or in the per-user cache (see vmlua.paths).
vmlua.guest = paths.guest

--- The linux.uml every uml machine runs: the given path, else the
-- default guest's, else one on PATH (true path, or nil and why).
vmlua.uml_kernel = paths.uml_kernel

vmlua.backends.uml = {
  --- Is there a linux.uml to run?  true, or false and what to do.
  supported = function()
    local path, why = vmlua.uml_kernel()
    if path then return true end
    return false, why
  end,
}

--- Which backend `"auto"` means here: kvm where /dev/kvm is backed by
-- vmx/svm, uml otherwise.
-- @treturn[1] string backend name
-- @treturn[2] nil
-- @treturn[2] string why no backend can run here
function vmlua.auto_backend()
  local kvm, kwhy = core.kvm_supported()
  if kvm and core.kvm_hardware() then return "kvm" end
  local uml, uwhy = vmlua.backends.uml.supported()
  if uml then return "uml" end
  return nil, "no backend can run here: " .. (kvm and select(2, core.kvm_hardware()) or kwhy) .. "; " .. uwhy
end

vmlua.vm = require("vmlua.vm").new

--- A host directory in the guest, passed in a machine's `devices`
-- (hostfs on uml; see vmlua.share and docs/shares.md).
vmlua.share = require("vmlua.share").new

--- An in-process L2 learning switch: net devices on it (virtio.net{
-- switch = sw }) reach each other, across guests of this process, with
-- no root.  Fields: ports, frames, flooded, dropped.
vmlua.switch = core.switch

return vmlua
