-- The flake hunt: boot the default uml guest N times in a row, as a user
-- would (scripts/boot.lua --run), each time running a command and
-- powering off; count every run that did not exit 0 with the command's
-- output, or that left a linux.uml or a file behind.  Prints the
-- failures (with their output) and the median time of a run.
--
--   build/vmlua bench/flake.lua [N]      (make bench runs 100)
local core = require "vmlua.core"
local bench = require "bench.lib"

local N = tonumber(arg and arg[1]) or 100
local VMLUA = "build/vmlua"

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1; echo \"::rc=$?\""))
  local out = p:read("a")
  p:close()
  return out:gsub("::rc=(%d+)\n$", ""), tonumber(out:match("::rc=(%d+)\n$"))
end

local times, failures = {}, {}
io.write(("flake: %d boot-run-poweroff runs of the default guest on uml\n"):format(N))
for i = 1, N do
  -- The guest works the marker out, so it is not the command echoed.
  local marker = ("flake-run-%d-42"):format(i)
  -- A private TMPDIR and HOME: what this run leaves behind (its run
  -- directory, UML's files) lands there, apart from any other run's.
  local dir = (sh("mktemp -d")):gsub("\n$", "")
  local t0 = core.monotonic()
  local out, rc = sh(("TMPDIR=%s HOME=%s %s scripts/boot.lua --backend uml --timeout 120 " ..
    "--run 'echo flake-run-%d-$((40+2))' </dev/null"):format(dir, dir, VMLUA, i))
  times[i] = core.monotonic() - t0
  local left = sh("ls -A " .. dir)
  local running = sh("pgrep -a -f 'linux.um[l] .*uml_dir=" .. dir .. "/'")
  os.execute("rm -rf " .. dir)
  local why
  if rc ~= 0 then why = "exit status " .. tostring(rc)
  elseif not out:find(marker, 1, true) then why = "no output from the command"
  elseif running ~= "" then why = "a linux.uml left running: " .. running
  elseif left ~= "" then why = "left behind: " .. left
  end
  if why then
    failures[#failures + 1] = { run = i, why = why, output = out }
    io.write(("flake: run %d failed: %s\n%s\n"):format(i, why, out))
  end
  if i % 10 == 0 then
    io.write(("flake: %d/%d runs, %d failed, median %.2f s\n"):format(i, N, #failures, bench.median(times)))
    io.flush()
  end
end

local result = { bench = "flake", runs = N,
  title = ("flake hunt: %d consecutive boot-run-poweroff runs on uml"):format(N),
  rows = {
    { what = "runs", value = N, unit = "" },
    { what = "failures", value = #failures, unit = "" },
    { what = "time of one run (scripts/boot.lua --run)", value = bench.median(times), unit = "s" },
  },
  failures = #failures > 0 and failures or nil }
bench.print(result)
bench.save(result)
os.exit(#failures == 0 and 0 or 1)
