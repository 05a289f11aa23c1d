-- virtio-rng on the guest's kernel, both kinds: the C device (the host's
-- getrandom) with a Lua hook on its kicks, and a device written in Lua
-- (scripts/devices/rng.lua) whose bytes the script chooses.  The
-- nested run (scripts/nested-init.sh, step rng) runs this on kvm.
local virtio = require "vmlua.virtio"

local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local lua_rng = dofile(here .. "/../devices/rng.lua")

local function must(con, cmd)
  local out, status = con:run(cmd)
  assert(status == 0, ("%s failed (%d): %s"):format(cmd, status, out))
  return out
end

scenario "rng: the C device and a Lua device feed /dev/hwrng" {
  devices = function(_, s)
    s.kicks = 0
    local c = virtio.rng()
    c:on("notify", function() s.kicks = s.kicks + 1 end)
    return { c, lua_rng(function(n) return ("\4"):rep(n) end) }
  end,
  function(vm, s)
    local hw = "/sys/class/misc/hw_random/"
    local available = must(vm.console, "cat " .. hw .. "rng_available")
    local names = {}
    for name in available:gmatch("virtio_rng%.%d+") do names[#names + 1] = name end
    assert(#names == 2, "the guest sees " .. #names .. " virtio rngs: " .. available)
    -- Which is which: the Lua device's bytes are all 04.  64 bytes each,
    -- then 64 KiB from the C one.
    local fours, random
    for _, name in ipairs(names) do
      must(vm.console, "echo " .. name .. " > " .. hw .. "rng_current")
      local hex = must(vm.console, "head -c 64 /dev/hwrng | od -An -v -tx1 | tr -d ' \\n'")
      assert(#hex == 128, name .. " gave " .. #hex // 2 .. " bytes: " .. hex)
      if hex == ("04"):rep(64) then fours = name else random = name end
    end
    assert(fours and random, "expected one device of fours and one random: " .. available)
    must(vm.console, "echo " .. random .. " > " .. hw .. "rng_current")
    local kicks = s.kicks
    local n = must(vm.console, "head -c 65536 /dev/hwrng | wc -c")
    assert(tonumber(n) == 65536, "read " .. n .. " bytes from the C rng")
    local distinct = must(vm.console, "head -c 4096 /dev/hwrng | od -An -v -tx1 | tr ' ' '\\n' | sort -u | grep -c .")
    assert(tonumber(distinct) > 200, "4096 random bytes had only " .. distinct .. " distinct values")
    assert(s.kicks > kicks, "the notify hook on the C rng never ran")
  end,
}
