-- The kvm backend nested inside QEMU TCG (docs/kvm-nested.md), for hosts
-- with no vmx/svm: QEMU's -cpu max emulates AMD SVM, Debian's cloud kernel
-- (L1) loads kvm_amd, and vmlua's kvm backend boots its guests (L2) on the
-- /dev/kvm that gives.  One run of scripts/nested.lua does every step; each
-- `it` checks its step's TAP line.  The flake hunt runs when NESTED_FLAKE
-- gives its boots (`make test-nested NESTED_FLAKE=50`): it keeps both L1
-- CPUs busy while the 1-vCPU kernel boots again and again, and counts
-- the boots that fail or hang.  It is a hunt, measured apart, not a step
-- of every make test: one boot in five failed once under TCG in a fresh
-- root (docs/kvm-nested.md).
local core = require "vmlua.core"
local dirent = require "posix.dirent"
local unistd = require "posix.unistd"
local env = require "helpers.env"

local FLAKE = tonumber(os.getenv("NESTED_FLAKE"))
local STEPS = { "selftest-1cpu-256M", "selftest-2cpu-256M", "selftest-1cpu-5G", "selftest-2cpu-5G",
                "linux-1cpu", "linux-2cpu", "linux-4cpu", "blk", "net", "switch", "rng", "console",
                "lua-device", "scenarios" }
-- The scenarios each step runs on kvm (vmlua test's TAP, passed on as
-- comments): each must be there and ok.
local SCENARIOS = {
  switch = { "two guests on a switch ping each other" },
  rng = { "rng: the C device and a Lua device feed /dev/hwrng" },
  console = { "console: hvc0 both ways" },
  ["lua-device"] = { "a Lua-written device answers the guest" },
  scenarios = { "boot, run a command, power off", "disk: a file survives poweroff and a second boot" },
}
if FLAKE and FLAKE > 0 then STEPS[#STEPS + 1] = "flake" end

-- Why the nested run cannot happen here, or nil.
local function unable()
  if core.kvm_hardware() then
    return "this host has vmx/svm: the #kvm specs run the kvm backend directly"
  end
  local _, status = env.sh("command -v qemu-system-x86_64 >/dev/null 2>&1")
  if status ~= 0 then return "qemu-system-x86_64 not found (apt-get install qemu-system-x86)" end
  for _, p in ipairs{ "build/guest/kvm/vmlinuz", "build/guest/kvm/initramfs.cpio",
                      "build/guest-cache/uml/root/bin/busybox" } do
    if not env.readable(p) then return p .. " missing: run make guest kernel" end
  end
end

-- The run, once for all the steps: { lines = {...}, skip = reason|nil, text }.
local result
local function run()
  if result then return result end
  local build, bstatus = env.sh(env.vmlua .. " scripts/build-nested.lua 2>&1")
  assert(bstatus == 0, "build-nested.lua failed:\n" .. build)
  local cmd = ("%s scripts/nested.lua --steps %s%s 2>&1"):format(
    env.vmlua, table.concat(STEPS, ","), FLAKE and FLAKE > 0 and (" --flake %d"):format(FLAKE) or "")
  local text, status = env.sh(cmd)
  if status == 3 then
    -- L1's kernel panicked or hung under QEMU's SVM emulation (rare; it
    -- is not vmlua's guest that died): one more run, which must not.
    local first = text:match("Bail out! ([^\n]*)")
    text, status = env.sh(cmd)
    text = ("# the first run was lost: %s\n"):format(first) .. text
  end
  result = { text = text, status = status }
  result.skip = text:match("\n?1%.%.0 # SKIP ([^\n]*)")
  return result
end

-- The QEMUs still running from this checkout's L1 (their pids).
local function our_qemus()
  local here, found = unistd.getcwd(), {}
  for pid in dirent.files("/proc") do
    if pid:match("^%d+$") then
      local f = io.open("/proc/" .. pid .. "/cmdline", "rb")
      local cmd = f and f:read("a") or ""
      if f then f:close() end
      local exe = cmd:match("^([^%z]*)")
      if exe and exe:match("qemu%-system%-x86_64$") and cmd:find("build/nested/l1.cpio", 1, true)
         and unistd.readlink("/proc/" .. pid .. "/cwd") == here then
        found[#found + 1] = pid
      end
    end
  end
  return found
end

-- A step's result line and the comment lines after it.
local function step_report(text, name)
  local head, comments
  for l in text:gmatch("[^\n]*") do
    if head then
      if not l:match("^#") then break end
      comments[#comments + 1] = l
    else
      local ok, step = l:match("^(n?o?t? ?ok) %d+ %- (%S+) ")
      if ok and step == name then head, comments = l, {} end
    end
  end
  return head, head and table.concat(comments, "\n")
end

describe("the kvm backend nested in QEMU TCG #nested #slow", function()
  local why = unable()
  if why then pending(why) return end

  for _, name in ipairs(STEPS) do
    it(("passes step %s"):format(name), function()
      local r = run()
      if r.skip then pending("L1: " .. r.skip) return end
      local head, comments = step_report(r.text, name)
      assert(head, ("step %s never reported; the run said:\n%s"):format(name, r.text:sub(-3000)))
      assert(head:match("^ok "), head .. "\n" .. comments)
      for _, scenario in ipairs(SCENARIOS[name] or {}) do
        assert(comments:find("#   ok %d+ %- " .. scenario:gsub("%p", "%%%0")),
               ("step %s: no 'ok' for the scenario %q:\n%s"):format(name, scenario, comments))
      end
      if name == "net" then
        -- Both ways: the guest fetched from L1 through slirp, and L1 from
        -- the guest through a host port forward.
        assert.matches("L1 fetched through the forward: nested%-fwd%-ok", comments)
      end
      if name:match("^linux") then
        -- The guest knew it ran on KVM and took its clock from it.
        assert.matches("Hypervisor detected: KVM", comments)
        assert.matches("kvm%-clock: Using msrs", comments)
        assert.not_matches("Unable to calibrate", comments)
      end
    end)
  end

  it("ends with every step passed and QEMU gone", function()
    local r = run()
    if r.skip then pending("L1: " .. r.skip) return end
    assert.equal(0, r.status, r.text:sub(-3000))
    assert.matches("# nested: " .. #STEPS .. " ok, 0 not ok of " .. #STEPS .. " planned", r.text)
    assert.same({}, our_qemus())
  end)
end)
