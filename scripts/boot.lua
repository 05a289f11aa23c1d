#!/usr/bin/env vmlua
--- boot.lua - build a machine from command-line options and boot it.
--
--   vmlua scripts/boot.lua [--kernel PATH] [options]     (or: vmlua boot ...)
--
-- Without --run the guest's console is the product: streamed to stdout,
-- stdin forwarded to it (a terminal raw, Ctrl-A x to quit).  With --run
-- CMD, vmlua is a command runner, as `vng -- CMD` is: CMD's stdout and
-- stderr come back byte for byte on our stdout and stderr (over two
-- virtio consoles, hvc0 and hvc1 in the guest), the kernel console is
-- kept out of the way, and our exit status is CMD's.  The statuses of
-- both modes are in the help text below and in docs/api.md.
local vmlua = require "vmlua"
local argparse = require "argparse"

-- --run makes vmlua a stand-in for the command, so its own failures take
-- statuses a command rarely uses (as timeout(1) and vng do); without
-- --run, the statuses boot.lua always had.
local run_mode = false
for _, a in ipairs(arg) do
  if a == "--" then break end
  if a == "--run" or a:match("^%-%-run=") then run_mode = true end
end
local STATUS = run_mode
  and { options = 125, start = 125, timeout = 124, died = 123, interrupted = 130 }
  or { options = 1, start = 5, timeout = 2, panic = 3, reboot = 4, died = 5, interrupted = 130 }

local parser = argparse("vmlua scripts/boot.lua")
  :usage("usage: vmlua scripts/boot.lua [--kernel PATH] [options]")
  :description("Boot a guest and stream its console, or run one command in it (--run).")
  :help_max_width(79)
  :help_usage_margin(2)
  :help_description_margin(25)
  :epilog([==[
With --run, stdout and stderr are the command's own bytes, nothing added;
the boot is shown only with --show-boot (on stderr) or in --log.
Exit status with --run:
  N    the command's own exit status
  123  the guest died, rebooted or powered off before the command ended
  124  --timeout passed before the command ended
  125  vmlua could not run the guest (bad option, no guest, start failure)
  130  interrupted (SIGINT, SIGTERM, SIGHUP)
Exit status without --run:
  0 the guest powered off, 1 bad options or input, 2 timeout, 3 guest
  panic, 4 guest reboot, 5 any other error, 130 interrupted or Ctrl-A x.

At a terminal (no --run) every key goes to the guest, Ctrl-C included.
Ctrl-A x stops the guest and quits; Ctrl-A Ctrl-A sends one Ctrl-A.]==])

parser:option("--backend", "auto, kvm or uml (default auto: kvm where the CPU has vmx/svm, uml otherwise)")
  :argname("B")
parser:option("--kernel", "kvm: bzImage or ELF vmlinux (default with vmx/svm: Debian's cloud " ..
  "kernel, as make guest fetched it); uml: linux.uml (default: the one make guest fetched)")
  :argname("PATH")
parser:option("--initrd", "initial ramdisk (default with the default kernel: make guest's " ..
  "busybox initramfs)"):argname("PATH")
parser:option("--run", "run the shell command CMD in the default guest and power off; " ..
  "vmlua's stdout, stderr and exit status are CMD's (see below)"):argname("CMD")
parser:option("--disk", "a virtio disk over the image PATH (repeatable: vda, vdb, ...): " ..
  "read-write, read-only, or copy-on-write with a temporary or a named overlay (PATH is " ..
  "never written); label=NAME links it as /dev/disk/by-label-vmlua/NAME in the default guest")
  :argname("PATH[,ro|,cow[=OVERLAY]][,label=NAME]"):count("*")
