-- The selftest guest under the kvm backend: it checks from inside that
-- the ACPI tables and e820 map match what vmlua built, then powers off
-- through the FADT sleep register.
local vmlua = require "vmlua"
local env = require "helpers.env"

describe("selftest guest #kvm", function()
  local ok, why = env.kvm()
  if not ok then pending("needs the kvm backend: " .. why) return end
  local have, whynot = env.have_selftest()
  if not have then pending(whynot) return end

  for _, cpus in ipairs{ 1, 2 } do
    for _, mem in ipairs{ "256M", "5G" } do
      it(("passes with %d vCPU(s) and %s"):format(cpus, mem), function()
        local bytes = mem == "5G" and 5 * 1024 ^ 3 // 1 or 256 * 1024 ^ 2 // 1
        local vm = assert(vmlua.vm{
          backend = "kvm", kernel = env.selftest, memory = mem, cpus = cpus,
          cmdline = ("selftest.cpus=%d selftest.mem=%d"):format(cpus, bytes),
          console = "none",
        })
        vm:start()
        local reason, detail = vm:wait(120)
        local out = vm:output()
        vm:close()
        assert.equal("poweroff", reason, out)
        assert.equal("guest wrote 0x34 to the sleep control register", detail)
        assert.matches("selftest: PASS\n", out)
        assert.not_matches("FAIL", out)
        -- The guest saw the MADT with this many CPUs and RAM above 4 GiB.
        assert.matches("selftest: ok madt", out)
        if mem == "5G" then assert.matches("selftest: e820 0x100000000 ", out) end
      end)
    end
  end
end)
