--- vmlua.VM: one machine, its lifecycle, its console and its events.
--
-- States follow strongSwan's dumm: stopped -> starting -> running ->
-- stopping -> stopped.  A machine that has stopped has an exit reason:
-- "poweroff", "reboot", "panic", "error" or "quit" (Ctrl-A x typed at
-- the terminal its input comes from), with a detail line.
--
-- @module vmlua.vm
local core = require "vmlua.core"
local console_mod = require "vmlua.console"
local paths = require "vmlua.paths"
local share_mod = require "vmlua.share"
local unistd = require "posix.unistd"

local M = {}
--- The machines of this process that were started and not yet closed
-- (weak keys), for the REPL to keep them running.
M.live = setmetatable({}, { __mode = "k" })
--- Set by the REPL: an interrupted wait leaves the machine running.
M.keep_on_interrupt = false
local VM = {}
VM.__index = VM
VM.__name = "vmlua.VM"

local PANIC = "Kernel panic %- not syncing[^\n]*"

local options = {
  backend = "string", memory = "size", cpus = "number", kernel = "string",
  initrd = "string", cmdline = "string", console = "console",
  log = "string", input = "boolean", devices = "devices", sandbox = "boolean",
  time = "time",
}

-- A mistake in vmlua.vm{...}'s options, raised at the script's line
-- (level: how many calls above the public vmlua.vm the raiser sits).
local function argerror(msg, level)
  error("bad argument #1 to 'vm' (" .. msg .. ")", (level or 3) + 1)
end

local function check_options(opts)
  if type(opts) ~= "table" then
    argerror("table expected, got " .. type(opts))
  end
  for k, v in pairs(opts) do
    local want = options[k]
    if not want then
      argerror("unknown option '" .. tostring(k) .. "'")
    elseif want == "size" then
      if type(v) ~= "string" and math.type(v) ~= "integer" then
        argerror("option 'memory' must be a size such as '256M' or a number of bytes")
      end
    elseif want == "console" then
      if v ~= false and v ~= "stdout" and v ~= "none" and type(v) ~= "function" then
        argerror("option 'console' must be 'stdout', 'none', false or a function")
      end
    elseif want == "devices" then
      if type(v) ~= "table" then argerror("option 'devices' must be a list of vmlua.Device") end
      for i, d in ipairs(v) do
        local mt = getmetatable(d)
        if type(mt) ~= "table" or (mt.__name ~= "vmlua.Device" and mt.__name ~= "vmlua.Share") then
          argerror("devices[" .. i .. "] must be a vmlua.Device or a vmlua.Share")
        end
      end
      if #v > 19 then argerror("at most 19 devices") end
      local seen = {}
      for i, d in ipairs(v) do
        if seen[d] then argerror(("devices[%d] is devices[%d] again"):format(i, seen[d])) end
        seen[d] = i
      end
    elseif want == "time" then
      if v ~= "real" and v ~= "virtual" then
        argerror("option 'time' must be 'real' or 'virtual', got " ..
                 (type(v) == "string" and ("'" .. v .. "'") or type(v)))
      end
    elseif want == "number" then
      if math.type(v) ~= "integer" or v < 1 then
        argerror("option '" .. k .. "' must be a positive integer")
      end
    elseif type(v) ~= want then
      argerror("option '" .. k .. "' must be a " .. want .. ", got " .. type(v))
    end
  end
  local b = opts.backend or "auto"
  if b ~= "auto" and b ~= "kvm" and b ~= "uml" then
    argerror("option 'backend' must be 'auto', 'kvm' or 'uml', got '" .. tostring(b) .. "'")
  end
  if not opts.kernel and b ~= "uml" then argerror("option 'kernel' is required") end
  if opts.time == "virtual" and b == "kvm" then
    argerror("option 'time' is 'virtual', which only the uml backend has")
  end
end