parser:option("--share", "the host directory HOSTDIR in the guest at GUESTDIR (default: the same " ..
  "path), read-only with ro; through hostfs or virtiofs (default: the best the backend has, " ..
  "hostfs on uml, where linux.uml then runs in a jail of its shares; unsafe: without it); " ..
  "tag=NAME names it; '\\,' '\\:' and '\\\\' in a path stand for , : and \\ (repeatable; " ..
  "see docs/shares.md)")
  :argname("HOSTDIR[:GUESTDIR][,ro][,hostfs|virtiofs][,unsafe][,tag=NAME]"):count("*")
local hostroot = parser:flag("--hostroot", "the guest's root is the host's /, read-only, writes " ..
  "to a tmpfs over it; fresh /proc /sys /dev /tmp; --run runs in the current directory")
local root_opt = parser:option("--root", "the guest's root is the directory tree MASTERDIR, " ..
  "never written: writes go to a tmpfs, or with cow= to DIFFDIR/upper.ext4, kept between boots")
  :argname("MASTERDIR[,cow=DIFFDIR]")
parser:mutex(hostroot, root_opt)
parser:option("--net", "a virtio network card (repeatable: eth0, eth1, ...): user-mode " ..
  "networking (the guest is 10.0.2.15, the host's loopback 10.0.2.2; FWD forwards a host " ..
  "port, e.g. tcp::8080-:80), or the host's tap NAME (root)")
  :argname("user[=FWD,...]|tap[=NAME]"):count("*")
parser:option("--cmdline", "kernel command line (default \"console=ttyS0\", or \"quiet\" on " ..
  "uml; the default guest's adds loglevel=1 unless --show-boot)"):argname("STR")
parser:option("--mem", "memory in MiB (default 256)"):argname("MIB")
parser:option("--cpus", "number of vCPUs (default 1)"):argname("N")
parser:option("--timeout", "give up after S seconds (default: none)"):argname("S")
parser:option("--log", "also write the console (the boot) to PATH"):argname("PATH")
local show_boot = parser:flag("--show-boot", "show the kernel console: on stderr with --run, else on stdout " ..
  "with the kernel's boot messages")
local quiet = parser:flag("--quiet", "do not show the console (with --run the command's output is " ..
  "still shown)")
parser:flag("--stats", "print wall time, VM exits by reason and vmlua's own peak RSS on " ..
  "stderr at the end")
parser:flag("--virtual-time", "uml: run the guest on virtual time (UML's time-travel): its " ..
  "sleeps take no wall time (see docs/uml.md); picks uml under --backend auto")
parser:option("--user", "once the guest is up, become the user NAME (root only), as " ..
  "lguest's launcher did"):argname("NAME")
parser:option("--chroot", "with --user: once the guest is up, chroot into DIR first"):argname("DIR")
parser:flag("--no-seccomp", "run vCPU and device threads without their seccomp filter " ..
  "(for debugging; see docs/sandbox.md)")
parser:mutex(show_boot, quiet)

local scratch_file
local function die(kind, fmt, ...)
  if scratch_file then os.remove(scratch_file) end
  io.stdout:flush()
  io.stderr:write("boot.lua: ", string.format(fmt, ...), "\n")
  os.exit(STATUS[kind], true)
end

local parsed, o = parser:pparse(arg)
if not parsed then die("options", "%s (see --help)", (o:match("^[^\n]*"))) end

local function number(name, min)
  local v = o[name]
  if v == nil then return nil end
  local n = tonumber(v)
  if not n or n < min then
    die("options", "--%s must be a number of at least %d, got '%s'", name, min, v)
  end
  return n
end
local mem = number("mem", 1) or 256
local cpus = number("cpus", 1) or 1
local timeout = number("timeout", 0)
if cpus ~= math.floor(cpus) then
  die("options", "--cpus must be a whole number, got '%s'", o.cpus)
end

-- --user/--chroot: refuse what cannot be done before anything boots.
-- Messages from the binding begin with "user '…'" or "chroot '…'".
local function drop_error(msg)
  return (msg:gsub("^(%a+) '", "--%1 '"):gsub("^(%a+) needs root", "--%1 needs root"))
