--- nested.lua - boot the nested L1 machine under QEMU TCG and report its
-- steps as TAP (docs/kvm-nested.md).
--
--   vmlua scripts/nested.lua [--steps a,b,...] [--flake N] [--bench N] [--exits N] [--timeout S]
--                            [--log PATH] [--shell] [--dir DIR] [--kernel PATH]
--
-- DIR (default build/nested) holds l1.cpio, which scripts/build-nested.lua
-- packs; L1's kernel is PATH (default build/guest/kvm/vmlinuz, the cloud
-- kernel L2 boots too).  QEMU runs with its
-- serial console on a pipe; L1's /init (scripts/nested-init.sh) prints a
-- TAP plan, "# step N NAME timeout S" before each step, and an ok/not ok
-- line after it.  Those lines are passed on as they come; everything else
-- L1 prints becomes a "# " comment, and all of it goes to --log (default
-- DIR/last.log).  Exit status 0 when every planned step passed (or L1
-- skipped them all), 3 when L1's own kernel panicked or hung (silent for
-- a whole step; QEMU's nested SVM emulation has failed so, rarely:
-- docs/kvm-nested.md), 1 otherwise.
--
-- Nothing outlives the run: QEMU runs under timeout(1) with a KILL at
-- --timeout (default 1200 s) plus a minute, whatever happens to us; we
-- KILL it ourselves when L1 does not come up within 300 s, when a step
-- overstays its announced time by a minute, when the whole run overstays
-- --timeout (default 1200 s, plus 60 s per --flake boot), on SIGINT or
-- SIGTERM, and at the end.
--
-- --shell boots L1 on this terminal instead, with nested.shell=1: the
-- steps run (none with --steps none), then a shell; `poweroff -f` leaves.
local unistd = require "posix.unistd"
local poll = require "posix.poll"
local wait = require "posix.sys.wait"
local signal = require "posix.signal"
local fcntl = require "posix.fcntl"
local time = require "posix.time"

local o = { dir = "build/nested", kernel = "build/guest/kvm/vmlinuz" }
local i = 1
while i <= #arg do
  local a = arg[i]
  if a == "--steps" or a == "--flake" or a == "--bench" or a == "--exits" or a == "--timeout" or a == "--log"
     or a == "--dir" or a == "--kernel" then
    i = i + 1; o[a:sub(3)] = arg[i]
  elseif a == "--shell" then o.shell = true
  elseif a == "-h" or a == "--help" then
    print("usage: vmlua scripts/nested.lua [--steps a,b,...] [--flake N] [--bench N] [--exits N] [--timeout S] " ..
          "[--log PATH] [--shell] [--dir DIR] [--kernel PATH]")
    os.exit(0)
  else
    io.stderr:write("nested: unknown option '", a, "'\n"); os.exit(2)
  end
  i = i + 1
end
-- Twenty minutes, and a minute more for each flake boot.
o.timeout = tonumber(o.timeout or 1200 + 60 * (tonumber(o.flake) or 0))
if not o.timeout then io.stderr:write("nested: --timeout must be a number of seconds\n"); os.exit(2) end
o.log = o.log or (o.dir .. "/last.log")

local function out(line) io.stdout:write(line, "\n"); io.stdout:flush() end

-- QEMU missing is a skip, not a failure (make test-nested installs it).
local qemu = "qemu-system-x86_64"
if not os.execute("command -v " .. qemu .. " >/dev/null 2>&1") then
  out("1..0 # SKIP " .. qemu .. " not found (apt-get install qemu-system-x86)")
  os.exit(0)
end
for _, p in ipairs{ o.dir .. "/l1.cpio", o.kernel } do
  local f = io.open(p, "rb")
  if not f then io.stderr:write("nested: ", p, " missing: run make test-nested\n"); os.exit(2) end
  f:close()
end

