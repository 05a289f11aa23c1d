-- Gather what the benches saved (bench/results/NAME.lua, each with the
-- date it was taken) into bench/results.json, print one table, and put
-- the same tables into docs/performance.md between its bench markers.
--
--   build/vmlua bench/report.lua
local bench = require "bench.lib"

local ORDER = { "boot", "rss", "kernel", "uml_time", "console", "notify_hook", "rng", "vhost_latency", "kvm_virtio",
  "blk", "hostfs", "flake", "nested" }
local JSON, DOC = "bench/results.json", "docs/performance.md"

local function sh(cmd)
  local p = io.popen(cmd .. " 2>/dev/null")
  local s = p and p:read("a") or ""
  if p then p:close() end
  return (s:gsub("%s+$", ""))
end

-- JSON, with keys sorted so that two reports diff cleanly.
local function json(v, indent)
  indent = indent or ""
  local t = type(v)
  if t == "nil" then return "null" end
  if t == "boolean" then return tostring(v) end
  if t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return "null" end
    if math.type(v) == "integer" then return tostring(v) end
    return (("%.6g"):format(v))
  end
  if t == "string" then
    return '"' .. v:gsub('[%c"\\]', function(c)
      local named = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\t"] = "\\t" }
      return named[c] or ("\\u%04x"):format(c:byte())
    end) .. '"'
  end
  local inner, parts = indent .. "  ", {}
  if #v > 0 or next(v) == nil then
    for _, x in ipairs(v) do parts[#parts + 1] = inner .. json(x, inner) end
    return "[\n" .. table.concat(parts, ",\n") .. "\n" .. indent .. "]"
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do parts[#parts + 1] = inner .. json(k) .. ": " .. json(v[k], inner) end
  return "{\n" .. table.concat(parts, ",\n") .. "\n" .. indent .. "}"
end

-- The benches in ORDER, then any other result file, by name.
local names, known = {}, {}
for _, name in ipairs(ORDER) do names[#names + 1], known[name] = name, true end
local others = {}
for file in sh("ls " .. bench.DIR):gmatch("[^\n]+") do
  local name = file:match("^([%w_%-]+)%.lua$")
  if name and not known[name] then others[#others + 1] = name end
end
table.sort(others)
for _, name in ipairs(others) do names[#names + 1] = name end
local results, missing = {}, {}
for _, name in ipairs(names) do
  local ok, r = pcall(dofile, bench.DIR .. "/" .. name .. ".lua")
  if ok then results[#results + 1] = r else missing[#missing + 1] = name end
end
if #results == 0 then
  io.stderr:write("report: no results in " .. bench.DIR .. ": run make bench\n")
  os.exit(1)
end

local cpu = sh("awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo")
local machine = {
  os = sh(". /etc/os-release && echo \"$PRETTY_NAME\""),
  kernel = sh("uname -r"),
  cpu = cpu,
  cpus = tonumber(sh("nproc")),
  mem_kb = tonumber(sh("awk '/^MemTotal/ { print $2 }' /proc/meminfo")),
  kvm = sh("test -e /dev/kvm && (grep -qwE 'vmx|svm' /proc/cpuinfo && echo 'vmx/svm' || " ..
    "echo 'no vmx/svm (software, e.g. kvm_pvm)') || echo 'no /dev/kvm'"),
}
local peers = {
  qemu = sh("qemu-system-x86_64 --version | head -n 1"),
  user_mode_linux = sh("dpkg-query -W -f '${Version}' user-mode-linux"),
  hyperfine = sh("hyperfine --version"),
}
local report = { date = os.date("!%Y-%m-%dT%H:%M:%SZ"), machine = machine, peers = peers,
  results = results, missing = #missing > 0 and missing or nil }

local f = assert(io.open(JSON, "w"))
f:write(json(report), "\n")
f:close()

for _, r in ipairs(results) do bench.print(r) end
if #missing > 0 then print("\nnot measured this time: " .. table.concat(missing, ", ")) end
print("\nwritten: " .. JSON)

-- The same tables, in Markdown, for docs/performance.md.
local md = { ("Taken %s on %s, %d CPUs (%s), %d GiB, /dev/kvm: %s; kernel %s.  "):format(
  report.date:sub(1, 10), machine.os, machine.cpus or 0, cpu, (machine.mem_kb or 0) // 1048576,
  machine.kvm, machine.kernel),
  ("Peers: %s; user-mode-linux %s; %s."):format(peers.qemu, peers.user_mode_linux, peers.hyperfine), "" }
for _, r in ipairs(results) do
  md[#md + 1] = ("### %s\n\nmedians of %d runs%s%s\n"):format(r.title or r.bench, r.runs or 1,
    r.per_run and (", %d each"):format(r.per_run) or "",
    r.date and (", taken %s"):format(r.date:sub(1, 10)) or "")
  md[#md + 1] = "| | median |\n|---|---|"
  for _, row in ipairs(r.rows or {}) do
    md[#md + 1] = ("| %s | %s %s |"):format(row.what, bench.fmt(row.value), row.unit or "")
  end
  for _, row in ipairs(r.ratios or {}) do
    md[#md + 1] = ("| %s | **%.2fx** |"):format(row.what, row.value)
  end
  if r.note then md[#md + 1] = "\n" .. r.note .. "." end
  md[#md + 1] = ""
end
local doc = io.open(DOC, "r")
if doc then
  local text = doc:read("a")
  doc:close()
  local BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
  local a, b = text:find(BEGIN, 1, true), text:find(END, 1, true)
  if a and b then
    text = text:sub(1, a + #BEGIN) .. table.concat(md, "\n") .. "\n" .. text:sub(b)
    doc = assert(io.open(DOC, "w"))
    doc:write(text)
    doc:close()
    print("updated: " .. DOC)
  end
end