end
if o.chroot and not o.user then
  die("options", "--chroot needs --user: root can leave a chroot")
end
if o.user then
  local ok, why = vmlua.core.drop_privileges{ user = o.user, chroot = o.chroot, check = true }
  if not ok then die("options", "%s", drop_error(why)) end
end
local backend = o.backend or "auto"
if backend ~= "auto" and backend ~= "kvm" and backend ~= "uml" then
  die("options", "--backend must be auto, kvm or uml, got '%s'", backend)
end
if o.virtual_time and backend == "kvm" then
  die("options", "--virtual-time needs the uml backend")
end
if backend == "auto" and o.virtual_time then backend = "uml" end
if backend == "auto" then
  local why
  backend, why = vmlua.auto_backend()
  if not backend then die("options", "%s", why) end
end

-- The default guest (what `make guest` builds, found from any
-- directory): linux.uml and a busybox initramfs for uml, and Debian's
-- cloud kernel booting the same initramfs on kvm.  Stock kernels boot
-- under kvm only with vmx/svm; without, --kernel stays required there
-- (the selftest guest is what runs).  Its kernel says only what is
-- grave (loglevel=1: panics and the halt), so that Debian's boot-time
-- complaints stay out of the way; --show-boot shows them all.
if backend == "uml" or (not o.kernel and vmlua.backends.kvm.hardware()) then
  local guest, why = vmlua.guest(backend)
  if not o.kernel and guest then o.kernel = guest.kernel end
  if not o.initrd then
    if not guest then die("options", "no --initrd, and %s", why) end
    o.initrd = guest.initrd
  end
  if not o.cmdline then
    o.cmdline = (guest and guest.cmdline) or "quiet"
    if not o.show_boot then o.cmdline = o.cmdline .. " loglevel=1" end
  end
end
if not o.kernel then die("options", "--kernel PATH is required (see --help)") end

