-- Host files in a uml guest through hostfs (vmlua.share) against the
-- host's own figure, in one run, with the same programs on both sides:
-- the guest boots with --hostroot, so it runs the host's GNU dd, find
-- and date, and reads and writes a hostfs share of the bench directory.
--   * sequential read of a 512 MiB file (host: from its page cache);
--   * find | wc -l over a tree of 20,000 files;
--   * a 256 MiB write with fsync.
-- Each is the median of RUNS; the ratio is host time / guest time, the
-- guest's speed as a fraction of the host's.
--
--   build/vmlua bench/hostfs.lua [RUNS]
local bench = require "bench.lib"
local core = require "vmlua.core"

local RUNS = tonumber(arg and arg[1]) or 5
local DIR = (os.getenv("BENCH_WORK") or "build/bench") .. "/hostfs"
local function sh(cmd)
  local ok = os.execute(cmd)
  if ok ~= true then error("bench: failed: " .. cmd) end
end
local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

sh("rm -rf " .. q(DIR) .. " && mkdir -p " .. q(DIR .. "/tree"))
DIR = require("vmlua.paths").absolute(DIR)
io.stderr:write("bench: making a 512 MiB file and 20,000 files in ", DIR, "...\n")
sh("head -c 512M /dev/urandom >" .. q(DIR .. "/big"))
sh("cd " .. q(DIR .. "/tree") .. " && for d in $(seq 1 200); do mkdir $d && (cd $d && touch $(seq 1 100)); done")

-- The three measures as shell commands over the directory D, each
-- printing its seconds (GNU date's nanoseconds on both sides).
local function script(d)
  local t = 's=$(date +%s%N); '
  local e = '; echo $(( ($(date +%s%N) - s) / 1000 ))'
  return {
    read = t .. "dd if=" .. d .. "/big of=/dev/null bs=1M 2>/dev/null" .. e,
    find = t .. "find " .. d .. "/tree | wc -l >/dev/null" .. e,
    write = t .. "dd if=/dev/zero of=" .. d .. "/w bs=1M count=256 conv=fsync 2>/dev/null; rm -f " .. d ..
      "/w" .. e,
  }
end
local ORDER = { "read", "find", "write" }

local host, guest = { read = {}, find = {}, write = {} }, { read = {}, find = {}, write = {} }
local hs = script(DIR)
sh("cat " .. q(DIR .. "/big") .. " >/dev/null")              -- the host reads from its page cache
for _ = 1, RUNS do
  for _, k in ipairs(ORDER) do
    local p = io.popen(hs[k])
    local us = tonumber(p:read("a"))
    p:close()
    table.insert(host[k], us / 1e6)
  end
end

-- The guest: all RUNS rounds in one boot.
local gs, lines = script("/bench"), {}
for _ = 1, RUNS do
  for _, k in ipairs(ORDER) do lines[#lines + 1] = "echo " .. k .. " $(" .. gs[k] .. ")" end
end
local t0 = core.monotonic()
local p = io.popen("build/vmlua scripts/boot.lua --backend uml --mem 256 --timeout 900 --hostroot --share " ..
  q(DIR:gsub("[\\,:]", "\\%0") .. ":/bench") .. " --run " .. q(table.concat(lines, "\n")) .. " </dev/null")
for line in p:lines() do
  local k, us = line:match("^(%a+) (%d+)%s*$")
  if k and guest[k] then table.insert(guest[k], tonumber(us) / 1e6) end
end
local ok = p:close()
for _, k in ipairs(ORDER) do
  if not ok or #guest[k] ~= RUNS then error("bench: the guest did not give " .. RUNS .. " " .. k .. " figures") end
end
io.stderr:write(("bench: the guest's rounds took %.1f s\n"):format(core.monotonic() - t0))
sh("rm -rf " .. q(DIR))

local WHAT = { read = "sequential read, 512 MiB", find = "find + wc -l, 20,000 files",
               write = "write 256 MiB + fsync" }
local result = { bench = "hostfs", runs = RUNS, rows = {}, ratios = {},
  title = "host files in a uml guest (hostfs share) vs the host itself",
  note = "ratio: host time / guest time; the host reads the file from its page cache, the guest " ..
         "(256 MiB) through hostfs each time" }
for _, k in ipairs(ORDER) do
  local h, g = bench.median(host[k]), bench.median(guest[k])
  table.insert(result.rows, { what = "host: " .. WHAT[k], value = h, unit = "s" })
  table.insert(result.rows, { what = "uml guest, hostfs: " .. WHAT[k], value = g, unit = "s" })
  table.insert(result.ratios, { what = "hostfs / host speed, " .. WHAT[k], value = h / g })
end
bench.print(result)
bench.save(result)