-- TCG with one thread per vCPU; -cpu max brings SVM with nested paging.
-- 2 GiB: L2's memory is allocated as it is touched (a 5 GiB selftest
-- guest touches little), and L1's initramfs holds ~30 MiB.
-- L1's tick is periodic, on the local APIC timer, not one-shot TSC
-- deadlines: twice L1 went silent for good (its timeouts, RCU and
-- hung-task reports never fired, as if no timer interrupt came again),
-- which a lost one-shot interrupt does and a periodic timer, which
-- re-arms itself, survives (docs/kvm-nested.md).
local append = { "console=ttyS0", "panic=-1", "quiet", "lapic=notscdeadline", "nohz=off", "highres=off" }
if o.steps then append[#append + 1] = "nested.steps=" .. o.steps end
if o.flake then append[#append + 1] = "nested.flake=" .. o.flake end
if o.bench then append[#append + 1] = "nested.bench=" .. o.bench end
if o.exits then append[#append + 1] = "nested.exits=" .. o.exits end
if o.shell then append[#append + 1] = "nested.shell=1" end
local argv = { [0] = "timeout", "-s", "KILL", tostring(math.floor(o.timeout) + 60), qemu,
  "-accel", "tcg,thread=multi", "-cpu", "max", "-smp", "2", "-m", "2048",
  "-nographic", "-no-reboot", "-kernel", o.kernel, "-initrd", o.dir .. "/l1.cpio",
  "-append", table.concat(append, " ") }

if o.shell then
  -- The terminal is L1's console (Ctrl-A x quits QEMU).
  unistd.execp("timeout", argv)
  io.stderr:write("nested: cannot run timeout(1)\n")
  os.exit(2)
end

local function now()
  local t = time.clock_gettime(time.CLOCK_MONOTONIC)
  return t.tv_sec + t.tv_nsec / 1e9
end

local r, w = unistd.pipe()
local pid = assert(unistd.fork())
if pid == 0 then
  unistd.close(r)
  local null = fcntl.open("/dev/null", fcntl.O_RDONLY)
  unistd.dup2(null, 0)
  unistd.dup2(w, 1)
  unistd.dup2(w, 2)
  unistd.execp("timeout", argv)
  unistd._exit(127)
end
unistd.close(w)
local log = assert(io.open(o.log, "wb"))
log:setvbuf("line")

local child_alive = true
local function kill_qemu()
  if child_alive then
    -- timeout(1) passes TERM on to QEMU; KILL ends timeout itself, and
    -- QEMU with it (--foreground is off: QEMU is in timeout's group).
    signal.kill(pid, signal.SIGTERM)
    local deadline = now() + 10
    while now() < deadline do
      if wait.wait(pid, wait.WNOHANG) ~= 0 then child_alive = false; return end
      time.nanosleep{ tv_sec = 0, tv_nsec = 100000000 }
    end
    signal.killpg(pid, signal.SIGKILL)
    signal.kill(pid, signal.SIGKILL)
    wait.wait(pid)
    child_alive = false
  end
end
local interrupted
for _, s in ipairs{ signal.SIGINT, signal.SIGTERM, signal.SIGHUP } do
  signal.signal(s, function(n) interrupted = n end)
end

local t0 = now()
local run_deadline = t0 + o.timeout
local deadline = t0 + 300          -- until L1 prints its plan
local waiting_for = "L1 to boot and print its plan"
local plan, oks, fails, skipped = nil, 0, 0, false
local step, step_t0
local pending = ""
local bail, l1_panic
local last_heard = now()           -- when L1 last printed anything

local function line(l)
  l = l:gsub("\r", "")
  log:write(l, "\n")
  local n = l:match("^1%.%.(%d+)")
  if n then
    plan = tonumber(n)
    skipped = l:match("# SKIP") ~= nil
    out(l)
    out(("# nested: L1 ran its /init after %.1f s"):format(now() - t0))
    deadline = run_deadline
    waiting_for = "the first step"
    return
  end
  local num, name, secs = l:match("^# step (%d+) (%S+) timeout (%d+)$")
  if num then
    step, step_t0 = { num = tonumber(num), name = name }, now()
    deadline = math.min(run_deadline, step_t0 + tonumber(secs) + 60)
    waiting_for = "step " .. name
    out(l)
    return
  end
  if l:match("^ok %d+") then
    oks = oks + 1; out(l); return
  elseif l:match("^not ok %d+") then
    fails = fails + 1; out(l); return
  end
  -- L1's own kernel dying is QEMU's (or L1's) failure, not a step's:
  -- say so, so that a caller can tell it apart and try again.
  if l:match("Kernel panic %- not syncing") and not l:match("^#") then
    l1_panic = l:match("(Kernel panic.*)$")
    bail = "L1's kernel panicked: " .. l1_panic
  end
  if l:match("^#") then out(l) else out("# " .. l) end
end

while true do
  if interrupted then bail = "interrupted by signal " .. interrupted break end
  if l1_panic then break end
  local left = deadline - now()
  if left <= 0 then
    if step then
      out(("not ok %d - %s (the host gave up after %.0f s)"):format(step.num, step.name, now() - step_t0))
      fails = fails + 1
      -- Every step in L1 ends by itself (a KILL at its limit), and L1
      -- reports it; not a byte from L1 since the step began means L1's
      -- own kernel stopped, as under QEMU's SVM emulation it rarely does.
      if last_heard < step_t0 then
        l1_panic = ("L1 hung: not a byte on its console for the %.0f s of step %s"):format(
          now() - step_t0, step.name)
        bail = l1_panic
        break
      end
    end
    bail = ("timed out after %.0f s waiting for %s"):format(now() - t0, waiting_for)
    break
  end
  local ready = poll.rpoll(r, math.floor(math.min(left, 1) * 1000))
  if ready and ready > 0 then
    local data = unistd.read(r, 65536)
    if not data or data == "" then break end        -- QEMU is gone
    last_heard = now()
    pending = pending .. data
    while true do
      local l, rest = pending:match("^([^\n]*)\n(.*)$")
      if not l then break end
      pending = rest
      line(l)
    end
  end
end
if pending ~= "" then line(pending) end
unistd.close(r)
kill_qemu()
log:close()

local elapsed = now() - t0
if bail then
  out("Bail out! " .. bail)
elseif not plan then
  out("Bail out! L1 ended without a TAP plan (see " .. o.log .. ")")
end
local done = oks + fails
out(("# nested: %d ok, %d not ok of %s planned, %.1f s in all"):format(oks, fails,
    plan and tostring(plan) or "?", elapsed))
local good = plan ~= nil and not bail and fails == 0 and (skipped or done == plan)
os.exit(good and 0 or l1_panic and 3 or 1)