-- --share HOSTDIR[:GUESTDIR][,OPTION...]: "\x" stands for x, so that a
-- path may hold ',' ':' or '\'.  Returns the host path, the guest path
-- (or nil) and the options, or nil and why not.
local function share_fields(spec)
  local parts, cur, colon = {}, {}, nil
  local i = 1
  while i <= #spec do
    local c = spec:sub(i, i)
    if c == "\\" then
      i = i + 1
      if i > #spec then return nil, "a '\\' at the end escapes nothing" end
      cur[#cur + 1] = spec:sub(i, i)
    elseif c == ":" and #parts == 0 and not colon then
      colon = table.concat(cur); cur = {}
    elseif c == "," then
      parts[#parts + 1] = table.concat(cur); cur = {}
    elseif c == ":" and colon then
      return nil, "a second ':' (write '\\:' for a ':' in a path)"
    elseif c == ":" then
      return nil, "a ':' among the options (write '\\,' and '\\:' for ',' and ':' in a path)"
    else
      cur[#cur + 1] = c
    end
    i = i + 1
  end
  parts[#parts + 1] = table.concat(cur)
  local host, guest = colon or parts[1], colon and parts[1]
  return host, guest, table.move(parts, 2, #parts, 1, {})
end

local share_mod = require "vmlua.share"
local shares = {}
local function add_share(option, spec, opts)
  local ok, share, why = pcall(share_mod.new, opts)
  if not ok then share, why = nil, share:gsub("^.-bad argument #1 to 'share' %((.*)%)$", "%1") end
  if not share then die("options", "%s %s: %s", option, spec, why) end
  local note
  note, why = share:resolve(backend)
  if not note then die("options", "%s %s: %s", option, spec, (why:gsub("^share '[^']*': ", ""))) end
  shares[#shares + 1] = share
end
for _, spec in ipairs(o.share) do
  local host, guest, words = share_fields(spec)
  if not host then die("options", "--share %s: %s", spec, guest) end
  if host == "" then die("options", "--share %s: no host directory (HOSTDIR[:GUESTDIR][,ro]...)", spec) end
  local opts = { path = host, mount = guest ~= "" and guest or nil }
  for _, w in ipairs(words) do
    if w == "ro" then opts.readonly = true
    elseif w == "rw" then opts.readonly = false
    elseif w == "hostfs" or w == "virtiofs" then opts.via = w
    elseif w == "unsafe" then opts.unconfined = true
    elseif w:match("^tag=") then opts.tag = w:sub(5)
    else
      die("options", "--share %s: unknown option '%s' (ro, rw, hostfs, virtiofs, unsafe, tag=NAME)", spec, w)
    end
  end
  add_share("--share", spec, opts)
end
if o.hostroot then
  add_share("--hostroot", "/", { path = "/", mount = "/", tag = "hostroot" })
elseif o.root then
  local master, diff = o.root:match("^(.-),cow=(.+)$")
  if not master and o.root:find(",", 1, true) then
    die("options", "--root %s: use MASTERDIR[,cow=DIFFDIR]", o.root)
  end
  add_share("--root", o.root, { path = master or o.root, mount = "/", tag = "root", cow = diff or true })
end
do
  local ok, why = share_mod.check_list(shares)
  if not ok then die("options", "--share: %s", why) end
end
-- --run: the command goes into the guest as /etc/vmlua/run, in a small
-- archive appended to the initramfs (the kernel unpacks both in turn);
-- /etc/vmlua/stdio-on-hvc asks the default guest's /init to give it
-- hvc0 as stdout and hvc1 as stderr.
-- The initramfs is copied in pieces, so that a large one is not held in
-- memory twice over; SIGINT, SIGTERM or SIGHUP meanwhile (an error
-- "interrupted" raised at the next Lua step) ends the run with one line,
-- and the partial copy goes with it (die removes scratch_file).
local function run_initrd()
  local src, err = io.open(o.initrd, "rb")
  if not src then die("options", "--initrd: %s", err) end
  local piece, rerr = src:read(1 << 20)
  if not piece and rerr then
    src:close()
    die("options", "--initrd %s: not a file", o.initrd)
  end
  local extra = require("vmlua.cpio").new()
  extra:dir("etc"); extra:dir("etc/vmlua")
  extra:file("etc/vmlua/run", o.run .. "\n", 493)
  -- --hostroot: the command runs where the caller is.
  -- --hostroot: the command runs where the caller is, with the caller's
  -- PATH, HOME and locale, as the host's own shell would run it.
  if o.hostroot then
    extra:file("etc/vmlua/cwd", (require("posix.unistd").getcwd() or "/") .. "\n")
    local env = {}
    for _, name in ipairs{ "PATH", "HOME", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE" } do
      local v = os.getenv(name)
      if v and not v:find("[%z\n]") then
        env[#env + 1] = ("export %s='%s'\n"):format(name, v:gsub("'", "'\\''"))
      end
    end
    extra:file("etc/vmlua/env", table.concat(env))
  end
  extra:file("etc/vmlua/stdio-on-hvc", "")
  local why
  scratch_file, why = require("vmlua.paths").tmpname("initrd")
  if not scratch_file then die("start", "cannot make the --run initramfs: %s", why) end
  local f = assert(io.open(scratch_file, "wb"))
  while piece do
    local ok, werr = f:write(piece)
    if not ok then die("start", "cannot write %s: %s", scratch_file, werr) end
    piece, rerr = src:read(1 << 20)
    if not piece and rerr then die("start", "--initrd %s: %s", o.initrd, rerr) end
  end
  src:close()
  local ok, werr = f:write(extra:finish())
  f:close()
  if not ok then die("start", "cannot write %s: %s", scratch_file, werr) end
  o.initrd = scratch_file
end
if o.run then
  if not o.initrd then die("options", "--run needs an initramfs (--initrd, or the default guest)") end
  local ok, err = pcall(run_initrd)
  if not ok then
    if tostring(err):find("interrupted$") then die("interrupted", "interrupted: nothing was started") end
    error(err, 0)
  end
end

-- --run's two virtio consoles come first, so that they are hvc0 and hvc1.
local devices = {}
if o.run then
  local virtio = require "vmlua.virtio"
  for _, stream in ipairs{ io.stdout, io.stderr } do
    local dev, err = virtio.console{ output = function(data)
      stream:write(data)
      stream:flush()
    end }
    if not dev then die("start", "%s", err) end
    devices[#devices + 1] = dev
  end
end

-- --disk PATH[,ro|,cow[=OVERLAY]][,label=NAME]: virtio-blk devices, vda, vdb, ...
for _, spec in ipairs(o.disk) do
  local path, mode = spec:match("^([^,]+),?(.*)$")
  local opts = { path = path }
  local label
  mode, label = (mode or ""):gsub(",?label=([^,]*)$", ""), mode and mode:match("label=([^,]*)$")
  if label then
    if not require("vmlua.virtio").valid_label(label) then
      die("options", "--disk %s: bad label '%s' (1 to 18 letters, digits, '.', '_' or '-', " ..
          "not starting with '.' or '-')", spec, label)
    end
    opts.label = label
  end
  if not path then
    die("options", "--disk needs a file: --disk PATH[,ro|,cow[=OVERLAY]][,label=NAME]")
  elseif mode == "ro" then
    opts.readonly = true
  elseif mode == "cow" then
    opts.cow = true
  elseif mode:match("^cow=.") then
    opts.cow = mode:sub(5)
  elseif mode ~= "" then
    die("options", "--disk %s: unknown mode '%s' (ro, cow or cow=OVERLAY)", spec, mode)
  end
  local disk, why = require("vmlua.virtio").blk(opts)
  if not disk then die("options", "--disk: %s", why) end
  devices[#devices + 1] = disk
end

for _, sh in ipairs(shares) do devices[#devices + 1] = sh end

-- --net user[=FORWARD,...] | tap[=NAME]: virtio-net devices, eth0, eth1, ...
for _, spec in ipairs(o.net) do
  local kind, rest = spec:match("^(%a+)=?(.*)$")
  local opts
  if kind == "user" then
    local forwards = {}
    for fwd in (rest or ""):gmatch("[^,]+") do forwards[#forwards + 1] = fwd end
    opts = { user = { forwards = forwards } }
  elseif kind == "tap" then
    opts = { tap = rest ~= "" and rest or "vmlua%d" }
  else
    die("options", "--net %s: use user[=tcp::HOSTPORT-:GUESTPORT,...] or tap[=NAME]", spec)
  end
  opts.sandbox = not o.no_seccomp
  local nic, why = require("vmlua.virtio").net(opts)
  if not nic then die("options", "--net: %s", why) end
  devices[#devices + 1] = nic
end

-- The kernel console: the product without --run (the guest's shell);
-- with --run only the boot, shown on request.
local console = "stdout"
if o.quiet then
  console = "none"
elseif o.run then
  console = o.show_boot and function(data) io.stderr:write(data); io.stderr:flush() end or "none"
end
local vm, err = vmlua.vm{
  devices = devices,
  backend = backend,
  kernel = o.kernel,
  initrd = o.initrd,
  cmdline = o.cmdline,
  memory = math.floor(mem) * 1024 * 1024,
  cpus = math.floor(cpus),
  console = console,
  log = o.log,
  input = not o.quiet and not o.run,
  sandbox = not o.no_seccomp,
  time = o.virtual_time and "virtual" or nil,
}
if not vm then die("options", "%s", err) end

-- The default guest's /init says on the console that the command runs on
-- hvc0/hvc1, and with which status it ended.
local ran_on_hvc, run_status
if o.run then
  local tail = ""
  vm:on("output", function(_, data)
    local text = tail .. data
    if text:find("vmlua: running /etc/vmlua/run, stdout on hvc0", 1, true) then ran_on_hvc = true end
    run_status = run_status or tonumber(text:match("vmlua: exit status (%d+)\r?\n"))
    tail = text:sub(-100)
  end)
end

local t0 = vmlua.core.monotonic()
local started, serr = vm:start()
if not started then die("start", "%s", serr) end

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
        die("start", "--user: the guest did not come up within 60 s; root was kept")
      end
    end
    for _, srv in ipairs(vm.servers) do os.remove(srv.path) end
  end
  if scratch_file then os.remove(scratch_file); scratch_file = nil end
  local ok, why = vmlua.core.drop_privileges{ user = o.user, chroot = o.chroot }
  if not ok then
    vm:close()
    die("options", "%s", drop_error(why))
  end
end
if o.user then drop_privileges() end

-- Run until the guest ends, or the time is up.  Once the command's status
-- is in, the guest only powers off: a few seconds for that, then it is
-- stopped (the command's output came in before its status).
local function run_guest()
  local deadline = timeout and (vmlua.core.monotonic() + timeout)
  local done_at
  while true do
    local now = vmlua.core.monotonic()
    if run_status and not done_at then done_at = now end
    if done_at and now > done_at + 10 then return "stopped", "did not power off after the command" end
    local slice = 0.5
    if deadline and not done_at then
      slice = math.min(slice, deadline - now)
      if slice <= 0 then return nil, "timeout" end
    end
    local reason, detail = vm:wait(slice)
    if reason then return reason, detail end
  end
end
local ok, reason, detail = pcall(run_guest)
local code, why
if not ok then
  local msg = tostring(reason):gsub("^.-:%d+: ", "")
  if msg == "interrupted" then
    code, why = STATUS.interrupted, "interrupted: the guest was stopped"
  else
    code, why = STATUS[run_mode and "start" or "died"], msg
  end
elseif o.run then
  if run_status and ran_on_hvc then
    code = run_status
  elseif run_status then
    code, why = STATUS.start, "the guest's /init ran the command on its console, not on hvc0 " ..
      "and hvc1 (a default guest older than boot.lua's --run?): run make guest"
  elseif reason == nil then
    code, why = STATUS.timeout, ("timeout after %g s: the command did not finish"):format(timeout)
  elseif reason == "quit" then
    code, why = STATUS.interrupted, "quit (Ctrl-A x): the guest was stopped"
  else
    local what = { poweroff = "powered off", panic = "panicked", reboot = "rebooted" }
    code, why = STATUS.died, ("the guest %s before the command finished: %s"):format(
      what[reason] or ("stopped (" .. reason .. ")"), detail)
  end
elseif reason == "poweroff" then
  code = 0
elseif reason == nil then
  code, why = STATUS.timeout, ("timeout after %g s: the guest did not power off"):format(timeout)
elseif reason == "panic" then
  code, why = STATUS.panic, "guest panic: " .. detail
elseif reason == "reboot" then
  code, why = STATUS.reboot, "guest rebooted: " .. detail
elseif reason == "quit" then
  code, why = STATUS.interrupted, "quit (Ctrl-A x): the guest was stopped"
else
  code, why = STATUS.died, ("guest stopped: %s: %s"):format(reason, detail)
end
-- The counts are read before close(): a closed machine has none.
local st = o.stats and vm:stats()
vm:close()
if o.stats then
  local parts = {}
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
if scratch_file then os.remove(scratch_file) end
io.stdout:flush()
-- Ctrl-A x comes in the middle of a line the guest was echoing.
if why then io.stderr:write(reason == "quit" and "\n" or "", "boot.lua: ", why, "\n") end
os.exit(code, true)
