-- Two guests of one process on vmlua's switch: they ping each other.
local virtio = require "vmlua.virtio"

scenario "two guests on a switch ping each other" {
  machines = { "a", "b" },
  devices = function(name, s)
    return { virtio.net{ switch = s.switch, mac = name == "a" and "52:54:00:00:00:0a" or "52:54:00:00:00:0b" } }
  end,
  function(m)
    m.a.console:run("ip link set eth0 up && ip addr add 10.0.0.1/24 dev eth0")
    m.b.console:run("ip link set eth0 up && ip addr add 10.0.0.2/24 dev eth0")
    local out, status = m.a.console:run("ping -c 3 -W 10 10.0.0.2", 60)
    assert(status == 0, out)
    assert(out:find("3 packets received", 1, true), out)
  end,
}
