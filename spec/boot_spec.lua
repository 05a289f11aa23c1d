-- scripts/boot.lua: options, exit codes, one-line reasons.
local env = require "helpers.env"

local BOOT = env.vmlua .. " scripts/boot.lua"

local function boot(args)
  local out, status = env.sh(BOOT .. " " .. args .. " 2>&1 </dev/null")
  return out, status
end

describe("scripts/boot.lua", function()
  it("prints help", function()
    local out, status = boot("--help")
    assert.equal(0, status)
    assert.matches("^usage: vmlua scripts/boot.lua %[%-%-kernel PATH%]", out)
    for _, opt in ipairs{ "--backend", "--kernel", "--initrd", "--cmdline", "--mem", "--cpus", "--timeout" } do
      assert.matches(opt:gsub("%-", "%%-"), out)
    end
  end)

  describe("rejects bad options with one line and no traceback", function()
    local cases = {
      { "--bogus", "boot.lua: unknown option '--bogus' (see --help)\n" },
      { "--backend kvm", "boot.lua: --kernel PATH is required (see --help)\n" },
      { "--kernel", "boot.lua: option --kernel needs a value\n" },
      { "--kernel x --mem lots", "boot.lua: --mem must be a number of at least 1, got 'lots'\n" },
      { "--kernel x --cpus 0", "boot.lua: --cpus must be a number of at least 1, got '0'\n" },
      { "--kernel x --cpus 1.5", "boot.lua: --cpus must be a whole number, got '1.5'\n" },
      { "--kernel x --backend xen", "boot.lua: --backend must be auto, kvm or uml, got 'xen'\n" },
      { "--kernel x --backend kvm --disk /nonexistent.img", "boot.lua: --disk: /nonexistent.img: No such file or directory\n" },
      { "--kernel x --backend kvm --disk /dev/null,rw", "boot.lua: --disk /dev/null,rw: unknown mode 'rw' (ro, cow or cow=OVERLAY)\n" },
      { "--kernel x --backend kvm --disk /dev/null", "boot.lua: --disk: /dev/null: not a regular file or block device\n" },
      { "--kernel x --backend kvm --net wifi", "boot.lua: --net wifi: use user[=tcp::HOSTPORT-:GUESTPORT,...] or tap[=NAME]\n" },
      { "--kernel x --backend kvm --net user=tcp:1", "boot.lua: --net: forward 'tcp:1': not tcp|udp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT\n" },
    }
    for _, c in ipairs(cases) do
      it("'" .. c[1] .. "'", function()
        local out, status = boot(c[1])
        assert.equal(1, status)
        assert.equal(c[2], out)
      end)
    end
  end)

  describe("with the kvm backend", function()
    local ok, why = env.kvm()
    if not ok then pending("needs the kvm backend: " .. why) return end

    it("says which file is wrong and exits 1", function()
      local out, status = boot("--backend kvm --kernel /nonexistent/vmlinuz")
      assert.equal(1, status)
      assert.matches("^boot.lua: /nonexistent/vmlinuz: cannot open: No such file or directory\n$", out)
      out, status = boot("--backend kvm --kernel /etc")
      assert.equal(1, status)
      assert.equal("boot.lua: /etc: is a directory\n", out)
    end)

    local have, whynot = env.have_selftest()
    if not have then pending(whynot) return end

    it("boots the selftest guest, streams its console and exits 0 on poweroff", function()
      local out, status = boot("--backend kvm --kernel " .. env.selftest ..
        " --cmdline 'selftest.cpus=1 selftest.mem=268435456' --timeout 120 --stats")
      assert.equal(0, status, out)
      assert.matches("selftest: vmlua selftest guest starting", out)
      assert.matches("selftest: PASS", out)
      assert.matches("boot.lua: [%d.]+ s wall, 1 vCPU%(s%), exits: .*io=%d+", out)
    end)

    it("exits 2 with a reason on timeout", function()
      local out, status = boot("--backend kvm --kernel " .. env.selftest ..
        " --cmdline 'selftest.cpus=1 selftest.mem=268435456' --timeout 0.001 --quiet")
      assert.equal(2, status, out)
      assert.equal("boot.lua: timeout after 0.001 s: the guest did not power off\n", out)
    end)
  end)
end)
