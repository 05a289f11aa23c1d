-- Disks: what a guest writes survives its poweroff and a second boot,
-- and a copy-on-write disk never changes its master.
local virtio = require "vmlua.virtio"

-- A blank disk image in the scenario's own directory, which vmlua test
-- removes afterwards whatever happens.
local function blank(s, mib)
  local path = s.tmpdir .. "/disk.img"
  assert(io.open(path, "w")):close()
  assert(os.execute(("truncate -s %dM %s"):format(mib, path)))
  return path
end
local function sha256(path)
  local p = io.popen("sha256sum < " .. path)
  local sum = p:read("a"):match("%x+")
  p:close()
  return sum
end
local function must(con, cmd)
  local out, status = con:run(cmd)
  assert(status == 0, ("%s failed (%d): %s"):format(cmd, status, out))
  return out
end

scenario "disk: a file survives poweroff and a second boot" {
  devices = function(_, s)
    s.image = s.image or blank(s, 16)
    return { virtio.blk{ path = s.image } }
  end,
  function(vm, s)
    must(vm.console, "mke2fs -q /dev/vda && mkdir /mnt && mount /dev/vda /mnt")
    must(vm.console, "echo kept-across-boots > /mnt/note && umount /mnt")
    vm.console:send("poweroff -f\n")
    assert(vm:wait(30) == "poweroff")
    local again = s.boot()          -- the same image, a fresh machine
    must(again.console, "mkdir /mnt && mount /dev/vda /mnt")
    assert(must(again.console, "cat /mnt/note") == "kept-across-boots\n")
  end,
}

scenario "disk: copy-on-write leaves the master untouched" {
  devices = function(_, s)
    s.master = blank(s, 16)
    assert(os.execute("mke2fs -q -F " .. s.master .. " >/dev/null 2>&1"))
    s.before = sha256(s.master)
    return { virtio.blk{ path = s.master, cow = true } }
  end,
  function(vm, s)
    must(vm.console, "mkdir /mnt && mount /dev/vda /mnt && echo changed > /mnt/f && sync && umount /mnt")
    assert(sha256(s.master) == s.before, "the master changed")
  end,
}
