--- vmlua.test: regression scenarios that boot real guests, and
-- `vmlua test`, which runs them and reports in TAP or JUnit.
--
-- A scenario file calls `scenario` (a global while it loads):
--
--     scenario "boot, run, power off" {
--       function(vm)
--         local out, status = vm.console:run("uname -s")
--         assert(status == 0 and out == "Linux\n", out)
--         vm.console:send("poweroff -f\n")
--         assert(vm:wait(30) == "poweroff")
--       end,
--     }
--
-- See docs/scenarios.md for every option.
-- @module vmlua.test
local argparse = require "argparse"
local dirent = require "posix.dirent"
local fcntl = require "posix.fcntl"
local poll = require "posix.poll"
local signal = require "posix.signal"
local stat = require "posix.sys.stat"
local stdlib = require "posix.stdlib"
local time = require "posix.time"
local unistd = require "posix.unistd"
local wait = require "posix.sys.wait"

local M = {}

-- Each option of a scenario and what it must be: checked as the file
-- loads, before anything boots.
local function is_string(v) return type(v) == "string" end
local function is_names(v)
  if type(v) ~= "table" then return false end
  for i, name in next, v do
    if math.type(i) ~= "integer" or i < 1 or type(name) ~= "string" or name == "" then return false end
  end
  return true
end
local OPTIONS = {
  backend = { "'auto', 'kvm' or 'uml'", function(v) return v == "auto" or v == "kvm" or v == "uml" end },
  memory = { "a size such as '256M' or a number of bytes",
             function(v) return is_string(v) or (math.type(v) == "integer" and v > 0) end },
  cpus = { "a positive integer", function(v) return math.type(v) == "integer" and v > 0 end },
  kernel = { "a path", is_string }, initrd = { "a path", is_string }, cmdline = { "a string", is_string },
  devices = { "a list of vmlua.Device or a function(name, ctx)",
              function(v) return type(v) == "table" or type(v) == "function" end },
  machines = { "a list of machine names", is_names },
  timeout = { "a positive number of seconds", function(v) return type(v) == "number" and v > 0 end },
  ready = { "a string, or false", function(v) return v == false or is_string(v) end },
  xfail = { "a string saying why", is_string },
  time = { "'real' or 'virtual'", function(v) return v == "real" or v == "virtual" end },
  [1] = { "the body, a function", function(v) return type(v) == "function" end },
}

local function now() return require("vmlua.core").monotonic() end

