-- virtio-console (hvc0) on the guest's kernel, both ways: the guest
-- writes a line the host's vmlua.Console sees, the host sends one the
-- guest reads.  The nested run (scripts/nested-init.sh, step console)
-- runs this on kvm.
local virtio = require "vmlua.virtio"

scenario "console: hvc0 both ways" {
  devices = function(_, s)
    local dev, con = virtio.console{ output = "none" }
    s.hvc0 = assert(con, dev)
    return { dev }
  end,
  function(vm, s)
    -- The port stays open while head waits: a tty not yet open drops
    -- its input (docs/devices.md), so the guest speaks first.
    local _, status = vm.console:run("(exec 3<>/dev/hvc0; stty raw -echo <&3; echo from-guest >&3; " ..
      "head -n 1 <&3 >/tmp/got) >/dev/null 2>&1 &")
    assert(status == 0)
    s.hvc0:expect("from-guest", 30, true)
    s.hvc0:send("from-host\n")
    local got
    for _ = 1, 50 do
      got = vm.console:run("cat /tmp/got 2>/dev/null")
      if got == "from-host\n" then break end
      vm:wait(0.2)
    end
    assert(got == "from-host\n", "the guest read " .. ("%q"):format(got))
  end,
}