-- Whether a linux.uml has virtual time (CONFIG_UML_TIME_TRAVEL_SUPPORT):
-- such a kernel carries the help text of its "time-travel" option.
-- Debian's linux.uml has not; vmlua's own has.  Remembered per path,
-- size and change time.
local time_travel_seen = {}
local function has_time_travel(binary)
  local st = require("posix.sys.stat").stat(binary)
  local key = binary .. ":" .. (st and (st.st_size .. ":" .. st.st_mtime) or "")
  if time_travel_seen[key] == nil then
    local f = io.open(binary, "rb")
    local body = f and f:read("a")
    if f then f:close() end
    time_travel_seen[key] = body ~= nil and body:find("time-travel=inf-cpu", 1, true) ~= nil
  end
  return time_travel_seen[key]
end

--- Build a machine: memory, ACPI tables, kernel, vCPUs.  It is not yet
-- running; call `vm:start()`.
-- @tparam table opts backend ("auto"|"kvm"|"uml"), memory ("256M"), cpus
--   (1), kernel (path), initrd (path), cmdline (string), console
--   ("stdout", "none"/false or a function(data)), log (path), input
--   (forward stdin), devices (vmlua.Device objects), sandbox (false: the
--   vCPU threads run without their seccomp filter; a net device's
--   libslirp thread has a `sandbox` option of its own), time ("real",
--   or "virtual": uml's time-travel, where the guest's sleeps take no
--   wall time; it picks uml under backend "auto")
-- @treturn[1] vmlua.VM
-- @treturn[2] nil
-- @treturn[2] string a reason a person can act on
-- The uml backend: linux.uml as a child process, spawned at start.  Each
-- device is served over its own vhost-user socket, which UML connects to
-- (virtio_uml.device=SOCKET:ID); the sockets exist from start to exit.
local function new_uml(opts)
  local binary, why = paths.uml_kernel(opts.kernel)
  if not binary then return nil, why end
  if (opts.cpus or 1) ~= 1 then return nil, "the uml backend runs one CPU" end
  local bytes = core.size(opts.memory or "256M")
  local args = { ("mem=%dM"):format(bytes // (1024 * 1024)), "con0=fd:3,fd:4", "con=null" }
  -- Virtual time is UML's time-travel mode with vmlua as the calendar:
  -- linux.uml asks the socket "time" in its run directory when it may
  -- run, and every virtual-time guest of this Lua state shares that one
  -- clock (core/calendar.h, docs/uml.md).
  local virtual = opts.time == "virtual"
  if virtual then
    if not has_time_travel(binary) then
      return nil, binary .. " has no virtual time (it was built without " ..
                  "CONFIG_UML_TIME_TRAVEL_SUPPORT, as Debian's linux.uml is); " ..
                  "vmlua's own kernel, which make guest builds, has it"
    end
    args[#args + 1] = "time-travel=ext:time"
  end
  local initrd
  if opts.initrd then
    local f, err = io.open(opts.initrd, "rb")
    if not f then return nil, err end
    f:close()
    if not paths.is_file(opts.initrd) then return nil, opts.initrd .. ": not a file" end
    initrd = paths.absolute(opts.initrd)
    args[#args + 1] = "initrd=initrd"            -- a link in the run directory, below
  end
  local devices, shares = opts.devices or {}, opts._shares or {}
  if #shares > 0 and not initrd then
    return nil, "shares need an initramfs whose /init mounts them (the default guest's does): give 'initrd'"
  end
  -- A delay loop of a known speed: calibrating it holds /init back by
  -- 40 ms or more (docs/uml.md).
  if not (" " .. (opts.cmdline or "")):find("%slpj=") then args[#args + 1] = "lpj=50000000" end
  local own = #args
  for word in (opts.cmdline or ""):gmatch("%S+") do args[#args + 1] = word end
  -- linux.uml's own words and one per device must fit core.uml_vm's 256.
  if #args + #devices > 256 then
    argerror(("option 'cmdline' has %d words; the uml backend takes at most %d"):format(
      #args - own, 256 - #devices - own), 3)
  end
  local vm = { backend = "uml", cpus = 1, binary = binary, memory_size = bytes,
               devices = devices, servers = {}, shares = shares }
  function vm._spawn()
    local argv = table.move(args, 1, #args, 1, {})
    -- One private directory for the sockets and UML's own files; the
    -- machine removes it when linux.uml ends, however it ends.
    -- linux.uml runs in it, and finds its initrd and sockets there by
    -- names relative to it: its command line splits at spaces, and
    -- virtio_uml.device= at colons, which TMPDIR may hold.
    local dir, err = core.uml_rundir()
    if not dir then return nil, err end
    dir = paths.absolute(dir)       -- a jailed linux.uml enters it from its new root
    local function undo()
      vm:_close_servers()
      os.remove(dir .. "/initrd")
      os.remove(dir .. "/jail")
      os.remove(dir)
    end
    if initrd and #shares > 0 then
      -- The shares' list follows the initramfs, in an archive of its own.
      local ok, werr = share_mod.initrd_with(initrd, shares, dir .. "/initrd")
      if not ok then undo(); return nil, werr end
    elseif initrd then
      local ok, lerr = unistd.link(initrd, dir .. "/initrd", true)
      if not ok then undo(); return nil, "cannot link the initrd into " .. dir .. ": " .. lerr end
    end
    -- Whatever goes wrong from here on, raised or returned, takes the
    -- directory with it.
    local ok, machine, merr = pcall(function()
      for i, dev in ipairs(devices) do
        local srv, serr = core.vhost_user{ device = dev, path = ("%s/%d.vhost"):format(dir, i) }
        if not srv then return nil, serr end
        vm.servers[i] = srv
        argv[#argv + 1] = ("virtio_uml.device=%d.vhost:%d"):format(i, dev.id)
      end
      -- With shares, linux.uml runs in a jail that holds only them (and
      -- what it needs itself), unless a share asks to go without.
      local jail
      if #shares > 0 and not share_mod.unconfined(shares) then
        local no = share_mod.jail_unavailable()
        if no then return nil, no end
        jail = share_mod.jail(shares, binary, dir)
        local made, jerr = require("posix.sys.stat").mkdir(jail.root, 448)
        if not made then return nil, "cannot make " .. jail.root .. ": " .. jerr end
      end
      return core.uml_vm{ binary = binary, args = argv, servers = vm.servers, rundir = dir,
                          jail = jail, virtual_time = virtual }
    end)
    if not (ok and machine) then undo() end
    if not ok then error(machine, 0) end
    return machine, merr
  end
  return vm
end

-- Shares among the devices (vmlua.share{}): each resolved for the
-- backend (see vmlua.share), a diff directory's disk added after the
-- script's own devices.  Returns the options with `devices` holding only
-- devices and `_shares` the shares, and the lines vmlua says about
-- them; or nil and why not.
local function with_shares(opts, backend)
  local devices, shares, notes = {}, {}, {}
  for _, d in ipairs(opts.devices or {}) do
    if share_mod.is(d) then shares[#shares + 1] = d else devices[#devices + 1] = d end
  end
  if #shares == 0 then return opts, notes end
  local ok, err = share_mod.check_list(shares)
  if not ok then return nil, nil, err end
  for _, s in ipairs(shares) do
    local note
    note, err = s:resolve(backend)
    if not note then return nil, nil, err end
    notes[#notes + 1] = note
    local disk
    disk, err = s:diff_disk()
    if err then return nil, nil, err end
    devices[#devices + 1] = disk
  end
  if #devices > 19 then return nil, nil, "at most 19 devices, the diff directories' disks included" end
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.devices, o._shares = devices, shares
  return o, notes
end

-- The least memory each backend can boot anything in: linux.uml panics
-- below 48 MiB with the default guest (it maps its initrd and memory map
-- early); the kvm platform needs room for its tables, a kernel and a
-- stack.  A smaller size is the script's mistake, said before anything
-- starts.
local MIN_MEMORY = { uml = 48 << 20, kvm = 4 << 20 }

function M.new(opts)
  check_options(opts)
  local backend = opts.backend or "auto"
  if backend == "auto" and opts.time == "virtual" then backend = "uml" end
  if backend == "auto" then
    local b, why = require("vmlua").auto_backend()
    if not b then return nil, why end
    backend = b
  end
  local ok, bytes = pcall(core.size, opts.memory or "256M")
  if not ok then argerror("option 'memory' must be a size such as '256M' or a number of bytes", 2) end
  if bytes < MIN_MEMORY[backend] then
    argerror(("option 'memory' is '%s', but the %s backend needs at least %dM"):format(
      tostring(opts.memory), backend, MIN_MEMORY[backend] >> 20), 2)
  end
  -- The consoles reach the machine weakly: a virtio console's output
  -- function is held by C through the registry, and a strong way back
  -- to the machine (console -> wait -> machine -> devices -> that
  -- console's device) would keep an unstarted machine, its disks and
  -- their fds for ever.  While it runs, `held` holds it (see VM:_hold),
  -- so that a script may keep only a console.
  local link, held = setmetatable({}, { __mode = "v" }), {}
  local function wait(slice)
    local v = held.vm or link.vm
    if not v then return "error", "its machine was dropped and collected" end
    return v:_turn(slice)
  end
  local function send(s)
    local v = held.vm or link.vm
    if not v then error("console:send(): its machine was dropped and collected", 3) end
    return v:send(s)
  end
  local console, err = console_mod.new{ output = opts.console, log = opts.log,
    send = send, wait = wait }
  if not console then return nil, err end
  local notes
  opts, notes, err = with_shares(opts, backend)
  if not opts then console:close(); return nil, err end
  for _, line in ipairs(notes) do console:write(line .. "\r\n") end
  local vm
  if backend == "uml" then
    vm, err = new_uml(opts)
    if not vm then return nil, err end
  else
    vm, err = M.new_kvm(opts)
    if not vm then return nil, err end
  end
  link.vm, vm._held = vm, held
  vm.state = "stopped"
  vm.console, vm._input = console, opts.input
  vm.devices = opts.devices or {}
  vm._hooks, vm._tail = {}, ""
  setmetatable(vm, VM)
  -- expect() on any console of this machine runs the machine meanwhile.
  for _, dev in ipairs(opts.devices or {}) do
    local c = require("vmlua.virtio").console_of[dev]
    if c then c:driven_by(wait) end
  end
  return vm
end

-- A running machine is held by its consoles (on), and let go when it
-- has ended (off): see `held` in M.new.
function VM:_hold(on)
  self._held.vm = on and self or nil
end

-- The kvm backend: memory, ACPI tables, kernel and vCPUs, built now.
function M.new_kvm(opts)
  local ok, why = core.kvm_supported()
  if not ok then return nil, why end

  local cpus = opts.cpus or 1
  local mem, err = core.memory(opts.memory or "256M")
  if not mem then return nil, err end
  -- Each device gets a virtio-mmio window and an interrupt, and the DSDT
  -- says where, so that the guest's virtio_mmio driver finds it.
  local devices, mmio = opts.devices or {}, {}
  for i = 1, #devices do
    mmio[i] = { base = core.x86.mmio_start + (i - 1) * core.x86.mmio_window,
                size = core.x86.mmio_size, gsi = core.x86.mmio_irq_base + i - 1 }
  end
  local rsdp
  rsdp, err = core.acpi(mem, { cpus = cpus, mmio = mmio })
  if not rsdp then return nil, err end
  local kernel
  kernel, err = core.kernel(mem, {
    kernel = opts.kernel, initrd = opts.initrd,
    cmdline = opts.cmdline or "console=ttyS0", rsdp = rsdp,
  })
  if not kernel then return nil, err end
  local machine
  machine, err = core.kvm_vm{ memory = mem, cpus = cpus, sandbox = opts.sandbox }
  if not machine then return nil, err end
  for i, dev in ipairs(devices) do
    ok, err = machine:add_device(dev, mmio[i].base, mmio[i].gsi)
    if not ok then machine:close(); return nil, err end
  end
  return { backend = "kvm", memory = mem, kernel = kernel, cpus = cpus, rsdp = rsdp,
           devices = devices, memory_size = mem:size(), _core = machine }
end

--- Register fn for an event: "state" (vm, new, old), "output" (vm,
-- data), "exit" (vm, reason, detail).
function VM:on(event, fn)
  if event ~= "state" and event ~= "output" and event ~= "exit" then
    error("bad argument #1 to 'on' (unknown event '" .. tostring(event) ..
          "', expected 'state', 'output' or 'exit')", 2)
  end
  if type(fn) ~= "function" then
    error("bad argument #2 to 'on' (function expected, got " .. type(fn) .. ")", 2)
  end
  local list = self._hooks[event] or {}
  list[#list + 1] = fn
  self._hooks[event] = list
  return self
end

function VM:_emit(event, ...)
  for _, fn in ipairs(self._hooks[event] or {}) do fn(self, ...) end
end

function VM:_set_state(new)
  local old = self.state
  if old == new then return end
  self.state = new
  self:_emit("state", new, old)
end

--- Start the machine.
-- @treturn[1] vmlua.VM self
-- @treturn[2] nil
-- @treturn[2] string why it could not start
function VM:start()
  if self.state ~= "stopped" or self.exit_reason then
    error("vm:start(): the machine is " .. self.state ..
          (self.exit_reason and " (exited: " .. self.exit_reason .. ")" or ""), 2)
  end
  self:_set_state("starting")
  self._started_at, self._started_mono = os.time(), core.monotonic()
  local ok, err
  if self._spawn then
    local spawned, core_or_err, serr = pcall(self._spawn)
    if not spawned then
      -- Undone already (see new_uml); raised again at the script's line.
      self:_set_state("stopped")
      error((tostring(core_or_err):gsub("^[^:\n]*vm%.lua:%d+: ", "")), 2)
    end
    self._core, err = core_or_err, serr
    ok = self._core ~= nil
  else
    ok, err = self._core:start(self.kernel.entry, self.kernel.boot_params)
  end
  if ok and self._input then
    -- A terminal is raw, Ctrl-C included, and its keys pass through the
    -- escape Ctrl-A (x quits: the reason "quit"); a pipe is read as is.
    self._core:input(0, core.tty_raw(0))
  end
  if not ok then
    core.tty_restore()
    self:_set_state("stopped")
    return nil, err
  end
  self:_set_state("running")
  M.live[self] = true
  self:_hold(true)
  return self
end

-- Show, log and remember output; watch it for a kernel panic.
function VM:_output(data)
  if data == "" then return end
  self.console:write(data)
  self:_emit("output", data)
  -- A panic line may arrive in pieces: look at the tail plus the new
  -- data, and take the line once it is complete.
  local text = self._tail .. data
  local line = text:match("(" .. PANIC .. ")\r?\n")
  if line and not self._panic then
    self._panic = line:gsub("\r$", "")
  end
  -- user-mode Linux restarts itself in place on reboot: the line is all
  -- there is to see.
  if self.backend == "uml" and not self._reboot and text:find("reboot: Restarting system", 1, true) then
    self._reboot = "reboot: Restarting system"
  end
  if self.backend == "uml" and (text:find("reboot: System halted", 1, true) or
                                text:find("reboot: Power down", 1, true)) then
    self._halted = true
  end
  self._tail = text:sub(-200)
end

function VM:_finish(reason, detail)
  -- Once only: a hook may have stopped the machine while the loop ran,
  -- and the loop then finds linux.uml killed.
  if self.exit_reason or self.state == "stopping" then return end
  self:_set_state("stopping")
  self._core:stop()
  core.tty_restore()
  -- Whatever the vCPUs printed before they stopped.
  local rest = self._core:poll(0)
  self:_output(rest)
  self:_close_servers()
  self.exit_reason, self.exit_detail = reason, detail
  self:_hold(false)
  self:_set_state("stopped")
  self:_emit("exit", reason, detail)
end

--- Run the machine until it stops or `timeout` seconds pass.  A paused
-- machine is run as well (its devices served, its output taken), and
-- stays paused.
-- @tparam[opt] number timeout seconds (default: no limit)
-- @treturn[1] string exit reason: "poweroff", "reboot", "panic", "error",
--   "quit"
-- @treturn[1] string the detail line
-- @treturn[2] nil
-- @treturn[2] string "timeout"
function VM:wait(timeout)
  if timeout ~= nil and (type(timeout) ~= "number" or timeout < 0) then
    error("bad argument #1 to 'wait' (timeout must be a non-negative number)", 2)
  end
  if self.exit_reason then return self.exit_reason, self.exit_detail end
  -- A paused machine is run too: its devices served, its output kept.
  if self.state ~= "running" and self.state ~= "paused" then
    error("vm:wait(): the machine is " .. self.state .. ", start it first", 2)
  end
  local deadline = timeout and (core.monotonic() + timeout)
  while true do
    local slice = 0.5
    if deadline then
      slice = math.min(slice, deadline - core.monotonic())
      if slice <= 0 then return nil, "timeout" end
    end
    local reason, detail = self:_turn(slice)
    if reason then return reason, detail end
  end
end

-- One turn of the machine's loop: wait up to `slice` seconds for output,
-- a round of device work or the end, and take what came.  Returns the
-- exit reason and detail once the machine has ended, else nothing.
-- expect() turns the loop this way, so it looks at what arrived at once.
function VM:_turn(slice)
  if self.exit_reason then return self.exit_reason, self.exit_detail end
  if self.state ~= "running" and self.state ~= "paused" then
    error("the machine is " .. self.state .. ", start it first", 0)
  end
  -- A limit set from outside (vmlua test's scenario timeout) holds
  -- however long the caller meant to wait.
  if self._limit then
    local left = self._limit.at - core.monotonic()
    if left <= 0 then error(self._limit.why, 0) end
    slice = math.min(slice, left)
  end
  local ok, out, reason, detail = pcall(self._core.poll, self._core, slice)
  if not ok then
    -- Interrupted (SIGINT) or worse: stop cleanly, then re-raise.  At
    -- the REPL a Ctrl-C stops the call, not the guest.
    if not (M.keep_on_interrupt and tostring(out):find("interrupted$")) then
      self:_finish("error", tostring(out))
    end
    error(out, 0)
  end
  -- A hook (a device's, or an output hook below) may stop or close the
  -- machine: its end is the one the script chose.
  if self.exit_reason then
    self.console:write(out)
    return self.exit_reason, self.exit_detail
  end
  self:_output(out)
  if self.exit_reason then return self.exit_reason, self.exit_detail end
  if self._panic then
    self:_finish("panic", self._panic)
    return "panic", self._panic
  end
  if self._reboot then
    self:_finish("reboot", self._reboot)
    return "reboot", self._reboot
  end
  if reason then
    -- Now and then linux.uml aborts in its own cleanup after the guest
    -- has halted: the guest did power off, and says so on the console.
    if self.backend == "uml" and reason == "panic" and self._halted then
      reason, detail = "poweroff", "linux.uml halted, then aborted in its own cleanup"
    end
    -- linux.uml's child says on the console why it could not start
    -- (its jail, its run directory, exec).
    local why = self.backend == "uml" and reason == "error" and
                self.console:output():match("vmlua: (cannot [^\r\n]*)")
    if why then detail = detail .. ": " .. why end
    self:_finish(reason, detail)
    return reason, detail
  end
end

--- Stop the machine now (state becomes stopped, reason "stopped" if it
-- had none), paused or not.
function VM:stop()
  if self.state == "running" or self.state == "paused" then
    self:_unpause_for_end()
    self:_finish("stopped", "stopped by the script")
  end
  return self
end

-- A paused kvm machine's vCPUs are let go before it is stopped; a paused
-- uml guest is simply killed where it stands.
function VM:_unpause_for_end()
  if self.state == "paused" and self.backend ~= "uml" then self._core:resume() end
end

-- "the machine is stopped (exited: poweroff)"
local function state_of(self)
  return self.state .. (self.exit_reason and " (exited: " .. self.exit_reason .. ")" or "")
end

--- Pause the machine: on kvm its vCPUs park outside KVM_RUN; on uml the
-- mconsole's "stop" holds the whole guest, its clock too, until
-- `vm:resume()`.  `vm:wait()` meanwhile serves its devices and takes
-- what output there was.
-- @tparam[opt] number timeout uml: seconds to wait for the kernel's
--   answer (default 30)
-- @treturn[1] vmlua.VM self (state "paused")
-- @treturn[2] nil
-- @treturn[2] string why not (uml: the mconsole's answer or failure)
function VM:pause(timeout)
  if self.state ~= "running" then error("vm:pause(): the machine is " .. state_of(self), 2) end
  if timeout ~= nil and (type(timeout) ~= "number" or timeout <= 0) then
    error("bad argument #1 to 'pause' (timeout must be a positive number)", 2)
  end
  local _, err
  if self.backend == "uml" then _, err = self._core:pause(timeout) else self._core:pause() end
  if err then return nil, err end
  self:_set_state("paused")
  return self
end

--- Resume a paused machine (uml: the mconsole's "go").
-- @tparam[opt] number timeout uml: as for `vm:pause()`
-- @treturn[1] vmlua.VM self (state "running")
-- @treturn[2] nil
-- @treturn[2] string why not
function VM:resume(timeout)
  if self.state ~= "paused" then error("vm:resume(): the machine is " .. state_of(self), 2) end
  if timeout ~= nil and (type(timeout) ~= "number" or timeout <= 0) then
    error("bad argument #1 to 'resume' (timeout must be a positive number)", 2)
  end
  local _, err
  if self.backend == "uml" then _, err = self._core:resume(timeout) else self._core:resume() end
  if err then return nil, err end
  self:_set_state("running")
  return self
end

-- The mconsole methods' common checks: a uml machine that has started
-- and not ended, and a timeout, if any, that is a positive number.
local function mconsole_ready(self, name, timeout, targ)
  if self.backend ~= "uml" then
    error("vm:" .. name .. "(): only the uml backend has an mconsole (this machine is " ..
          self.backend .. ")", 3)
  end
  if self.state ~= "running" and self.state ~= "paused" then
    error("vm:" .. name .. "(): the machine is " .. state_of(self) ..
          (self.exit_reason and "" or ", start it first"), 3)
  end
  if timeout ~= nil and (type(timeout) ~= "number" or timeout <= 0) then
    error(("bad argument #%d to '%s' (timeout must be a positive number)"):format(targ, name), 3)
  end
end

--- Run a command on a uml guest's management console (UML's mconsole):
-- "version", "help", "config con0", "proc meminfo", "log text",
-- "halt", "reboot", ... (see docs/uml.md).  "stop" and "go" are
-- `vm:pause()` and `vm:resume()`.
-- @tparam string cmd the command and its arguments
-- @tparam[opt] number timeout seconds to wait for the answer (default 30)
-- @treturn[1] string the kernel's answer
-- @treturn[2] nil
-- @treturn[2] string "mconsole 'CMD': " and the kernel's refusal
--   ("Unknown command") or what went wrong (no reply, socket closed)
function VM:mconsole(cmd, timeout)
  if type(cmd) ~= "string" then
    error("bad argument #1 to 'mconsole' (string expected, got " .. type(cmd) .. ")", 2)
  end
  if cmd == "" then error("bad argument #1 to 'mconsole' (empty command)", 2) end
  if #cmd >= 512 then error("bad argument #1 to 'mconsole' (command longer than 511 bytes)", 2) end
  if cmd:find("\0", 1, true) then error("bad argument #1 to 'mconsole' (command holds a NUL byte)", 2) end
  -- UML takes any command that starts with a command's name as that one.
  if cmd:find("^stop") or cmd:find("^go") then
    error("bad argument #1 to 'mconsole' ('stop' and 'go' are vm:pause() and vm:resume())", 2)
  end
  mconsole_ready(self, "mconsole", timeout, 2)
  return self._core:mconsole(cmd, timeout)
end

--- Press SysRq + `key` in a uml guest, as the mconsole's "sysrq" does:
-- "s" syncs, "h" prints the help line, "t" the tasks, "b" reboots, ...
-- It works while the guest is paused too.
-- @tparam string key one character
-- @tparam[opt] number timeout seconds (default 30)
-- @treturn[1] string what the kernel printed doing it (also on the console)
-- @treturn[2] nil
-- @treturn[2] string why not
function VM:sysrq(key, timeout)
  if type(key) ~= "string" or #key ~= 1 then
    error("bad argument #1 to 'sysrq' (a single character expected, got " ..
          (type(key) == "string" and ("'%s'"):format(key) or type(key)) .. ")", 2)
  end
  mconsole_ready(self, "sysrq", timeout, 2)
  return self._core:mconsole("sysrq " .. key, timeout)
end

--- Press Ctrl-Alt-Del in a uml guest (the mconsole's "cad"): the kernel
-- reboots at once (vm:wait() gives "reboot"), or, when the guest has
-- turned that off (busybox init does; `echo 0 >
-- /proc/sys/kernel/ctrl-alt-del`), sends SIGINT to its init, which
-- decides.
-- @tparam[opt] number timeout seconds (default 30)
-- @treturn[1] vmlua.VM self
-- @treturn[2] nil
-- @treturn[2] string why not
function VM:cad(timeout)
  mconsole_ready(self, "cad", timeout, 1)
  local _, err = self._core:mconsole("cad", timeout)
  if err then return nil, err end
  return self
end

--- The guest's own clock: seconds since it booted, as its kernel counts
-- them (/proc/uptime, read through the mconsole on uml).  Under
-- virtual time (`time = "virtual"`) it runs ahead of the wall clock
-- whenever the guest sleeps.  A kvm guest's clock is the host's: there
-- it is the seconds since `vm:start()`.
-- @tparam[opt] number timeout uml: seconds to wait for the answer (default 30)
-- @treturn[1] number seconds
-- @treturn[2] nil
-- @treturn[2] string why not
function VM:time(timeout)
  if self.backend ~= "uml" then
    if self.state ~= "running" and self.state ~= "paused" then
      error("vm:time(): the machine is " .. state_of(self), 2)
    end
    return core.monotonic() - self._started_mono
  end
  mconsole_ready(self, "time", timeout, 1)
  if self.state == "paused" then
    error("vm:time(): the machine is paused, and its kernel, which keeps its clock, with it; resume it first", 2)
  end
  local out, err = self._core:mconsole("proc uptime", timeout)
  if not out then return nil, err end
  local secs = tonumber(out:match("^%s*([%d.]+)%s"))
  if not secs then return nil, "vm:time(): the guest's /proc/uptime reads '" .. out .. "'" end
  return secs
end

--- Send bytes to the guest's console.
function VM:send(s)
  if type(s) ~= "string" then
    error("bad argument #1 to 'send' (string expected, got " .. type(s) .. ")", 2)
  end
  if self.state ~= "running" and self.state ~= "paused" then
    error("vm:send(): the machine is " .. self.state .. ", start it first", 2)
  end
  return self._core:send(s)
end

--- The most recent console output (up to 64 KiB): vm.console:output().
function VM:output()
  return self.console:output()
end

--- Exit counts by reason and the vCPU count.
function VM:stats() return self._core:stats() end

--- Registers of vCPU `cpu` (default 0) of a paused or stopped machine.
function VM:regs(cpu) return self._core:regs(cpu) end

--- Release everything; the machine stops first.
-- The uml backend's vhost-user servers: closed, their sockets removed.
-- They stay in the list (closed, their counters readable): a hook may
-- close them while the C loop is inside one, and the machine's core
-- holds them until it is collected.
function VM:_close_servers()
  for _, srv in ipairs(self.servers or {}) do srv:close() end
end

function VM:close()
  if self.state == "running" or self.state == "paused" then
    self:_unpause_for_end()
    self:_finish("stopped", "closed")
  end
  if self._core then self._core:close() end
  self:_close_servers()
  self.console:close()
  self:_hold(false)
  M.live[self] = nil
end
VM.__close = VM.close
VM.__gc = function() core.tty_restore() end

function VM:__tostring()
  return string.format("vmlua.VM (%s, %d vCPU%s, %d MiB, %s%s)", self.backend,
    self.cpus, self.cpus == 1 and "" or "s", self.memory_size >> 20, self.state,
    self.exit_reason and ": " .. self.exit_reason or "")
end

return M
