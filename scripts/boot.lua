#!/usr/bin/env vmlua
--- boot.lua - build a machine from command-line options and boot it.
--
--   vmlua scripts/boot.lua [--kernel PATH] [options]
--
-- The guest's console is streamed to stdout (and stdin to the guest when
-- it is a terminal).  Exits 0 when the guest powers off; otherwise prints
-- one line saying why on stderr and exits non-zero.
local vmlua = require "vmlua"

local usage = [==[
usage: vmlua scripts/boot.lua [--kernel PATH] [options]

Boot a guest and stream its console.  Exit status: 0 when the guest
powers off, 1 for bad options or input, 2 on timeout, 3 on a panic,
4 on a reboot, 5 on any other error, 130 when interrupted (Ctrl-C).

options:
  --backend B    auto, kvm or uml (default auto: kvm where the CPU has
                 vmx/svm, uml otherwise)
  --kernel PATH  kvm: bzImage or ELF vmlinux (default with vmx/svm:
                 Debian's cloud kernel, as make guest fetched it);
                 uml: linux.uml (default: the one make guest fetched)
  --initrd PATH  initial ramdisk (default with the default kernel:
                 make guest's busybox initramfs)
  --run CMD      run the shell command CMD in the default guest, show
                 its output and power off
  --disk PATH[,ro|,cow[=OVERLAY]]
                 a virtio disk over the image PATH (repeatable: vda,
                 vdb, ...): read-write, read-only, or copy-on-write with
                 a temporary or a named overlay (PATH is never written)
  --net user[=FWD,...] | tap[=NAME]
                 a virtio network card (repeatable: eth0, eth1, ...):
                 user-mode networking (the guest is 10.0.2.15, the
                 host's loopback 10.0.2.2; FWD forwards a host port,
                 e.g. tcp::8080-:80), or the host's tap NAME (root)
  --cmdline STR  kernel command line (default "console=ttyS0", or
                 "quiet" on uml)
  --mem MIB      memory in MiB (default 256)
  --cpus N       number of vCPUs (default 1)
  --timeout S    give up after S seconds (default: none)
  --log PATH     also write the console to PATH
  --quiet        do not show the console
  --stats        print wall time, VM exits by reason and vmlua's own peak
                 RSS on stderr at the end
  --user NAME    once the guest is up, become the user NAME (root only),
                 as lguest's launcher did
  --chroot DIR   with --user: once the guest is up, chroot into DIR first
  --no-seccomp   run vCPU and device threads without their seccomp
                 filter (for debugging; see docs/sandbox.md)
  -h, --help     show this help
]==]

local scratch_file
local function die(code, fmt, ...)
  if scratch_file then os.remove(scratch_file) end
  io.stdout:flush()
  io.stderr:write("boot.lua: ", string.format(fmt, ...), "\n")
  os.exit(code, true)
end

local takes = { backend = true, kernel = true, initrd = true, cmdline = true,
  mem = true, cpus = true, timeout = true, log = true, run = true, disk = true,
  net = true, user = true, chroot = true }

local function parse(argv)
  local o = {}
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "-h" or a == "--help" then
      io.write(usage); os.exit(0)
    elseif a == "--quiet" then
      o.quiet = true
    elseif a == "--stats" then
      o.stats = true
    elseif a == "--no-seccomp" then
      o.no_seccomp = true
    else
      local name, value = a:match("^%-%-([%w-]+)=(.*)$")
      name = name or a:match("^%-%-([%w-]+)$")
      if not name or not takes[name] then
        die(1, "unknown option '%s' (see --help)", a)
      end
      if value == nil then
        i = i + 1
        value = argv[i]
        if value == nil then die(1, "option --%s needs a value", name) end
      end
      if name == "disk" or name == "net" then
        o[name .. "s"] = o[name .. "s"] or {}
        table.insert(o[name .. "s"], value)
      else
        o[name] = value
      end
    end
    i = i + 1
  end
  return o
end

local function number(o, name, min)
  if o[name] == nil then return nil end
  local n = tonumber(o[name])
  if not n or n < min then
    die(1, "--%s must be a number of at least %d, got '%s'", name, min, o[name])
  end
  return n
end

local o = parse(arg)
-- --user/--chroot: refuse what cannot be done before anything boots.
-- Messages from the binding begin with "user '…'" or "chroot '…'".
local function drop_error(msg)
  return (msg:gsub("^(%a+) '", "--%1 '"):gsub("^(%a+) needs root", "--%1 needs root"))
end
if o.chroot and not o.user then
  die(1, "--chroot needs --user: root can leave a chroot")
end
if o.user then
  local ok, why = vmlua.core.drop_privileges{ user = o.user, chroot = o.chroot, check = true }
  if not ok then die(1, "%s", drop_error(why)) end
end
local backend = o.backend or "auto"
if backend ~= "auto" and backend ~= "kvm" and backend ~= "uml" then
  die(1, "--backend must be auto, kvm or uml, got '%s'", backend)
end
if backend == "auto" then
  local why
  backend, why = vmlua.auto_backend()
  if not backend then die(1, "%s", why) end
end

-- The default guest (what `make guest` builds, found from any
-- directory): linux.uml and a busybox initramfs for uml, and Debian's
-- cloud kernel booting the same initramfs on kvm.  Stock kernels boot
-- under kvm only with vmx/svm; without, --kernel stays required there
-- (the selftest guest is what runs).
if backend == "uml" or (not o.kernel and vmlua.backends.kvm.hardware()) then
  local guest, why = vmlua.guest(backend)
  if not o.kernel and guest then o.kernel = guest.kernel end
  if not o.initrd then
    if not guest then die(1, "no --initrd, and %s", why) end
    o.initrd = guest.initrd
  end
  o.cmdline = o.cmdline or (guest and guest.cmdline) or "quiet"
end
if not o.kernel then die(1, "--kernel PATH is required (see --help)") end

-- --run: the command goes into the guest as /etc/vmlua/run, in a small
-- archive appended to the initramfs (the kernel unpacks both in turn).
local scratch
if o.run then
  if not o.initrd then die(1, "--run needs an initramfs (--initrd, or the default guest)") end
  local src = assert(io.open(o.initrd, "rb"))
  local base = src:read("a")
  src:close()
  local extra = require("vmlua.cpio").new()
  extra:dir("etc"); extra:dir("etc/vmlua")
  extra:file("etc/vmlua/run", o.run .. "\n", 493)
  scratch = os.tmpname()
  local f = assert(io.open(scratch, "wb"))
  f:write(base, extra:finish())
  f:close()
  o.initrd = scratch
  scratch_file = scratch
end
local mem = number(o, "mem", 1) or 256
local cpus = number(o, "cpus", 1) or 1
local timeout = number(o, "timeout", 0)
if math.type(cpus) ~= "integer" and cpus ~= math.floor(cpus) then
  die(1, "--cpus must be a whole number, got '%s'", o.cpus)
end

-- --disk PATH[,ro|,cow[=OVERLAY]]: virtio-blk devices, vda, vdb, ...
local devices = {}
for _, spec in ipairs(o.disks or {}) do
  local path, mode = spec:match("^([^,]+),?(.*)$")
  local opts = { path = path }
  if not path then
    die(1, "--disk needs a file: --disk PATH[,ro|,cow[=OVERLAY]]")
  elseif mode == "ro" then
    opts.readonly = true
  elseif mode == "cow" then
    opts.cow = true
  elseif mode:match("^cow=.") then
    opts.cow = mode:sub(5)
  elseif mode ~= "" then
    die(1, "--disk %s: unknown mode '%s' (ro, cow or cow=OVERLAY)", spec, mode)
  end
  local disk, why = require("vmlua.virtio").blk(opts)
  if not disk then die(1, "--disk: %s", why) end
  devices[#devices + 1] = disk
end

-- --net user[=FORWARD,...] | tap[=NAME]: virtio-net devices, eth0, eth1, ...
for _, spec in ipairs(o.nets or {}) do
  local kind, arg = spec:match("^(%a+)=?(.*)$")
  local opts
  if kind == "user" then
    local forwards = {}
    for fwd in (arg or ""):gmatch("[^,]+") do forwards[#forwards + 1] = fwd end
    opts = { user = { forwards = forwards } }
  elseif kind == "tap" then
    opts = { tap = arg ~= "" and arg or "vmlua%d" }
  else
    die(1, "--net %s: use user[=tcp::HOSTPORT-:GUESTPORT,...] or tap[=NAME]", spec)
  end
  opts.sandbox = not o.no_seccomp
  local nic, why = require("vmlua.virtio").net(opts)
  if not nic then die(1, "--net: %s", why) end
  devices[#devices + 1] = nic
end

local vm, err = vmlua.vm{
  devices = devices,
  backend = backend,
  kernel = o.kernel,
  initrd = o.initrd,
  cmdline = o.cmdline,
  memory = math.floor(mem) * 1024 * 1024,
  cpus = math.floor(cpus),
  console = o.quiet and "none" or "stdout",
  log = o.log,
  input = not o.quiet,
  sandbox = not o.no_seccomp,
}
if not vm then die(1, "%s", err) end

local t0 = vmlua.core.monotonic()
local started, serr = vm:start()
if not started then die(5, "%s", serr) end

-- --user/--chroot: drop root once nothing needs it.  A kvm guest is in
-- memory and /dev/kvm is open by now.  linux.uml reads its initrd as it
-- sets up, before it prints a word, and connects to each device's
-- socket as it probes it: wait for both; then the scratch initrd and
-- the sockets' names can go, as nobody could remove them afterwards.
local function drop_privileges()
  if vm.backend == "uml" then
    local deadline = vmlua.core.monotonic() + 60
    while true do
      local ready = vm:output() ~= ""
      for _, srv in ipairs(vm.servers) do ready = ready and srv.connected end
      if ready then break end
      if vm:wait(0.05) then return end          -- it ended already
      if vmlua.core.monotonic() > deadline then
        vm:close()
        die(5, "--user: the guest did not come up within 60 s; root was kept")
      end
    end
    for _, srv in ipairs(vm.servers) do os.remove(srv.path) end
  end
  if scratch_file then os.remove(scratch_file); scratch_file = nil end
  local ok, why = vmlua.core.drop_privileges{ user = o.user, chroot = o.chroot }
  if not ok then
    vm:close()
    die(1, "%s", drop_error(why))
  end
end
if o.user then drop_privileges() end
local ok, reason, detail = pcall(vm.wait, vm, timeout)
if not ok then
  vm:close()
  local msg = tostring(reason):gsub("^.-:%d+: ", "")
  if msg == "interrupted" then die(130, "interrupted: the guest was stopped") end
  die(5, "%s", msg)
end
if o.stats then
  local st, parts = vm:stats(), {}
  for name, n in pairs(st.exits) do
    if n > 0 then parts[#parts + 1] = name .. "=" .. n end
  end
  table.sort(parts)
  -- vmlua's own high-water mark (a uml guest is a separate process).
  local status = io.open("/proc/self/status")
  local hwm = status and status:read("a"):match("VmHWM:%s*(%d+) kB")
  if status then status:close() end
  io.stderr:write(string.format("boot.lua: %.3f s wall, %d vCPU(s), exits: %s%s\n",
    vmlua.core.monotonic() - t0, st.cpus, #parts > 0 and table.concat(parts, " ") or "none",
    hwm and (", vmlua peak RSS " .. hwm .. " kB") or ""))
end
vm:close()
if scratch_file then os.remove(scratch_file) end
if reason == "poweroff" then os.exit(0, true) end
if reason == nil then die(2, "timeout after %g s: the guest did not power off", timeout) end
if reason == "panic" then die(3, "guest panic: %s", detail) end
if reason == "reboot" then die(4, "guest rebooted: %s", detail) end
die(5, "guest stopped: %s: %s", reason, detail)