-- A wrong option's value in a message: strings quoted, numbers and
-- booleans as they are, anything else by its type (a __tostring is the
-- scenario's own code, which may fail).
local function shown(v)
  if type(v) == "string" then return "'" .. v .. "'" end
  if type(v) == "number" or type(v) == "boolean" then return tostring(v) end
  return type(v)
end

-- `scenario "name" { ... }`, collecting into list.
local function collector(list, file)
  return function(name)
    if type(name) ~= "string" then
      error("scenario: a name (string) expected, got " .. type(name), 2)
    end
    return function(spec)
      if type(spec) ~= "table" or type(rawget(spec, 1)) ~= "function" then
        error("scenario '" .. name .. "': a table with the body as its first item expected", 2)
      end
      -- What is checked is what the runner reads: the table's own
      -- entries, copied (a metatable's __index or __pairs would show the
      -- checks one thing and the runner another), lists too.
      local own = {}
      for k, v in next, spec do
        local want = OPTIONS[k]
        if not want then error("scenario '" .. name .. "': unknown option '" .. tostring(k) .. "'", 2) end
        if not want[2](v) then
          error(("scenario '%s': option '%s' must be %s, got %s"):format(name, tostring(k), want[1],
            shown(v)), 2)
        end
        if type(v) == "table" then
          local copy = {}
          for i, item in next, v do copy[i] = item end
          v = copy
        end
        own[k] = v
      end
      list[#list + 1] = { name = name, file = file, index = #list + 1, spec = own }
    end
  end
end

--- Load the scenarios of one file.
-- @tparam string file its name
-- @tparam[opt] string text its contents, when they are already read (the
--   fuzzer's way in: fuzz/fuzz_scenario.c)
-- @treturn[1] table list of { name, file, index, spec }
-- @treturn[2] nil
-- @treturn[2] string the load error
function M.load(file, text)
  local list = {}
  local env = setmetatable({ scenario = collector(list, file) }, { __index = _G })
  local chunk, err
  if text then
    chunk, err = load(text, "@" .. file, "t", env)
  else
    chunk, err = loadfile(file, "t", env)
  end
  if not chunk then return nil, err end
  local ok, rerr = pcall(chunk)
  if not ok then
    -- An error object's __tostring may itself fail, or give no string.
    local sok, msg = pcall(tostring, rerr)
    if not sok or type(msg) ~= "string" then msg = "an error object (" .. type(rerr) .. ")" end
    return nil, file .. ": " .. msg
  end
  return list
end

-- Every console of a machine runs every machine of the scenario while it
-- waits, and stops at the scenario's deadline.
local function group_pump(vms, owner, deadline, timeout)
  return function(slice)
    if now() > deadline then error(("scenario timeout: %g s"):format(timeout), 0) end
    local per = math.max(0.01, math.min(slice, deadline - now()) / #vms)
    local r, d
    for _, v in ipairs(vms) do
      local rr, dd
      if v.state == "running" then rr, dd = v:_turn(per) else rr, dd = v.exit_reason, v.exit_detail end
      if v == owner then r, d = rr, dd end
    end
    return r, d
  end
end

-- Files and directories, through luaposix.
local function is_dir(p)
  local st = stat.stat(p)
  return st ~= nil and stat.S_ISDIR(st.st_mode) ~= 0
end

-- The files of the given paths: *.lua in directories, sorted.
local function files_of(paths)
  local out = {}
  for _, p in ipairs(paths) do
    if is_dir(p) then
      p = p:gsub("(.)/+$", "%1")
      local names = {}
      for _, name in ipairs(dirent.dir(p)) do
        local st = name:match("%.lua$") and stat.stat(p .. "/" .. name)
        if st and stat.S_ISREG(st.st_mode) ~= 0 then names[#names + 1] = p .. "/" .. name end
      end
      table.sort(names)
      table.move(names, 1, #names, #out + 1, out)
    else
      out[#out + 1] = p    -- a file, or a missing path (load says why)
    end
  end
  return out
end

-- Remove path and, if it is a directory, everything in it.
local function rmtree(path)
  local st = stat.lstat(path)
  if st and stat.S_ISDIR(st.st_mode) ~= 0 then
    for _, name in ipairs(dirent.dir(path)) do
      if name ~= "." and name ~= ".." then rmtree(path .. "/" .. name) end
    end
  end
  os.remove(path)
end

-- Move a file, copying it when rename cannot (another file system).
local function move(from, to)
  if os.rename(from, to) then return true end
  local src, dst = io.open(from, "rb"), io.open(to, "wb")
  if not (src and dst) then return false end
  dst:write(src:read("a"))
  src:close()
  dst:close()
  return os.remove(from)
end

--- Run one scenario: fresh machines, the body, then everything closed.
-- Its machines' boot logs go to dir/<machine>.log; dir/tmp is the
-- scenario's `s.tmpdir` and its TMPDIR while it runs (UML's sockets,
-- copy-on-write overlays).  The caller made dir and removes it.
-- @tparam table sc a scenario from `load`
-- @tparam[opt] string backend for scenarios that do not choose
-- @tparam string dir an empty directory of this scenario's own
-- @treturn table { name, ok, xfail, message, logs, seconds }
function M.run_one(sc, backend, dir)
  if type(dir) ~= "string" then
    error("bad argument #3 to 'run_one' (directory expected, got " .. type(dir) .. ")", 2)
  end
  local vmlua = require "vmlua"
  local virtio = require "vmlua.virtio"
  local spec = sc.spec
  local t0 = now()
  local timeout = spec.timeout or 120
  local deadline = t0 + timeout
  local ctx = { switch = vmlua.switch(), name = sc.name, tmpdir = dir .. "/tmp" }
  assert(stat.mkdir(ctx.tmpdir))
  local tmpdir = os.getenv("TMPDIR")
  stdlib.setenv("TMPDIR", ctx.tmpdir)
  local names = spec.machines or { "vm" }
  local vms, byname, logs, devs = {}, {}, {}, {}
  -- Build a machine from the scenario's options (o overrides them).
  local function build(name, o)
    -- Virtual time is uml's: a scenario that asks for it has chosen uml,
    -- whatever --backend says for the others.
    local clock = o.time or spec.time
    local backend_name = o.backend or spec.backend or (clock == "virtual" and "uml") or backend or "auto"
    if backend_name == "auto" then backend_name = assert(vmlua.auto_backend()) end
    local guest = vmlua.guest(backend_name) or {}
    local devices = o.devices
    if devices == nil then devices = spec.devices end
    if type(devices) == "function" then devices = devices(name, ctx) end
    local log = dir .. "/" .. name .. ".log"
    logs[#logs + 1] = log
    local vm, why = vmlua.vm{
      backend = backend_name,
      kernel = o.kernel or spec.kernel or guest.kernel,
      initrd = o.initrd or spec.initrd or guest.initrd,
      cmdline = o.cmdline or spec.cmdline or guest.cmdline or "quiet",
      memory = o.memory or spec.memory or "128M",
      cpus = o.cpus or spec.cpus, time = clock,
      console = "none", log = log,
      devices = devices,
    }
    if not vm then error("cannot build machine '" .. name .. "': " .. tostring(why), 0) end
    vms[#vms + 1], byname[name] = vm, vm
    vm._limit = { at = deadline, why = ("scenario timeout: %g s"):format(timeout) }
    devs[vm] = devices or {}
    return vm
  end
  -- Start machines; each console drives them all; wait for the shell.
  local function start(list, o)
    for _, vm in ipairs(list) do
      local turn = group_pump(vms, vm, deadline, timeout)
      vm.console:driven_by(turn)
      for _, dev in ipairs(devs[vm]) do
        local con = virtio.console_of[dev]
        if con then con:driven_by(turn) end
      end
      assert(vm:start())
    end
    -- The default guest says when its shell is there.
    local ready = o.ready
    if ready == nil then ready = spec.ready end
    if ready == nil and not (o.initrd or spec.initrd) then ready = "guest ready" end
    if ready then
      for _, vm in ipairs(list) do vm.console:expect(ready, math.max(1, deadline - now()), true) end
    end
  end
  --- ctx.boot{ ... }: one more machine in this scenario (a second boot
  -- of a disk, say), built like the first and started; closed at the end.
  function ctx.boot(o)
    o = o or {}
    local vm = build("boot" .. (#vms + 1), o)
    start({ vm }, o)
    return vm
  end
  -- A body that calls os.exit would end the whole run with its status
  -- and the results missing: while it runs, os.exit is an error.
  local exit = os.exit
  os.exit = function(code)  -- luacheck: ignore 122
    error(("os.exit(%s) in a scenario body"):format(tostring(code)), 2)
  end
  -- A stop (SIGINT, SIGTERM, SIGHUP) ends the body even when it catches
  -- the "interrupted" error, as a body retrying an expect in pcall does.
  -- A hook looks every 1000 steps; once there was a stop, it raises the
  -- error at every step taken inside the body, until the body is gone.
  local core = require "vmlua.core"
  local stops = core.interrupts()
  local function stopped() return core.interrupts() ~= stops end
  local function body()
    local first = {}
    for _, name in ipairs(names) do first[#first + 1] = build(name, {}) end
    start(first, {})
    if spec.machines then spec[1](byname, ctx) else spec[1](vms[1], ctx) end
  end
  local function in_body()
    local level = 3
    while true do
      local info = debug.getinfo(level, "f")
      if not info then return false end
      if info.func == body then return true end
      level = level + 1
    end
  end
  local function watch()
    if stopped() and in_body() then
      debug.sethook(watch, "", 1)
      error("interrupted", 0)
    end
  end
  debug.sethook(watch, "", 1000)
  local ok, err = xpcall(body, function(e)
    if type(e) == "string" and not e:find("\n") then return e end
    return tostring(e)
  end)
  debug.sethook()
  if stopped() then ok, err = false, "interrupted" end
  os.exit = exit  -- luacheck: ignore 122
  for _, vm in ipairs(vms) do vm:close() end
  if tmpdir then stdlib.setenv("TMPDIR", tmpdir) else stdlib.setenv("TMPDIR", nil) end
  local result = { name = sc.name, ok = ok, logs = logs, xfail = spec.xfail, seconds = now() - t0 }
  if not ok then
    result.message = err
    -- Ctrl-C, SIGTERM or SIGHUP (core/main.c turns each into this error)
    result.interrupted = err:find("interrupted$") ~= nil or nil
  end
  return result
end

-- A result as a line of Lua, for a child to hand to its parent.
local function serialize(r)
  local parts = {}
  for k, v in pairs(r) do
    if type(v) == "table" then
      local items = {}
      for _, x in ipairs(v) do items[#items + 1] = ("%q"):format(x) end
      parts[#parts + 1] = k .. " = {" .. table.concat(items, ",") .. "}"
    elseif type(v) == "string" then
      parts[#parts + 1] = k .. " = " .. ("%q"):format(v)
    else
      parts[#parts + 1] = k .. " = " .. tostring(v)
    end
  end
  return "return {" .. table.concat(parts, ", ") .. "}"
end

local function xml(s)
  return (tostring(s):gsub("[<>&\"]", { ["<"] = "&lt;", [">"] = "&gt;", ["&"] = "&amp;", ['"'] = "&quot;" })
    :gsub("[%z\1-\8\11\12\14-\31]", "?"))
end

-- The JUnit report: a failure per failed scenario, an error per
-- interrupted one, and the scenarios an interruption left unrun skipped.
local function junit(path, list, results, seconds)
  local f, err = io.open(path, "w")
  if not f then return nil, err end
  local failures, errors, skipped = 0, 0, 0
  for i = 1, #list do
    local r = results[i]
    if not r or r.xfail then skipped = skipped + 1
    elseif r.interrupted then errors = errors + 1
    elseif not r.ok then failures = failures + 1 end
  end
  local counts = ('tests="%d" failures="%d" errors="%d" skipped="%d" time="%.3f"'):format(#list, failures, errors,
    skipped, seconds)
  f:write('<?xml version="1.0" encoding="UTF-8"?>\n')
  f:write(('<testsuites %s>\n'):format(counts))
  f:write(('  <testsuite name="vmlua" %s>\n'):format(counts))
  for i, sc in ipairs(list) do
    local r = results[i] or { name = sc.name }
    f:write(('    <testcase classname="%s" name="%s" time="%.3f"'):format(xml(sc.file), xml(sc.name), r.seconds or 0))
    local logs = r.logs and xml("\nboot logs: " .. table.concat(r.logs, " ")) or ""
    if not results[i] then
      f:write('>\n      <skipped message="not run: the run was interrupted"/>\n    </testcase>\n')
    elseif r.xfail then
      f:write(('>\n      <skipped message="%s"/>\n    </testcase>\n'):format(
        xml("expected failure: " .. r.xfail .. (r.ok and " (but it passed)" or ": " .. tostring(r.message)))))
    elseif r.interrupted then
      f:write(('>\n      <error message="interrupted" type="interrupted">%s</error>\n    </testcase>\n'):format(logs))
    elseif not r.ok then
      f:write(('>\n      <failure message="%s">%s%s</failure>\n    </testcase>\n'):format(
        xml(r.message:match("[^\n]*")), xml(r.message), logs))
    else
      f:write("/>\n")
    end
  end
  f:write("  </testsuite>\n</testsuites>\n")
  f:close()
  return true
end

-- The command line.  Converters name their option in their message.
local function whole(s)
  local n = math.tointeger(tonumber(s))
  if not n or n < 1 then return nil, "-j needs a whole number of at least 1, got '" .. s .. "'" end
  return n
end

local function shard(s)
  local k, n = s:match("^(%d+)/(%d+)$")
  k, n = tonumber(k), tonumber(n)
  if not k or k < 1 or k > n then return nil, "--shard needs K/N with 1 <= K <= N, got '" .. s .. "'" end
  return { k = k, n = n }
end

local function parser()
  local p = argparse("vmlua test")
    :description("Run regression scenarios (default: the shipped scripts/scenarios).  Each gets fresh "
      .. "machines and its own timeout; TAP goes to stdout.")
    :epilog("Exit status: the number of failed scenarios (at most 125; expected failures do not count), "
      .. "126 if the run cannot start (bad usage, a scenario file that does not load, a --filter or --shard "
      .. "that selects nothing), 130 if SIGINT, SIGTERM or SIGHUP stopped it.  See docs/scenarios.md.")
    :add_help(false)
    :help_max_width(79)
  p:argument("paths", "Scenario files, or directories of *.lua files."):args("*"):argname("FILE|DIR")
  p:flag("-h --help", "Show this help and exit.")
  p:flag("--tap", "TAP on stdout (the default).")
  p:option("--junit", "Also write a JUnit XML report to FILE."):argname("FILE")
  p:option("-j", "Run N scenarios at a time, each in its own vmlua process."):argname("N"):convert(whole):default("1")
  p:option("--filter", "Only the scenarios whose name matches the Lua pattern PAT."):argname("PAT")
  p:option("--shard", "Only the K-th of N slices of the (filtered) scenarios: those whose 0-based index i "
    .. "has i % N == K-1."):argname("K/N"):convert(shard)
  p:option("--backend", "auto, kvm or uml, for scenarios that do not choose."):argname("B")
  p:option("--logdir", "Keep the boot logs of failed and interrupted scenarios in DIR (default: failed "
    .. "ones in a private $TMPDIR/vmlua-test-XXXXXX, removed when nothing fails)."):argname("DIR")
  p:option("--run-one"):args(4):hidden(true)    -- a child of -j: FILE INDEX DIR FD
  return p
end

-- A child of -j: run one scenario, write its result to fd, and exit.
local function child(o)
  local file, index, dir, fd = table.unpack(o.run_one)
  fd = assert(math.tointeger(tonumber(fd)), "--run-one: FD must be a number")
  fcntl.fcntl(fd, fcntl.F_SETFD, fcntl.FD_CLOEXEC)     -- not for linux.uml
  local list, err = M.load(file)
  local sc = list and list[tonumber(index)]
  local r = sc and M.run_one(sc, o.backend, dir)
    or { name = file .. "#" .. index, ok = false, message = err or "no such scenario" }
  local s = serialize(r)
  while #s > 0 do
    local n = unistd.write(fd, s)
    if not n then break end
    s = s:sub(n + 1)
  end
  return 0
end

local STOP = { signal.SIGINT, signal.SIGTERM, signal.SIGHUP }

-- Wait for a child, and kill it if it has not gone within `grace` seconds.
local function reap(pid, grace)
  for _ = 1, grace * 10 do
    local p, how, code = wait.wait(pid, wait.WNOHANG)
    if p ~= 0 then return how, code end
    time.nanosleep{ tv_sec = 0, tv_nsec = 100000000 }
  end
  signal.kill(pid, signal.SIGKILL)
  return select(2, wait.wait(pid))
end

-- Start scenario i in a child: `vmlua test --run-one FILE INDEX DIR FD`,
-- its result coming back on a pipe.  No shell in between.
local function launch(exe, sc, dir, backend)
  local r, w = assert(unistd.pipe())
  for _, fd in ipairs{ r, w } do fcntl.fcntl(fd, fcntl.F_SETFD, fcntl.FD_CLOEXEC) end
  local pid = assert(unistd.fork())
  if pid == 0 then
    local null = fcntl.open("/dev/null", fcntl.O_RDWR)
    for fd = 0, 2 do unistd.dup2(null, fd) end
    fcntl.fcntl(w, fcntl.F_SETFD, 0)
    local argv = { [0] = exe, "test", "--run-one", sc.file, tostring(sc.index), dir, tostring(w) }
    if backend then table.move({ "--backend", backend }, 1, 2, #argv + 1, argv) end
    unistd.execp(exe, argv)
    unistd._exit(127)
  end
  unistd.close(w)
  return { pid = pid, fd = r, out = {} }
end

-- Run the scenarios N at a time, each in a child process, until all are
-- done or a signal says stop; then kill the children that still run.
-- Calls done(i, result) as each finishes.  Returns true if stopped.
-- How long past its timeout a -j child may run before it is killed.
local KILL_GRACE = 30

local function run_parallel(exe, list, o, dir_of, done)
  local stop = false
  for _, s in ipairs(STOP) do signal.signal(s, function() stop = true end) end
  local jobs, running, next_i = {}, 0, 1
  while not stop and (next_i <= #list or running > 0) do
    while running < o.j and next_i <= #list do
      local job = launch(exe, list[next_i], dir_of(next_i), o.backend)
      job.i, jobs[job.fd], running, next_i = next_i, job, running + 1, next_i + 1
      -- The scenario's timeout holds from outside too: a child still
      -- running a while after it (a body stuck where the child cannot
      -- see its deadline) is killed, and its pipe's end reports it.
      job.deadline = now() + (list[job.i].spec.timeout or 120) + KILL_GRACE
    end
    local fds = {}
    for fd, job in pairs(jobs) do
      fds[fd] = { events = { IN = true } }
      if now() > job.deadline and not job.killed then
        signal.kill(job.pid, signal.SIGKILL)
        job.killed = ("killed: still running %d s after its timeout of %g s"):format(KILL_GRACE,
          list[job.i].spec.timeout or 120)
      end
    end
    poll.poll(fds, 1000)      -- a signal ends it early (EINTR)
    for fd, p in pairs(fds) do
      local job = jobs[fd]
      local data = p.revents and (p.revents.IN or p.revents.HUP or p.revents.ERR) and unistd.read(fd, 65536)
      if data and #data > 0 then
        job.out[#job.out + 1] = data
      elseif data then        -- end of file: the child is done
        unistd.close(fd)
        jobs[fd], running = nil, running - 1
        local how, code = reap(job.pid, 30)
        local chunk = load(table.concat(job.out), "=result", "t", {})
        local okc, r = pcall(chunk or error)
        if not (okc and type(r) == "table") then
          r = { name = list[job.i].name, ok = false, message = job.killed or
            ("the child process %s (%s) without a result"):format(how or "ended", tostring(code)) }
        end
        done(job.i, r)
      end
    end
  end
  for _, job in pairs(jobs) do signal.kill(job.pid, signal.SIGTERM) end
  for fd, job in pairs(jobs) do
    reap(job.pid, 30)
    unistd.close(fd)
    done(job.i, { name = list[job.i].name, ok = false, interrupted = true })
  end
  return stop
end

-- Run the scenarios one after the other in this process.  core/main.c
-- turns SIGINT, SIGTERM and SIGHUP into an "interrupted" error in
-- whatever Lua code runs, which run_one reports, or which ends up here.
local function run_serial(list, o, dir_of, done)
  local current
  local ok, err = pcall(function()
    for i, sc in ipairs(list) do
      current = i
      local r = M.run_one(sc, o.backend, dir_of(i))
      current = nil
      done(i, r)
      if r.interrupted then return true end
    end
    return false
  end)
  if ok then return err end
  if not tostring(err):find("interrupted$") then error(err, 0) end
  if current then done(current, { name = list[current].name, ok = false, interrupted = true }) end
  return true
end

-- A scenario name as a file name.
local function slug(s)
  return (s:gsub("[^%w]+", "-"):gsub("^%-", ""):gsub("%-$", ""))
end

--- The options of `vmlua test ...`, parsed and checked; nothing is done
-- with them yet.
-- @tparam table argv the words after "test"
-- @treturn[1] true
-- @treturn[1] table the options (paths, j, filter, shard, backend, ...)
-- @treturn[2] false
-- @treturn[2] string what is wrong
-- @treturn[2] argparse the parser, for its usage line
function M.parse_args(argv)
  local p = parser()
  local ok, o = p:pparse(argv)
  return ok, o, p
end

--- `vmlua test ...`: returns the process exit status.
function M.main(argv, exe)
  local ok, o, p = M.parse_args(argv)
  local function usage_error(msg, usage)
    io.stderr:write("vmlua test: ", msg, "\n", usage and p:get_usage() .. "\n" or "")
    return 126
  end
  if not ok then return usage_error(o, true) end
  if o.help then io.write(p:get_help(), "\n"); return 0 end
  if o.run_one then return child(o) end
  if o.logdir and not is_dir(o.logdir) then
    local made, why = stat.mkdir(o.logdir)
    if not made then return usage_error("--logdir: " .. why) end
  end
  if #o.paths == 0 then
    local dir, why = require("vmlua.paths").shipped("scenarios")
    if not dir then io.stderr:write("vmlua test: no scenarios given, and ", why, "\n"); return 126 end
    o.paths = { dir }
  end
  -- Every scenario, then those --filter and --shard select.
  local all, list = {}, {}
  for _, file in ipairs(files_of(o.paths)) do
    local got, err = M.load(file)
    if not got then
      io.stderr:write("vmlua test: ", err, "\n")
      return 126
    end
    table.move(got, 1, #got, #all + 1, all)
  end
  if #all == 0 then return usage_error("no scenarios in " .. table.concat(o.paths, " ")) end
  for _, sc in ipairs(all) do
    local fok, found = pcall(string.find, sc.name, o.filter or "")
    if not fok then return usage_error("--filter '" .. o.filter .. "': " .. found:gsub("^.-: ", "")) end
    if found then list[#list + 1] = sc end
  end
  if #list == 0 then
    return usage_error(("--filter '%s' selects none of the %d scenarios"):format(o.filter, #all))
  end
  if o.shard then
    local slice = {}
    for i, sc in ipairs(list) do
      if (i - 1) % o.shard.n == o.shard.k - 1 then slice[#slice + 1] = sc end
    end
    if #slice == 0 then
      return usage_error(("--shard %d/%d selects none of the %d scenarios"):format(o.shard.k, o.shard.n, #list))
    end
    list = slice
  end

  -- Each scenario runs in base/i; what is kept of it goes to --logdir
  -- or stays in base, which goes if nothing is kept.
  local base = assert(stdlib.mkdtemp((os.getenv("TMPDIR") or "/tmp") .. "/vmlua-test-XXXXXX"))
  local function dir_of(i)
    local dir = base .. "/" .. i
    assert(stat.mkdir(dir))
    return dir
  end
  io.write("TAP version 13\n1..", #list, "\n")
  io.flush()
  local t0, failures, stopped, results, reported = now(), 0, 0, {}, 0
  local function report(i, r)
    local directive = r.interrupted and " # interrupted" or r.xfail and (" # TODO expected failure: " .. r.xfail) or ""
    io.write(r.ok and "ok " or "not ok ", i, " - ", r.name, directive, "\n")
    if not r.ok and not r.interrupted then
      for line in tostring(r.message):gmatch("[^\n]+") do io.write("# ", line, "\n") end
    end
    if r.logs then io.write("# boot logs kept: ", table.concat(r.logs, " "), "\n") end
    io.write(("# %.1f s\n"):format(r.seconds or now() - t0))
    io.flush()
    if r.interrupted then stopped = stopped + 1
    elseif not r.ok and not r.xfail then failures = failures + 1 end
  end
  -- A scenario is over: keep what its failure needs, remove the rest,
  -- and report in order.
  local function done(i, r)
    local dir = base .. "/" .. i
    local keep = not r.ok and not r.xfail and (o.logdir or not r.interrupted)
    r.logs = nil
    if keep then
      local logs = {}
      for _, name in ipairs(dirent.dir(dir)) do
        if name:match("%.log$") then
          local to = (o.logdir or base) .. "/" .. slug(r.name) .. "." .. name
          if move(dir .. "/" .. name, to) then logs[#logs + 1] = to end
        end
      end
      table.sort(logs)
      r.logs = logs[1] and logs
    end
    rmtree(dir)
    r.file = list[i].file
    results[i] = r
    while results[reported + 1] do
      reported = reported + 1
      report(reported, results[reported])
    end
  end
  local interrupted
  if o.j > 1 then
    interrupted = run_parallel(exe or require("vmlua.paths").exe(), list, o, dir_of, done)
  else
    interrupted = run_serial(list, o, dir_of, done)
  end
  -- What is left is the boot logs kept, or nothing.
  for _, s in ipairs(STOP) do signal.signal(s, function() end) end
  os.remove(base)
  local seconds = now() - t0
  if interrupted then
    io.write(("Bail out! interrupted; %d of %d scenarios not run\n"):format(#list - reported, #list))
  end
  io.write(("# %d scenarios, %d failed%s, in %.1f s\n"):format(reported, failures,
    interrupted and (", %d interrupted"):format(stopped) or "", seconds))
  if o.junit then
    local jok, jerr = junit(o.junit, list, results, seconds)
    if not jok then io.stderr:write("vmlua test: ", jerr, "\n"); return 126 end
  end
  if interrupted then return 130 end
  return math.min(failures, 125)
end

return M
