-- Console latency on the uml backend: how long a script waits for what
-- the guest has already written.
--
--   round trip: send `echo tok""N` to the default guest's shell and expect
--               `tokN` (the tty's echo of the typed line does not match it);
--               no process is spawned in the guest.
--   run:        console:run("true"): the shell's own wrapper, one line.
--
-- Medians of N runs each (default 30).  With VMLUA_BEFORE=path/to/vmlua
-- (another build, e.g. the previous commit's), the same measurement runs
-- under it too, in this run, and the ratios are after/before.
--
--   build/vmlua bench/console.lua [runs]
local bench = require "bench.lib"

local RUNS = tonumber(arg and arg[1]) or 30

-- In a child: boot, measure, print "rt=<s> run=<s>".
if arg and arg[1] == "--measure" then
  local vmlua = require "vmlua"
  local runs = tonumber(arg[2])
  local g = assert(vmlua.guest("uml"))
  local vm = assert(vmlua.vm{ backend = "uml", console = "none", kernel = g.kernel,
    initrd = g.initrd, cmdline = g.cmdline })
  assert(vm:start())
  vm.console:expect(g.ready, 120, true)
  local now = require("vmlua.core").monotonic
  local rt, run = {}, {}
  for i = 1, runs do
    local t = now()
    vm.console:send(('echo tok""%d\n'):format(i))
    vm.console:expect(("tok%d\r?\n"):format(i), 30)
    rt[#rt + 1] = now() - t
  end
  for _ = 1, runs do
    local t = now()
    local _, status = vm.console:run("true", 30)
    assert(status == 0)
    run[#run + 1] = now() - t
  end
  vm:stop()
  print(("rt=%.6f run=%.6f"):format(bench.median(rt), bench.median(run)))
  os.exit(0)
end

local function measure(vmlua_exe)
  local p = assert(io.popen(("%s bench/console.lua --measure %d"):format(vmlua_exe, RUNS)))
  local out = p:read("a")
  p:close()
  local rt, run = out:match("rt=([%d.]+) run=([%d.]+)")
  if not rt then error(vmlua_exe .. ": " .. out) end
  return tonumber(rt), tonumber(run)
end

local self_exe = require("vmlua.paths").exe()
local rt, run = measure(self_exe)
local result = { bench = "console", runs = RUNS,
  title = "console latency on uml: echo round trip, console:run('true')",
  rows = {
    { what = "echo round trip", value = rt * 1000, unit = "ms" },
    { what = "console:run('true')", value = run * 1000, unit = "ms" },
  },
  note = "the echo spawns nothing in the guest; run forks once in the guest shell" }
local before = os.getenv("VMLUA_BEFORE")
if before and before ~= "" then
  local brt, brun = measure(before)
  table.insert(result.rows, { what = "echo round trip, before", value = brt * 1000, unit = "ms" })
  table.insert(result.rows, { what = "console:run('true'), before", value = brun * 1000, unit = "ms" })
  result.ratios = {
    { what = "echo round trip, after / before", value = rt / brt },
    { what = "console:run('true'), after / before", value = run / brun },
  }
  result.note = result.note .. "; before: " .. before
end
bench.print(result)
bench.save(result)
