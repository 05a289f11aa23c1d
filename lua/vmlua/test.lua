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
local M = {}

local OPTIONS = { backend = true, memory = true, cpus = true, kernel = true, initrd = true,
  cmdline = true, devices = true, machines = true, timeout = true, ready = true,
  xfail = true, [1] = true }

local function now() return require("vmlua.core").monotonic() end

-- `scenario "name" { ... }`, collecting into list.
local function collector(list, file)
  return function(name)
    if type(name) ~= "string" then
      error("scenario: a name (string) expected, got " .. type(name), 2)
    end
    return function(spec)
      if type(spec) ~= "table" or type(spec[1]) ~= "function" then
        error("scenario '" .. name .. "': a table with the body as its first item expected", 2)
      end
      for k in pairs(spec) do
        if not OPTIONS[k] then error("scenario '" .. name .. "': unknown option '" .. tostring(k) .. "'", 2) end
      end
      list[#list + 1] = { name = name, file = file, index = #list + 1, spec = spec }
    end
  end
end

--- Load the scenarios of one file.
-- @treturn[1] table list of { name, file, index, spec }
-- @treturn[2] nil
-- @treturn[2] string the load error
function M.load(file)
  local list = {}
  local env = setmetatable({ scenario = collector(list, file) }, { __index = _G })
  local chunk, err = loadfile(file, "t", env)
  if not chunk then return nil, err end
  local ok, rerr = pcall(chunk)
  if not ok then return nil, file .. ": " .. tostring(rerr) end
  return list
end

-- The files of the given paths: *.lua in directories, sorted.
local function files_of(paths)
  local out = {}
  for _, p in ipairs(paths) do
    local ls = io.popen("find " .. ("%q"):format(p) .. " -maxdepth 1 -name '*.lua' -type f 2>/dev/null | sort")
    local found = false
    for f in ls:lines() do out[#out + 1] = f; found = true end
    ls:close()
    if not found then out[#out + 1] = p end    -- a file, or a missing path (load says why)
  end
  return out
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
      if v.state == "running" then rr, dd = v:wait(per) else rr, dd = v.exit_reason, v.exit_detail end
      if v == owner then r, d = rr, dd end
    end
    return r, d
  end
end

--- Run one scenario: fresh machines, the body, then everything closed.
-- @treturn table { name, ok, xfail, message, logs, seconds }
function M.run_one(sc, backend)
  local vmlua = require "vmlua"
  local virtio = require "vmlua.virtio"
  local spec = sc.spec
  local t0 = now()
  local timeout = spec.timeout or 120
  local deadline = t0 + timeout
  local ctx = { switch = vmlua.switch(), name = sc.name }
  local names = spec.machines or { "vm" }
  local vms, byname, logs, devs = {}, {}, {}, {}
  local function fail(msg) return { name = sc.name, ok = false, message = msg } end
  local result
  -- Build a machine from the scenario's options (o overrides them).
  local function build(name, o)
    local backend_name = o.backend or spec.backend or backend or "auto"
    if backend_name == "auto" then backend_name = assert(vmlua.auto_backend()) end
    local guest = vmlua.guest(backend_name) or {}
    local devices = o.devices
    if devices == nil then devices = spec.devices end
    if type(devices) == "function" then devices = devices(name, ctx) end
    local log = os.tmpname()
    logs[#logs + 1] = log
    local vm, why = vmlua.vm{
      backend = backend_name,
      kernel = o.kernel or spec.kernel or guest.kernel,
      initrd = o.initrd or spec.initrd or guest.initrd,
      cmdline = o.cmdline or spec.cmdline or "quiet",
      memory = o.memory or spec.memory or "128M",
      cpus = o.cpus or spec.cpus,
      console = "none", log = log,
      devices = devices,
    }
    if not vm then error("cannot build machine '" .. name .. "': " .. tostring(why), 0) end
    vms[#vms + 1], byname[name] = vm, vm
    devs[vm] = devices or {}
    return vm
  end
  -- Start machines; each console drives them all; wait for the shell.
  local function start(list, o)
    for _, vm in ipairs(list) do
      vm.console._pump = group_pump(vms, vm, deadline, timeout)
      for _, dev in ipairs(devs[vm]) do
        local con = virtio.console_of[dev]
        if con then con._pump = vm.console._pump end
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
  local ok, err = xpcall(function()
    local first = {}
    for _, name in ipairs(names) do first[#first + 1] = build(name, {}) end
    start(first, {})
    if spec.machines then spec[1](byname, ctx) else spec[1](vms[1], ctx) end
  end, function(e)
    if type(e) == "string" and not e:find("\n") then return e end
    return tostring(e)
  end)
  for _, vm in ipairs(vms) do vm:close() end
  if ok then
    result = { name = sc.name, ok = true }
  else
    result = fail(err)
  end
  -- Keep the boot logs of a failure someone has to look into; an
  -- expected one (xfail) would only pile up in /tmp run after run.
  if ok or spec.xfail then
    for _, l in ipairs(logs) do os.remove(l) end
  else
    result.logs = logs
  end
  result.xfail = spec.xfail
  result.seconds = now() - t0
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

local function junit(path, results, seconds)
  local f, err = io.open(path, "w")
  if not f then return nil, err end
  local failures, skipped = 0, 0
  for _, r in ipairs(results) do
    if r.xfail then skipped = skipped + 1 elseif not r.ok then failures = failures + 1 end
  end
  f:write('<?xml version="1.0" encoding="UTF-8"?>\n')
  f:write(('<testsuites tests="%d" failures="%d" skipped="%d" time="%.3f">\n'):format(#results, failures, skipped, seconds))
  f:write(('  <testsuite name="vmlua" tests="%d" failures="%d" skipped="%d" time="%.3f">\n'):format(#results, failures, skipped, seconds))
  for _, r in ipairs(results) do
    f:write(('    <testcase classname="%s" name="%s" time="%.3f"'):format(xml(r.file or "vmlua"), xml(r.name), r.seconds or 0))
    if r.xfail then
      f:write(('>\n      <skipped message="%s"/>\n    </testcase>\n'):format(
        xml("expected failure: " .. r.xfail .. (r.ok and " (but it passed)" or ": " .. tostring(r.message)))))
    elseif not r.ok then
      f:write(('>\n      <failure message="%s">%s%s</failure>\n    </testcase>\n'):format(xml(r.message:match("[^\n]*")),
        xml(r.message), r.logs and xml("\nboot logs: " .. table.concat(r.logs, " ")) or ""))
    else
      f:write("/>\n")
    end
  end
  f:write("  </testsuite>\n</testsuites>\n")
  f:close()
  return true
end

local usage = [[
usage: vmlua test [FILE|DIR ...] [--tap | --junit FILE] [-j N] [--filter PAT] [--backend B]

Run regression scenarios (default: scripts/scenarios).  Each gets fresh
machines and its own timeout; TAP goes to stdout.  The exit status is the
number of failures (at most 125); expected failures do not count.
  --junit FILE   also write a JUnit XML report to FILE
  --tap          TAP on stdout (the default)
  -j N           run N scenarios at a time, each in its own process
  --filter PAT   only scenarios whose name matches the Lua pattern PAT
  --backend B    auto, kvm or uml for scenarios that do not choose
]]

local function parse(argv)
  local o = { paths = {}, jobs = 1 }
  local i = 1
  while i <= #argv do
    local a = argv[i]
    local function value()
      i = i + 1
      if argv[i] == nil then error({ usage_error = a .. " needs a value" }) end
      return argv[i]
    end
    if a == "-h" or a == "--help" then o.help = true
    elseif a == "--tap" then o.tap = true
    elseif a == "--junit" then o.junit = value()
    elseif a == "-j" then
      o.jobs = tonumber(value())
      if not o.jobs or o.jobs < 1 or o.jobs ~= math.floor(o.jobs) then error({ usage_error = "-j needs a whole number of at least 1" }) end
    elseif a:match("^%-j%d+$") then o.jobs = tonumber(a:sub(3))
    elseif a == "--filter" then o.filter = value()
    elseif a == "--backend" then o.backend = value()
    elseif a == "--run-one" then o.run_one = { value(), tonumber(value()), value() }
    elseif a:sub(1, 1) == "-" then error({ usage_error = "unknown option '" .. a .. "'" })
    else o.paths[#o.paths + 1] = a end
    i = i + 1
  end
  return o
end

local function sleep(s) os.execute("sleep " .. s) end

-- Run the scenarios N at a time, each in a child `vmlua test --run-one`.
local function run_parallel(exe, list, o, report)
  local results, running, next_i, reported = {}, {}, 1, 0
  local function launch(sc, slot)
    local out = os.tmpname()
    os.remove(out)
    local cmd = ("%q test --run-one %q %d %q %s >/dev/null 2>&1 </dev/null &"):format(exe, sc.file, sc.index,
      out, o.backend and ("--backend %q"):format(o.backend) or "")
    os.execute(cmd)
    running[slot] = { sc = sc, out = out, at = next_i }
  end
  local slots = o.jobs
  while next_i <= #list or next(running) do
    for slot = 1, slots do
      if not running[slot] and next_i <= #list then
        launch(list[next_i], slot)
        next_i = next_i + 1
      end
    end
    sleep(0.1)
    -- TAP in order: report each result once all before it are in.
    while results[reported + 1] do
      reported = reported + 1
      report(reported, results[reported])
    end
    for slot, job in pairs(running) do
      local f = io.open(job.out)
      if f then
        local chunk = load(f:read("a"), "=result", "t", {})
        f:close()
        os.remove(job.out)
        local r = chunk and chunk() or { name = job.sc.name, ok = false, message = "the child's result is unreadable" }
        r.file = job.sc.file
        results[job.at] = r
        running[slot] = nil
      end
    end
  end
  while results[reported + 1] do
    reported = reported + 1
    report(reported, results[reported])
  end
  return results
end

--- `vmlua test ...`: returns the process exit status.
function M.main(argv, exe)
  local ok, o = pcall(parse, argv)
  if not ok then
    io.stderr:write("vmlua test: ", type(o) == "table" and o.usage_error or tostring(o), "\n", usage)
    return 126
  end
  if o.help then io.write(usage); return 0 end
  if o.run_one then
    -- A child of -j: one scenario, its result into a file.
    local file, index, out = o.run_one[1], o.run_one[2], o.run_one[3]
    local list, err = M.load(file)
    local r = list and list[index] and M.run_one(list[index], o.backend)
      or { name = file .. "#" .. tostring(index), ok = false, message = err or "no such scenario" }
    local f = assert(io.open(out .. ".part", "w"))
    f:write(serialize(r))
    f:close()
    assert(os.rename(out .. ".part", out))
    return 0
  end
  local list = {}
  if #o.paths == 0 then
    local dir, why = require("vmlua.paths").shipped("scenarios")
    if not dir then io.stderr:write("vmlua test: no scenarios given, and ", why, "\n"); return 126 end
    o.paths = { dir }
  end
  for _, file in ipairs(files_of(o.paths)) do
    local got, err = M.load(file)
    if not got then
      io.stderr:write("vmlua test: ", err, "\n")
      return 126
    end
    for _, sc in ipairs(got) do
      if not o.filter or sc.name:find(o.filter) then list[#list + 1] = sc end
    end
  end
  io.write("TAP version 13\n1..", #list, "\n")
  io.flush()
  local t0, failures = now(), 0
  local function report(i, r)
    local directive = r.xfail and (" # TODO expected failure: " .. r.xfail) or ""
    io.write(r.ok and "ok " or "not ok ", i, " - ", r.name, directive, "\n")
    if not r.ok then
      for line in tostring(r.message):gmatch("[^\n]+") do io.write("# ", line, "\n") end
      if r.logs then io.write("# boot logs kept: ", table.concat(r.logs, " "), "\n") end
    end
    io.write(("# %.1f s\n"):format(r.seconds or 0))
    io.flush()
    if not r.ok and not r.xfail then failures = failures + 1 end
  end
  local results
  if o.jobs > 1 then
    results = run_parallel(exe, list, o, report)
  else
    results = {}
    for i, sc in ipairs(list) do
      local r = M.run_one(sc, o.backend)
      r.file = sc.file
      results[i] = r
      report(i, r)
    end
  end
  local seconds = now() - t0
  io.write(("# %d scenarios, %d failed, in %.1f s\n"):format(#list, failures, seconds))
  if o.junit then
    local jok, jerr = junit(o.junit, results, seconds)
    if not jok then io.stderr:write("vmlua test: ", jerr, "\n"); return 126 end
  end
  return math.min(failures, 125)
end

return M
