-- The uml backend: Debian's user-mode Linux booting the default guest.
local vmlua = require "vmlua"
local core = require "vmlua.core"
local virtio = require "vmlua.virtio"
local cpio = require "vmlua.cpio"
local env = require "helpers.env"

local guest = require "helpers.initrd"
local KERNEL, INITRD = guest.KERNEL, guest.INITRD

local readable = env.readable

-- The default guest's initramfs with an /etc/vmlua/run script appended.
local guest_running = guest.with_run

-- Waits until the console shows pattern; fails after secs.
local function wait_for(vm, pattern, secs)
  local deadline = os.time() + secs
  while not vm:output():match(pattern) do
    assert(os.time() < deadline, "timed out waiting for " .. pattern .. " in:\n" .. vm:output())
    assert(vm:wait(0.2) == nil, "the guest ended before printing " .. pattern)
  end
end

-- A one-file initramfs: busybox and the given /init.
local function own_initrd(init, dirs)
  local path = env.tmpname()
  local archive = cpio.new():dir("bin")
  for _, d in ipairs(dirs or {}) do archive:dir(d) end
  assert(archive:file_from("bin/busybox", "build/guest-cache/uml/root/bin/busybox", 493)
    :file("init", init, 493):write(path))
  return path
end

local function boot(script, opts)
  opts = opts or {}
  local initrd = guest_running(script)
  local vm = assert(vmlua.vm{ backend = "uml", kernel = KERNEL, initrd = initrd,
    memory = opts.memory or "128M", cmdline = "quiet", console = "none",
    devices = opts.devices })
  return vm, initrd
end

-- Boots the default guest with `devices`, runs script and waits for it to
-- power off (which it must); returns the console output.
local function run(script, devices)
  local vm, initrd = boot(script, { devices = devices })
  vm:start()
  local reason = vm:wait(90)
  local out = vm:output()
  vm:close()
  os.remove(initrd)
  assert.equal("poweroff", reason, out)
  return out
end

describe("the uml backend #uml", function()
  if not readable(KERNEL) or not readable(INITRD) then
    pending("the default guest is not built: run make guest")
    return
  end

  it("boots the default guest, runs a command and powers off", function()
    local vm, initrd = boot("echo hello from $(uname -s); cat /proc/meminfo | head -1\n", { memory = "96M" })
    local states = {}
    vm:on("state", function(_, s) states[#states + 1] = s end)
    assert.equal(vm, vm:start())
    local reason, detail = vm:wait(60)
    local out = vm:output()
    vm:close()
    os.remove(initrd)
    assert.equal("poweroff", reason, out)
    -- Now and then linux.uml aborts in its own cleanup after halting;
    -- vm.lua reads that as the poweroff it was (see VM:wait).
    assert.is_true(detail == "linux.uml exited with status 0" or
                   detail == "linux.uml halted, then aborted in its own cleanup", detail)
    assert.matches("hello from Linux\r?\n", out)
    assert.matches("MemTotal:%s+%d+ kB", out)
    assert.matches("vmlua: exit status 0\r?\n", out)
    assert.same({ "starting", "running", "stopping", "stopped" }, states)
  end)

  it("boots with its disk and initrd when TMPDIR and the initrd's path hold a space and a colon", function()
    local stdlib = require "posix.stdlib"
    local old = os.getenv("TMPDIR")
    local weird = env.tmpdir() .. "/a b:c"
    assert(os.execute("mkdir " .. env.quote(weird)))
    local initrd = guest_running("ls /dev/vda && echo disk-seen\n")
    local moved = weird .. "/init rd:1"
    assert(os.rename(initrd, moved))
    local img = weird .. "/disk"
    local f = assert(io.open(img, "wb")); f:write(("\0"):rep(1 << 20)); f:close()
    stdlib.setenv("TMPDIR", weird)
    local ok, err = pcall(function()
      local vm = assert(vmlua.vm{ backend = "uml", kernel = KERNEL, initrd = moved, memory = "96M",
        cmdline = "quiet", console = "none", devices = { virtio.blk{ path = img } } })
      vm:start()
      local reason = vm:wait(90)
      local out = vm:output()
      vm:close()
      assert.equal("poweroff", reason, out)
      assert.matches("/dev/vda\r?\ndisk%-seen", out)
    end)
    stdlib.setenv("TMPDIR", old)
    os.execute("rm -rf " .. env.quote(weird:match("^(.*)/a b:c$")))
    assert(ok, err)
  end)

  it("leaves no run directory behind when vm{} refuses its devices or command line, or vm:start() raises", function()
    local stdlib = require "posix.stdlib"
    local old = os.getenv("TMPDIR")
    local w = env.watched()
    local rng = virtio.rng()
    local function uml(opts)
      local o = { backend = "uml", kernel = KERNEL, initrd = INITRD, memory = "96M", console = "none" }
      for k, v in pairs(opts) do o[k] = v end
      return vmlua.vm(o)
    end
    stdlib.setenv("TMPDIR", w.dir)
    local ok, err = pcall(function()
      assert.has_error(function() uml{ devices = { rng, rng } } end,
        "bad argument #1 to 'vm' (devices[2] is devices[1] again)")
      assert.has_error(function() uml{ cmdline = ("w "):rep(300) } end,
        "bad argument #1 to 'vm' (option 'cmdline' has 300 words; the uml backend takes at most 251)")
      -- A device that another running machine serves: start() raises
      -- at the script's line, and the machine is stopped, as before.
      local a, b = assert(uml{ devices = { rng } }), assert(uml{ devices = { rng } })
      assert(a:start())
      local ok2, err2 = pcall(b.start, b)
      a:close()
      assert.is_false(ok2)
      assert.matches("already on a transport", err2)
      assert.equal("stopped", b.state)
    end)
    stdlib.setenv("TMPDIR", old)
    w.check()
    assert(ok, err)
  end)

  it("is what make run boots: a command runs inside and the guest powers off", function()
    local p = io.popen([[make -s run RUN_CMD='echo "run-says: $(uname -s)" '\''quo  ted'\' 2>&1; echo "make-exit: $?"]])
    local out = p:read("a")
    p:close()
    assert.matches("run%-says: Linux quo  ted\n", out)
    assert.not_matches("vmlua: exit status", out)         -- the command's output only
    assert.matches("make%-exit: 0\n$", out)
  end)

  it("reports a kernel panic with its line", function()
    local initrd = own_initrd("#!/bin/busybox sh\nexit 3\n")   -- init exits: the kernel panics
    local vm = assert(vmlua.vm{ backend = "uml", kernel = KERNEL, initrd = initrd,
      memory = "96M", cmdline = "quiet", console = "none" })
    vm:start()
    local reason, detail = vm:wait(60)
    vm:close()
    os.remove(initrd)
    assert.equal("panic", reason)
    assert.matches("^Kernel panic %- not syncing: Attempted to kill init!", detail)
  end)

  it("reports a reboot and stops the restarting kernel", function()
    local vm, initrd = boot("reboot -f\n")
    vm:start()
    local reason, detail = vm:wait(60)
    local pid = vm:stats().pid
    vm:close()
    os.remove(initrd)
    assert.equal("reboot", reason)
    assert.equal("reboot: Restarting system", detail)
    assert.is_nil(pid)
  end)

  it("gives a clean error when linux.uml is killed, and leaves no process behind", function()
    local vm, initrd = boot("echo now-sleeping; sleep 600\n")
    vm:start()
    wait_for(vm, "now%-sleeping", 60)
    local pid = vm:stats().pid
    assert.is_number(pid)
    os.execute("kill -KILL " .. pid)
    local reason, detail = vm:wait(30)
    vm:close()
    os.remove(initrd)
    assert.equal("error", reason)
    assert.equal("linux.uml was killed by signal 9 (Killed)", detail)
    local _, status = env.sh("kill -0 -" .. pid .. " 2>/dev/null")
    assert.are_not.equal(0, status, "a process of the guest's group is still alive")
  end)

  it("stops a running guest on vm:stop() and leaves no process behind", function()
    local vm, initrd = boot("echo now-sleeping; sleep 600\n")
    vm:start()
    wait_for(vm, "now%-sleeping", 60)
    local pid = vm:stats().pid
    vm:stop()
    vm:close()
    os.remove(initrd)
    assert.equal("stopped", vm.exit_reason)
    local _, status = env.sh("kill -0 -" .. pid .. " 2>/dev/null")
    assert.are_not.equal(0, status)
  end)

  -- vm:stop() or vm:close() from inside a hook, then collectgarbage():
  -- in a vmlua of its own, which a use after free would kill.
  for _, case in ipairs{
    { "notify", "vm:stop() in a device's notify hook", "stopped: stopped by the script" },
    { "output", "vm:stop() in an output hook", "stopped: stopped by the script" },
    { "close", "vm:close() in a device's notify hook", "stopped: closed" },
  } do
    it("ends on " .. case[2] .. " followed by collectgarbage(): wait returns, one exit event", function()
      local out, status = env.sh(env.vmlua .. " spec/helpers/stop_in_hook.lua " .. case[1] .. " 2>&1")
      assert.equal(0, status, out)
      assert.matches("wait: " .. case[3]:gsub("%p", "%%%0") .. "\n", out)
      assert.matches("exits: 1: " .. case[3]:gsub("%p", "%%%0") .. "\n", out)
    end)
  end

  it("takes console input", function()
    local vm, initrd = boot("echo waiting-for-input; read line; echo \"got: $line\"\n")
    vm:start()
    wait_for(vm, "waiting%-for%-input", 60)
    vm:send("ping\n")
    local reason = vm:wait(60)
    local out = vm:output()
    vm:close()
    os.remove(initrd)
    assert.equal("poweroff", reason, out)
    assert.matches("got: ping\r?\n", out)
  end)

  it("serves a Lua device to the guest over vhost-user, with its hooks seen from Lua", function()
    local from_guest, statuses, kicks = {}, {}, { 0, 0 }
    -- A virtio console whose receive queue carries bytes the script
    -- chooses, on demand, and whose transmit queue the script reads.
    local dev = virtio.device{ id = "console", queues = { 64, 64 },
      notify = function(d, q)
        local rx = rawequal(q, d:queue(0))
        kicks[rx and 1 or 2] = kicks[rx and 1 or 2] + 1
        if not rx then
          for chain in virtio.chains(q) do
            from_guest[#from_guest + 1] = chain:read()
            q:push(chain, 0)
          end
        end
      end,
      on_status = function(_, new) statuses[#statuses + 1] = new end }
    local vm, initrd = boot("{ stty raw -echo; (sleep 1; echo now-reading) & " ..
      "head -c 16 | od -An -tx1; echo to-the-host >&0; } <>/dev/hvc0\n", { devices = { dev } })
    vm:on("output", function(_, data)
      if data:find("now-reading", 1, true) then
        local q = dev:queue(0)
        local chain = assert(q:pop(), "the guest posted receive buffers")
        chain:write(("\x5a\xa5"):rep(8))
        q:push(chain, 16)
        dev:interrupt(q)
      end
    end)
    vm:start()
    local socket = vm.servers[1].path
    assert.is_true(readable(socket) or os.execute("test -S " .. socket) == true)
    local reason = vm:wait(60)
    local out = vm:output()
    vm:close()
    os.remove(initrd)
    assert.equal("poweroff", reason, out)
    assert.matches("5a a5 5a a5 5a a5 5a a5 5a a5 5a a5 5a a5 5a a5", out)
    assert.equal("to-the-host\n", table.concat(from_guest))
    -- Features taken, the first ring running, and the reset at the end.
    assert.same({ 3, 11, 15, 0 }, statuses)
    assert.is_true(kicks[1] > 0 and kicks[2] > 0)
    assert.is_nil(os.execute("test -e " .. socket), "the socket is gone")
  end)

  -- Boots with `rng` and has the guest read 16 bytes of /dev/hwrng from
  -- it; returns the console output and the device's server.  Pending
  -- when the default guest has no virtio-rng.ko.
  local function read_hwrng(rng)
    local f = io.open(INITRD, "rb")
    local data = f:read("a")
    f:close()
    -- Debian's linux.uml needs virtio-rng.ko; vmlua's kernel has it built in.
    local has_driver = data:find("virtio-rng.ko", 1, true) or data:find("virtio drivers built in", 1, true)
    if not has_driver then
      pending("the default guest has no virtio-rng.ko (make guest says why it was not built)")
      return
    end
    -- UML's own host-backed rng (hw_random) registers first; choose ours.
    local vm, initrd = boot("cd /sys/class/misc/hw_random; cat rng_available; " ..
      "for r in $(cat rng_available); do case $r in virtio_rng*) echo $r > rng_current;; esac; done; " ..
      "echo current: $(cat rng_current); head -c 16 /dev/hwrng | od -An -tx1\n", { devices = { rng } })
    vm:start()
    local srv = vm.servers[1]
    local reason = vm:wait(60)
    local out = vm:output()
    vm:close()
    os.remove(initrd)
    assert.equal("poweroff", reason, out)
    assert.matches("current: virtio_rng%.%d+", out)
    assert.equal(1, srv.connections)
    assert.is_nil(srv.last_error)
    return out, srv
  end

  it("lets the UML guest read bytes from the Lua rng of scripts/devices", function()
    local served = 0
    local out = read_hwrng(dofile("scripts/devices/rng.lua")(function(n)
      served = served + n
      return ("\xa5"):rep(n)
    end))
    if not out then return end
    -- What the guest read from /dev/hwrng is what the Lua source made.
    assert.matches((" a5"):rep(16), out, 1, true)
    assert.is_true(served >= 16)
  end)

  it("lets the UML guest read the host's random bytes from vmlua.virtio.rng", function()
    local rng = virtio.rng()
    local answered = 0
    rng:on("notify", function(_, q) answered = q.used_idx end)
    local out = read_hwrng(rng)
    if not out then return end
    local hex = out:match("current: virtio_rng%.%d+\r?\n([ %x]+)")
    assert.is_string(hex, out)
    assert.equal(16 * 3, #hex)
    assert.not_equal((" 00"):rep(16), hex)
    assert.is_true(answered >= 1, "the device answered no request")
  end)

  it("calls it a poweroff when linux.uml aborts in its cleanup after the guest halted", function()
    local fake = env.build .. "/fake-uml"
    if not readable(fake) then pending(fake .. " is missing: make " .. fake) return end
    local vm = assert(vmlua.vm{ backend = "uml", kernel = fake, console = "none" })
    vm:start()
    local reason, detail = vm:wait(30)
    vm:close()
    assert.equal("poweroff", reason)
    assert.equal("linux.uml halted, then aborted in its own cleanup", detail)
  end)

  it("removes its sockets when linux.uml is killed", function()
    local rng = dofile("scripts/devices/rng.lua")(function(n) return ("\4"):rep(n) end)
    local vm, initrd = boot("echo now-sleeping; sleep 600\n", { devices = { rng } })
    vm:start()
    local socket = vm.servers[1].path
    wait_for(vm, "now%-sleeping", 60)
    assert.is_true(os.execute("test -S " .. socket))
    os.execute("kill -KILL " .. vm:stats().pid)
    local reason = vm:wait(30)
    vm:close()
    os.remove(initrd)
    assert.equal("error", reason)
    assert.is_nil(os.execute("test -e " .. socket))
  end)

  it("says what is missing when linux.uml is not there", function()
    local vm, err = vmlua.vm{ backend = "uml", kernel = "/nonexistent/linux.uml" }
    assert.is_nil(vm)
    assert.equal("/nonexistent/linux.uml: not an executable file", err)
  end)

  it("refuses a kernel image meant for the kvm backend, saying so", function()
    for src, why in pairs{
      ["build/guest/selftest.elf"] = "not a linux.uml program %(a kernel image%? it boots on the kvm backend%)",
      ["build/guest-cache/kvm/vmlinuz"] = "not a linux.uml program %(not an x86%-64 ELF executable; a bzImage",
    } do
      if readable(src) then
        local path = env.tmpname()
        assert(os.execute(("cp %s %s && chmod +x %s"):format(src, path, path)))
        local vm, err = vmlua.vm{ backend = "uml", kernel = path }
        os.remove(path)
        assert.is_nil(vm)
        assert.matches("^" .. path:gsub("%p", "%%%0") .. ": " .. why, err)
      end
    end
  end)
end)

describe("the lifetime of a uml machine #uml", function()
  if not readable(KERNEL) or not readable(INITRD) then
    pending("the default guest is not built: run make guest")
    return
  end
  local dirent = require "posix.dirent"

  -- This process's open fds.
  local function fds()
    return #dirent.dir("/proc/self/fd")
  end
  local function collect()
    collectgarbage(); collectgarbage()
  end
  local function count(t)
    local n = 0
    for _ in pairs(t) do n = n + 1 end
    return n
  end

  it("collects an unstarted, unreferenced machine with its devices, their fds among them", function()
    local img = env.tmpname()
    local f = assert(io.open(img, "wb")); f:write(("\0"):rep(1 << 20)); f:close()
    local alive = setmetatable({}, { __mode = "k" })
    collect()
    local before = fds()
    for _ = 1, 10 do
      -- A virtio console's output function is held by C: the way back
      -- from it to the machine must not keep the machine.
      local dev, con = virtio.console{ output = "none" }
      local blk = assert(virtio.blk{ path = img })
      local vm = assert(vmlua.vm{ backend = "uml", kernel = KERNEL, initrd = INITRD, memory = "96M",
        console = "none", devices = { blk, dev } })
      alive[vm], alive[blk], alive[dev], alive[con] = true, true, true, true
    end
    assert.is_true(fds() >= before + 10, "the disks are open")
    collect()
    os.remove(img)
    assert.equal(0, count(alive))
    assert.equal(before, fds())
  end)

  it("collects an unstarted, unreferenced machine whose net device's frame hook reaches it", function()
    local alive = setmetatable({}, { __mode = "k" })
    collect()
    local before = fds()
    for _ = 1, 10 do
      -- The frame hook is the script's own function, and it reaches the
      -- machine: C must not hold it in a way that keeps the machine.
      local vm
      local nic = assert(virtio.net{ user = true, hook = function() return vm ~= nil end })
      vm = assert(vmlua.vm{ backend = "uml", kernel = KERNEL, initrd = INITRD, memory = "96M",
        console = "none", devices = { nic } })
      alive[vm], alive[nic] = true, true
    end
    assert.is_true(fds() > before, "user networking holds fds")
    collect()
    assert.equal(0, count(alive))
    assert.equal(before, fds())
  end)

  it("keeps a running machine that only its virtio console holds, and lets it go once it has ended", function()
    local initrd = guest_running("echo on-hvc0 >/dev/hvc0\n")
    local alive = setmetatable({}, { __mode = "k" })
    local dev, con = virtio.console{ output = "none" }
    do
      local vm = assert(vmlua.vm{ backend = "uml", kernel = KERNEL, initrd = initrd, memory = "96M",
        cmdline = "quiet", console = "none", devices = { dev } })
      alive[vm] = true
      assert(vm:start())
    end
    collect()
    assert.equal(1, count(alive), "the running machine was collected")
    assert.equal("on-hvc0", con:expect("on%-hvc0", 60))
    local ok, err = pcall(con.expect, con, "never", 60)
    assert.is_false(ok)
    assert.matches("the guest ended %(poweroff", err)
    collect()
    os.remove(initrd)
    assert.equal(0, count(alive), "the machine that ended was kept")
  end)

  -- 50 boots in one process, each with a disk and a virtio console,
  -- each machine dropped unclosed.  Bounds: the fd count after the last
  -- boot is the count after the fifth (a leaked machine held 6 fds, 270
  -- over 45 boots); RSS grows by less than 1 MiB from the fifth boot to
  -- the last (the leaked machines came to 1.6 MiB over 45 boots; without
  -- the leak the growth measured 4 KiB).
  it("boots 50 times in one process with a flat fd count and RSS #slow", function()
    local initrd = guest_running("echo x >/dev/hvc0; echo y >/dev/vda\n")
    local img = env.tmpname()
    local f = assert(io.open(img, "wb")); f:write(("\0"):rep(1 << 20)); f:close()
    local function rss()
      local status = assert(io.open("/proc/self/status")):read("a")
      return tonumber(status:match("VmRSS:%s+(%d+) kB")) * 1024
    end
    local fd5, rss5
    for i = 1, 50 do
      local dev = virtio.console{ output = "none" }
      local vm = assert(vmlua.vm{ backend = "uml", kernel = KERNEL, initrd = initrd, memory = "96M",
        cmdline = "quiet", console = "none", devices = { assert(virtio.blk{ path = img }), dev } })
      vm:start()
      local reason = vm:wait(90)
      assert.equal("poweroff", reason, vm:output())
      vm = nil  -- luacheck: ignore (dropped without close)
      collect()
      if i == 5 then fd5, rss5 = fds(), rss() end
    end
    local fd50, rss50 = fds(), rss()
    os.remove(img)
    os.remove(initrd)
    assert.equal(fd5, fd50, "fds after boot 5 and after boot 50")
    -- Under SANITIZE=1 freed memory sits in ASan's quarantine (up to 256
    -- MiB), so RSS grows whatever we do: there the fds are the measure.
    if env.build ~= "build" then return end
    assert.is_true(rss50 - rss5 < 1 << 20,
      ("RSS grew by %d KiB from boot 5 to boot 50"):format((rss50 - rss5) >> 10))
  end)
end)

describe("the UML guest's FP and vector registers #uml", function()
  if not readable(KERNEL) or not readable(INITRD) then
    pending("the default guest is not built: run make guest")
    return
  end

  -- The host's CPU flags, as a set.
  local function flags_of(text)
    local set = {}
    for w in (text:match("\nflags%s*:%s*([^\r\n]*)") or ""):gmatch("%S+") do set[w] = true end
    return set
  end
  local host = io.open("/proc/cpuinfo"):read("a")
  local host_flags = flags_of("\n" .. host)

  -- spec/helpers/fp_test.c, built static for the guest (it has busybox
  -- only); nil and why when this host cannot.
  local function build_fp_test()
    local exe = env.tmpname()
    local out, status = env.sh("gcc -std=gnu11 -O2 -Wall -Wextra -Werror -static -o " .. exe ..
      " spec/helpers/fp_test.c 2>&1")
    if status ~= 0 then os.remove(exe) return nil, "cannot build spec/helpers/fp_test.c static: " .. out end
    return exe
  end

  -- Boots the default guest with fp_test in /bin, runs script, returns
  -- the console output (the guest must power off).
  local function run_with_fp_test(exe, script, secs)
    local f = assert(io.open(INITRD, "rb"))
    local base = f:read("a")
    f:close()
    local extra = cpio.new():dir("bin"):file_from("bin/fp_test", exe, 493)
      :dir("etc"):dir("etc/vmlua"):file("etc/vmlua/run", script, 493)
    local initrd = env.tmpname()
    f = assert(io.open(initrd, "wb"))
    f:write(base, extra:finish())
    f:close()
    local vm = assert(vmlua.vm{ backend = "uml", kernel = KERNEL, initrd = initrd,
      memory = "128M", cmdline = "quiet", console = "none" })
    vm:start()
    local reason = vm:wait(secs or 120)
    local out = vm:output()
    vm:close()
    os.remove(initrd)
    assert.equal("poweroff", reason, out)
    return out
  end

  it("keeps a process's SSE, AVX and AVX-512 registers across switches to processes that clobber them",
    function()
    local exe, why = build_fp_test()
    if not exe then pending(why) return end
    -- Two clobbering processes and the holding one share the guest's one
    -- CPU: every switch between them saves and restores the FP state.
    local out = run_with_fp_test(exe, "grep -m1 '^flags' /proc/cpuinfo\n" ..
      "/bin/fp_test features\n" ..
      "/bin/fp_test clobber & a=$!\n/bin/fp_test clobber & b=$!\nsleep 1\n" ..
      "/bin/fp_test hold 400; echo fp-hold-status $?\nkill $a $b\n")
    os.remove(exe)
    local want = host_flags.avx512f and "sse avx avx512" or host_flags.avx and "sse avx" or "sse"
    assert.matches("fp_test: features " .. want .. "\r?\n", out)
    assert.matches("fp_test: ok " .. want .. ", %d+ rounds", out)
    assert.matches("fp%-hold%-status 0", out)
    -- and it was switched out often: the clobberers ran in between
    local switches = tonumber(out:match("fp_test: ok [%w ]+, %d+ rounds, (%d+) context switches"))
    assert.is_true(switches and switches >= 100, out)
  end)

  it("keeps a process's SSE, AVX and AVX-512 registers across a million switches to a process that clobbers them #slow",
    function()
    local exe, why = build_fp_test()
    if not exe then pending(why) return end
    -- Each round the holder wakes its child through a pipe and blocks on
    -- its answer: a switch to the child, which loads other values into
    -- every vector register, and one back.  A few minutes here.
    local out = run_with_fp_test(exe, "/bin/fp_test pingpong 1000000; echo fp-pingpong-status $?\n", 1200)
    os.remove(exe)
    local want = host_flags.avx512f and "sse avx avx512" or host_flags.avx and "sse avx" or "sse"
    assert.matches("fp_test: ok " .. want .. ", %d+ pingpong rounds, %d+ context switches", out)
    assert.matches("fp%-pingpong%-status 0", out)
    local switches = tonumber(out:match("pingpong rounds, (%d+) context switches"))
    assert.is_true(switches and switches >= 1000000, out)
  end)

  it("shows the guest the host's CPU flags, the FP and vector ones among them", function()
    local exe, why = build_fp_test()
    if not exe then pending(why) return end
    local out = run_with_fp_test(exe, "cat /proc/cpuinfo\n")
    os.remove(exe)
    local guest_flags = flags_of(out)
    for _, flag in ipairs{ "fpu", "sse", "sse2", "fxsr" } do
      assert.is_true(guest_flags[flag], flag .. " missing from the guest's flags:\n" .. out)
    end
    for _, flag in ipairs{ "xsave", "avx", "avx2", "avx512f", "amx_tile" } do
      assert.equal(host_flags[flag] or false, guest_flags[flag] or false, flag .. " differs from the host's")
    end
    -- UML takes each flag it knows whose name occurs in the host's flags
    -- line (by substring: "ss" from "sse"), and no other.
    local line = host:match("\nflags%s*:%s*([^\n]*)")
    for flag in pairs(guest_flags) do
      assert.truthy(line:find(flag, 1, true), flag .. " is not in the host's flags")
    end
  end)
end)

describe("the mconsole of a UML guest #uml", function()
  if not readable(KERNEL) or not readable(INITRD) then
    pending("the default guest is not built: run make guest")
    return
  end

  -- The default guest with its shell on the console, booted and ready.
  local function shell()
    local vm = assert(vmlua.vm{ backend = "uml", kernel = KERNEL, initrd = INITRD,
      memory = "96M", cmdline = "quiet", console = "none" })
    vm:start()
    vm.console:expect("guest ready", 60)
    return vm
  end

  -- The highest "count N" on the console so far.
  local function last_count(vm)
    local n = -1
    for c in vm:output():gmatch("count (%d+)\r?\n") do n = math.max(n, tonumber(c)) end
    return n
  end

  it("pauses a guest mid-command: nothing is printed while paused, the count goes on after resume, and the guest powers off", function()
    local vm, initrd = boot("i=0; while [ $i -lt 30 ]; do echo count $i; i=$((i + 1)); sleep 0.1; done\n")
    local states = {}
    vm:on("state", function(_, s) states[#states + 1] = s end)
    vm:start()
    wait_for(vm, "count 3\r?\n", 60)
    assert.equal(vm, vm:pause())
    assert.equal("paused", vm.state)
    -- What the guest wrote before it stood still may still be on its way.
    assert.same({ nil, "timeout" }, { vm:wait(0.5) })
    local before = vm:output()
    local at = last_count(vm)
    assert.is_true(at >= 3 and at < 29, "paused at count " .. at)
    -- Two seconds paused: the guest prints nothing, and wait runs it anyway.
    assert.same({ nil, "timeout" }, { vm:wait(2) })
    assert.equal(before, vm:output())
    assert.equal("paused", vm.state)
    assert.has_error(function() vm:pause() end, "vm:pause(): the machine is paused")
    assert.equal(vm, vm:resume())
    assert.equal("running", vm.state)
    local reason = vm:wait(60)
    local out = vm:output()
    vm:close()
    os.remove(initrd)
    assert.equal("poweroff", reason, out)
    assert.matches("count " .. (at + 1) .. "\r?\n", out)      -- it went on where it stood
    assert.matches("count 29\r?\n", out)
    assert.matches("vmlua: exit status 0\r?\n", out)
    assert.not_matches("Kernel panic", out)
    assert.same({ "starting", "running", "paused", "running", "stopping", "stopped" }, states)
  end)

  it("presses SysRq keys, running or paused: the kernel's answer comes back and is on the console", function()
    local vm = shell()
    local text = assert(vm:sysrq("h"))
    assert.matches("sysrq: HELP : .*sync%(s%)", text)
    wait_for(vm, "sysrq: HELP : [^\n]*sync%(s%)", 30)
    assert.equal(vm, vm:pause())
    assert.matches("sysrq: HELP", assert(vm:sysrq("h")))     -- UML answers it while stopped
    assert.equal(vm, vm:resume())
    assert.matches("Emergency Sync", assert(vm:sysrq("s")))
    assert.has_error(function() vm:sysrq("hs") end,
      "bad argument #1 to 'sysrq' (a single character expected, got 'hs')")
    assert.has_error(function() vm:sysrq() end,
      "bad argument #1 to 'sysrq' (a single character expected, got nil)")
    assert.has_error(function() vm:sysrq("s", -1) end,
      "bad argument #2 to 'sysrq' (timeout must be a positive number)")
    vm:send("poweroff -f\n")
    assert.equal("poweroff", vm:wait(60))
    vm:close()
  end)

  it("answers version with the guest's kernel, and a bad command with a clear error", function()
    local vm = shell()
    local release = vm.console:run("uname -r"):gsub("%s+$", "")
    local version = assert(vm:mconsole("version"))
    assert.matches("^Linux %S+ " .. release:gsub("%p", "%%%0") .. " .*x86_64$", version)
    assert.equal("fd:3,fd:4", vm:mconsole("config con0"))
    assert.same({ nil, "mconsole 'frobnicate': Unknown command" }, { vm:mconsole("frobnicate") })
    for _, case in ipairs{
      { { 42 }, "bad argument #1 to 'mconsole' (string expected, got number)" },
      { { "" }, "bad argument #1 to 'mconsole' (empty command)" },
      { { ("x"):rep(512) }, "bad argument #1 to 'mconsole' (command longer than 511 bytes)" },
      { { "ver\0sion" }, "bad argument #1 to 'mconsole' (command holds a NUL byte)" },
      { { "stop" }, "bad argument #1 to 'mconsole' ('stop' and 'go' are vm:pause() and vm:resume())" },
      { { "go" }, "bad argument #1 to 'mconsole' ('stop' and 'go' are vm:pause() and vm:resume())" },
      { { "version", 0 }, "bad argument #2 to 'mconsole' (timeout must be a positive number)" },
    } do
      assert.has_error(function() vm:mconsole(table.unpack(case[1], 1, 2)) end, case[2])
    end
    assert.has_error(function() vm:resume() end, "vm:resume(): the machine is running")
    vm:send("poweroff -f\n")
    assert.equal("poweroff", vm:wait(60))
    vm:close()
  end)

  it("presses Ctrl-Alt-Del: the kernel's default is a reboot", function()
    local vm = shell()
    assert.equal(vm, vm:cad())
    local reason, detail = vm:wait(60)
    vm:close()
    assert.equal("reboot", reason)
    assert.equal("reboot: Restarting system", detail)
  end)

  it("presses Ctrl-Alt-Del: an init that asked for it gets SIGINT and powers off cleanly", function()
    local initrd = own_initrd(table.concat({
      "#!/bin/busybox sh",
      "/bin/busybox mount -t proc proc /proc",
      "echo 0 > /proc/sys/kernel/ctrl-alt-del",          -- SIGINT to init, not a reboot
      "trap 'echo init-got-cad; /bin/busybox poweroff -f' INT",
      "echo init-waiting",
      "while :; do /bin/busybox sleep 1; done",
    }, "\n") .. "\n", { "proc" })
    local vm = assert(vmlua.vm{ backend = "uml", kernel = KERNEL, initrd = initrd,
      memory = "96M", cmdline = "quiet", console = "none" })
    vm:start()
    wait_for(vm, "init%-waiting", 60)
    assert.equal(vm, vm:cad())
    local reason = vm:wait(60)
    local out = vm:output()
    vm:close()
    os.remove(initrd)
    assert.equal("poweroff", reason, out)
    assert.matches("init%-got%-cad", out)
  end)

  it("gives errors once the guest has ended", function()
    local vm = shell()
    vm:send("poweroff -f\n")
    -- Ended, but not yet waited for: the call itself says so.
    local text, err
    for _ = 1, 600 do
      text, err = vm:mconsole("version", 5)
      if not text then break end
      os.execute("sleep 0.05")
    end
    assert.is_nil(text)
    assert.is_truthy(err:find("^mconsole 'version': the mconsole socket is closed %(linux%.uml has ended%)$") or
                     err:find("^mconsole 'version': linux%.uml ended before it answered$") or
                     err:find("^mconsole 'version': linux%.uml has ended$"), err)
    assert.equal("poweroff", vm:wait(60))
    local stopped = "the machine is stopped (exited: poweroff)"
    assert.has_error(function() vm:mconsole("version") end, "vm:mconsole(): " .. stopped)
    assert.has_error(function() vm:sysrq("s") end, "vm:sysrq(): " .. stopped)
    assert.has_error(function() vm:cad() end, "vm:cad(): " .. stopped)
    assert.has_error(function() vm:pause() end, "vm:pause(): " .. stopped)
    assert.has_error(function() vm:resume() end, "vm:resume(): " .. stopped)
    vm:close()
  end)

  it("closes a paused guest: nothing is left running", function()
    local vm = shell()
    local pid = vm:stats().pid
    assert.equal(vm, vm:pause())
    vm:close()
    assert.equal("stopped", vm.state)
    assert.equal("closed", vm.exit_detail)
    assert.is_false(os.execute("kill -0 " .. pid .. " 2>/dev/null") or false)
  end)
end)

describe("virtual time in a UML guest #uml", function()
  if not readable(KERNEL) or not readable(INITRD) then
    pending("the default guest is not built: run make guest")
    return
  end
  local DEBIAN = "build/guest-cache/uml/root/usr/bin/linux.uml"

  local function shell(opts)
    opts = opts or {}
    local vm, why = vmlua.vm{ backend = "uml", kernel = KERNEL, initrd = INITRD, memory = "96M",
      cmdline = "quiet", console = "none", time = opts.time or "virtual", devices = opts.devices }
    if not vm then return nil, why end
    vm:start()
    vm.console:expect("guest ready", 60)
    return vm
  end

  it("checks the option and says which kernels and backends have it", function()
    assert.has_error(function() vmlua.vm{ backend = "uml", kernel = KERNEL, time = "fast" } end,
      "bad argument #1 to 'vm' (option 'time' must be 'real' or 'virtual', got 'fast')")
    assert.has_error(function() vmlua.vm{ backend = "uml", kernel = KERNEL, time = 1 } end,
      "bad argument #1 to 'vm' (option 'time' must be 'real' or 'virtual', got number)")
    assert.has_error(function() vmlua.vm{ backend = "kvm", kernel = KERNEL, time = "virtual" } end,
      "bad argument #1 to 'vm' (option 'time' is 'virtual', which only the uml backend has)")
    local auto = vmlua.vm{ kernel = KERNEL, initrd = INITRD, time = "virtual", console = "none" }
    if auto then
      assert.equal("uml", auto.backend)
      auto:close()
    end
    if readable(DEBIAN) then
      local vm, why = vmlua.vm{ backend = "uml", kernel = DEBIAN, time = "virtual" }
      assert.is_nil(vm)
      assert.equal(require("vmlua.paths").absolute(DEBIAN) .. " has no virtual time (it was built without " ..
        "CONFIG_UML_TIME_TRAVEL_SUPPORT, as Debian's linux.uml is); vmlua's own kernel, which make guest " ..
        "builds, has it", why)
    end
    local out, status = env.sh(env.vmlua .. " boot --virtual-time --backend kvm --run true 2>&1")
    assert.equal(125, status, out)
    assert.matches("%-%-virtual%-time needs the uml backend", out)
  end)

  it("sleeps a guest's minute within a 30 s wait, and vm:time() reads the guest's clock", function()
    local vm, why = shell()
    if not vm then pending(why) return end
    local before = assert(vm:time())
    local out, status = vm.console:run("sleep 60; echo woke", 30)
    assert.equal(0, status, out)
    assert.matches("woke", out)
    local after = assert(vm:time())
    assert.is_true(after - before >= 60, ("the guest's clock went from %g to %g"):format(before, after))
    vm:pause()
    assert.has_error(function() vm:time() end,
      "vm:time(): the machine is paused, and its kernel, which keeps its clock, with it; resume it first")
    vm:resume()
    vm:close()
    assert.has_error(function() vm:time() end, "vm:time(): the machine is stopped (exited: stopped)")
  end)

  it("reads the guest's clock on real time too: a second's sleep is a second", function()
    local vm = assert(shell{ time = "real" })
    local before = assert(vm:time())
    vm.console:run("sleep 1", 30)
    local after = assert(vm:time())
    assert.is_true(after - before >= 1 and after - before < 30, ("%g to %g"):format(before, after))
    vm:close()
  end)

  it("keeps disk writes and reads right: the guest's checksum is the image's", function()
    local img = env.tmpname()
    assert(os.execute("truncate -s 16M " .. img))
    local vm, why = shell{ devices = { virtio.blk{ path = img } } }
    if not vm then os.remove(img) pending(why) return end
    local out, status = vm.console:run("sleep 5; dd if=/dev/urandom of=/tmp/a bs=1M count=8 2>/dev/null && " ..
      "dd if=/tmp/a of=/dev/vda bs=1M conv=fsync 2>/dev/null && echo 3 > /proc/sys/vm/drop_caches && " ..
      "dd if=/dev/vda bs=1M count=8 2>/dev/null | md5sum", 60)
    assert.equal(0, status, out)
    local guest_sum = out:match("(%x+)%s+%-")
    vm:close()
    local host_sum = env.sh("head -c 8M " .. img .. " | md5sum"):match("^%x+")
    os.remove(img)
    assert.is_truthy(guest_sum, out)
    assert.equal(host_sum, guest_sum)
  end)

  it("lets two guests on a switch ping each other, within a second of their shared clock", function()
    local sw = vmlua.switch()
    local a, why = shell{ devices = { virtio.net{ switch = sw, mac = "52:54:00:00:00:0a" } } }
    if not a then pending(why) return end
    local b
    finally(function()              -- busted keeps one finally per spec
      a:close()
      if b then b:close() end
    end)
    b = assert(shell{ devices = { virtio.net{ switch = sw, mac = "52:54:00:00:00:0b" } } })
    assert.equal(0, select(2, a.console:run("ip link set eth0 up && ip addr add 10.0.0.1/24 dev eth0", 30)))
    assert.equal(0, select(2, b.console:run("ip link set eth0 up && ip addr add 10.0.0.2/24 dev eth0", 30)))
    local out, status = a.console:run("ping -c 3 -W 1 10.0.0.2", 60)
    assert.equal(0, status, out)
    assert.matches("3 packets received", out)
    -- The answers come at the virtual time they were sent: no tick
    -- (10 ms) passes between a request and its reply.
    local max = tonumber(out:match("round%-trip min/avg/max = [%d.]+/[%d.]+/([%d.]+) ms"))
    assert.is_true(max ~= nil and max < 10, out)
  end)
end)

describe("vmlua's calendar: UML's time-travel protocol", function()
  local socket = require "posix.sys.socket"
  local unistd = require "posix.unistd"
  local OP = { ACK = 0, START = 1, REQUEST = 2, WAIT = 3, GET = 4, UPDATE = 5, RUN = 6, GET_TOD = 8 }
  local NEVER = math.maxinteger        -- UML's S64_MAX: no timer at all

  -- A machine whose "linux.uml" only sleeps: the spec itself plays the
  -- guest on its calendar socket.
  local SLEEPER = env.tmpname()
  do
    local f = assert(io.open(SLEEPER, "w"))
    f:write("#!/bin/sh\nexec sleep 60\n")
    f:close()
    assert(os.execute("chmod 755 " .. SLEEPER))
  end
  teardown(function() os.remove(SLEEPER) end)
  -- Closed after each spec however it ends: a machine left on the
  -- calendar would hold the clock for every later one.
  local opened = {}
  after_each(function()
    for m, dir in pairs(opened) do
      m:close()
      os.execute("rm -rf " .. dir)
    end
    opened = {}
  end)
  local function machine()
    local dir = assert(core.uml_rundir())
    local m = assert(core.uml_vm{ binary = SLEEPER, args = {}, rundir = dir, virtual_time = true })
    opened[m] = dir
    return m, dir
  end

  local fake = {}
  fake.__index = fake
  local function connect(dir)
    local fd = assert(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0))
    assert(socket.connect(fd, { family = socket.AF_UNIX, path = dir .. "/time" }))
    return setmetatable({ fd = fd, seq = 0 }, fake)
  end
  function fake:send(op, t)
    self.seq = self.seq + 1
    assert(socket.send(self.fd, string.pack("<I4I4i8", op, self.seq, t or 0)) == 16)
    return self.seq
  end
  -- The next message, as the machine's loop serves the calendar; nil
  -- when none came within secs (or the connection was closed: "closed").
  function fake:recv(m, secs)
    local buf, deadline = "", os.time() + (secs or 5)
    while #buf < 16 do
      m:poll(0.02)
      local got, err, errno = socket.recv(self.fd, 16 - #buf)
      if got == "" then return "closed" end
      if got then buf = buf .. got
      elseif errno ~= require("posix.errno").EAGAIN then error(err)
      elseif os.time() >= deadline then return nil end
    end
    local op, seq, t = string.unpack("<I4I4i8", buf)
    return op, seq, t
  end
  -- Send op and expect its ACK; returns the ACK's time.
  function fake:ask(m, op, t)
    local seq = self:send(op, t)
    local rop, rseq, rt = self:recv(m)
    assert.equal(OP.ACK, rop)
    assert.equal(seq, rseq)
    return rt
  end
  local function nonblocking(g)
    local fcntl = require "posix.fcntl"
    fcntl.fcntl(g.fd, fcntl.F_SETFL, fcntl.fcntl(g.fd, fcntl.F_GETFL) | fcntl.O_NONBLOCK)
    return g
  end
  -- Wait (and ACK) the RUN that should come; returns its time.
  function fake:wait_run(m)
    self:ask(m, OP.WAIT)
    local op, seq, t = self:recv(m)
    assert.equal(OP.RUN, op)
    assert(socket.send(self.fd, string.pack("<I4I4i8", OP.ACK, seq, 0)) == 16)
    return t
  end

  it("answers START, GET and GET_TOD, and runs a waiting guest at the time it asked for", function()
    local m, dir = machine()
    local g = nonblocking(connect(dir))
    g:ask(m, OP.START, 42)
    -- the clock is the Lua state's: it starts at 0 and never goes back
    local t0 = g:ask(m, OP.GET)
    local tod = g:ask(m, OP.GET_TOD)
    assert.is_true(math.abs(tod // 1000000000 - os.time()) < 5 + t0 // 1000000000, "time of day " .. tod)
    g:ask(m, OP.REQUEST, t0 + 5000000000)
    assert.equal(t0 + 5000000000, g:wait_run(m))
    assert.equal(t0 + 5000000000, g:ask(m, OP.GET))
    -- a request into the past runs now
    g:ask(m, OP.REQUEST, t0 + 1000000000)
    assert.equal(t0 + 5000000000, g:wait_run(m))
    -- UPDATE is acknowledged and moves nothing
    g:ask(m, OP.UPDATE, t0 + 9000000000)
    assert.equal(t0 + 5000000000, g:ask(m, OP.GET))
  end)

  it("takes a message that comes in pieces", function()
    local m, dir = machine()
    local g = nonblocking(connect(dir))
    local msg = string.pack("<I4I4i8", OP.GET, 7, 0)
    assert(socket.send(g.fd, msg:sub(1, 5)) == 5)
    m:poll(0.05)
    assert(socket.send(g.fd, msg:sub(6)) == 11)
    local op, seq = g:recv(m)
    assert.equal(OP.ACK, op)
    assert.equal(7, seq)
  end)

  it("keeps one clock for two guests: the earliest request runs first, and a running guest holds it", function()
    local m1, d1 = machine()
    local m2, d2 = machine()
    local a, b = nonblocking(connect(d1)), nonblocking(connect(d2))
    a:ask(m1, OP.START)
    b:ask(m2, OP.START)
    local t0 = a:ask(m1, OP.GET)
    a:ask(m1, OP.REQUEST, t0 + 7000000000)
    a:ask(m1, OP.WAIT)
    -- b runs and has asked for nothing yet: the clock stays
    assert.is_nil(a:recv(m1, 1))
    b:ask(m2, OP.REQUEST, t0 + 6000000000)
    assert.equal(t0 + 6000000000, b:wait_run(m2))
    assert.is_nil(a:recv(m1, 1), "a ran before its time")
    b:ask(m2, OP.REQUEST, t0 + 10000000000)
    b:ask(m2, OP.WAIT)
    local op, _, t = a:recv(m1)
    assert.equal(OP.RUN, op)
    assert.equal(t0 + 7000000000, t)
    assert.equal(t0 + 7000000000, b:ask(m2, OP.GET))
  end)

  it("runs a guest again whose interrupt's request crossed its RUN", function()
    local m, dir = machine()
    local g = nonblocking(connect(dir))
    g:ask(m, OP.START)
    local t0 = g:ask(m, OP.GET)
    g:ask(m, OP.REQUEST, t0 + 2000000000)
    g:ask(m, OP.WAIT)
    m:poll(0.1)                          -- the calendar sends its RUN, not read yet
    -- An interrupt's handler asks for the time before the RUN is read:
    -- the kernel takes the RUN while it waits for this answer.
    local seq = g:send(OP.GET)
    local op, rseq, t = g:recv(m)
    assert.equal(OP.RUN, op)
    assert.equal(t0 + 2000000000, t)
    assert(socket.send(g.fd, string.pack("<I4I4i8", OP.ACK, rseq, 0)) == 16)
    op, rseq = g:recv(m)
    assert.equal(OP.ACK, op)
    assert.equal(seq, rseq)
    g:ask(m, OP.REQUEST, t)              -- the interrupt, at the present time
    -- Its first WAIT still waits: the calendar runs it again.
    local op2, _, t2 = g:recv(m)
    assert.equal(OP.RUN, op2)
    assert.equal(t0 + 2000000000, t2)
  end)

  it("does not run a guest that asked for no time at all", function()
    local m, dir = machine()
    local g = nonblocking(connect(dir))
    g:ask(m, OP.START)
    g:ask(m, OP.REQUEST, NEVER)
    g:ask(m, OP.WAIT)
    assert.is_nil(g:recv(m, 1))
  end)

  it("ends the connection of a guest that sends what a calendar sends, or nonsense; the other guests go on", function()
    for _, bad in ipairs{ OP.RUN, 7, 99, 0xffffffff } do
      local m, dir = machine()
      local m2, d2 = machine()
      local g, other = nonblocking(connect(dir)), nonblocking(connect(d2))
      g:ask(m, OP.START)
      other:ask(m2, OP.START)
      g:send(bad, 5)
      assert.equal("closed", g:recv(m), "op " .. bad)
      -- a second connection to its socket is refused: it is gone
      local fd = assert(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0))
      assert.is_nil(socket.connect(fd, { family = socket.AF_UNIX, path = dir .. "/time" }))
      unistd.close(fd)
      local t = other:ask(m2, OP.GET) + 3000000000
      other:ask(m2, OP.REQUEST, t)
      assert.equal(t, other:wait_run(m2))
      m:close(); m2:close()       -- off the clock before the next case
    end
  end)
end)

describe("core.mconsole: UML's mconsole protocol", function()
  local unistd = require "posix.unistd"
  local wait = require "posix.sys.wait"
  local FAKE = env.build .. "/fake-mconsole"
  if not readable(FAKE) then pending(FAKE .. " is missing: make " .. FAKE) return end

  -- Runs the fake mconsole in `mode` at a fresh path, asks it cmd, and
  -- returns what core.mconsole said.
  local function ask(mode, cmd, timeout)
    local dir = env.tmpdir()
    local path = dir .. "/mconsole"
    local pid = assert(unistd.fork())
    if pid == 0 then
      unistd.execp(FAKE, { [0] = FAKE, path, mode })
      unistd._exit(127)
    end
    for _ = 1, 500 do
      if os.execute("test -S " .. path) then break end
      unistd.sleep(0); os.execute("sleep 0.01")
    end
    local r = table.pack(core.mconsole(path, cmd or "version", timeout or 5))
    wait.wait(pid)
    os.execute("rm -rf " .. dir)
    return table.unpack(r, 1, r.n)
  end

  it("sends a version-2 request and reads the reply, in one packet or several", function()
    assert.equal("echo: version", ask("good"))
    assert.equal("echo: config con0", ask("good", "config con0"))
    assert.equal("one two three", ask("multi"))
  end)

  it("returns the kernel's refusal", function()
    assert.same({ nil, "mconsole 'frob': Unknown command" }, { ask("refuse", "frob") })
  end)

  it("rejects a malformed reply, saying what is wrong with it", function()
    for mode, why in pairs{
      short = "bad reply: 5 bytes, shorter than its header",
      badlen = "bad reply: length 600 (1 to 512 expected)",
      mismatch = "bad reply: length 10, but 4 bytes came",
      nonul = "bad reply: its text does not end with the packet (a NUL at 4 of 4)",
      more = "bad reply: 'more' is 7 (0 or 1 expected)",
    } do
      assert.same({ nil, "mconsole 'version': " .. why }, { ask(mode) }, mode)
    end
  end)

  it("times out when no reply comes, and says when nobody listens", function()
    assert.same({ nil, "mconsole 'version': no reply within 500 ms" }, { ask("silent", "version", 0.5) })
    local r, err = ask("stale")
    assert.is_nil(r)
    assert.matches("^mconsole 'version': .*/mconsole: nobody listens there %(linux%.uml has ended%?%)$", err)
    r, err = core.mconsole("/nonexistent/mconsole", "version")
    assert.is_nil(r)
    assert.equal("mconsole 'version': /nonexistent/mconsole: No such file or directory", err)
  end)

  it("checks its arguments", function()
    assert.has_error(function() core.mconsole() end,
      "bad argument #1 to 'mconsole' (string expected, got no value)")
    assert.has_error(function() core.mconsole("/x", "") end,
      "bad argument #2 to 'mconsole' (empty command)")
    assert.has_error(function() core.mconsole("/x", "version", -1) end,
      "bad argument #3 to 'mconsole' (timeout must be positive)")
  end)
end)

describe("the mconsole methods on the kvm backend", function()
  if not readable(KERNEL) then pending("the default guest is not built: run make guest") return end

  it("say they are uml-only", function()
    -- A kvm machine's Lua face, without /dev/kvm: the check comes first.
    local VM = getmetatable(assert(vmlua.vm{ backend = "uml", kernel = KERNEL, console = "none" }))
    local vm = setmetatable({ backend = "kvm", state = "running" }, VM)
    for _, call in ipairs{ { "mconsole", "version" }, { "sysrq", "s" }, { "cad" } } do
      assert.has_error(function() vm[call[1]](vm, call[2]) end,
        "vm:" .. call[1] .. "(): only the uml backend has an mconsole (this machine is kvm)")
    end
  end)
end)

describe("vmlua disks in the UML guest #uml", function()
  if not readable(KERNEL) or not readable(INITRD) then
    pending("the default guest is not built: run make guest")
    return
  end

  local function sha256(path) return env.sh("sha256sum < " .. path):match("^%x+") end
  local function blank(mib)
    local path = env.tmpname()
    assert(os.execute(("truncate -s %dM %s"):format(mib, path)))
    return path
  end

  it("keeps a filesystem across poweroff and a second boot", function()
    local img = blank(16)
    local disk = virtio.blk{ path = img, serial = "vmlua-disk-1" }
    local out = run("cat /sys/block/vda/serial; echo; mke2fs -q /dev/vda && mkdir /mnt && " ..
      "mount /dev/vda /mnt && echo kept-across-boots > /mnt/note && umount /mnt && echo first-done\n", { disk })
    assert.matches("vmlua%-disk%-1", out)
    assert.matches("first%-done", out)
    assert.is_true(disk.writes > 0)
    assert.is_true(disk.flushes > 0, "the guest never flushed")
    disk:close()
    out = run("mkdir /mnt && mount /dev/vda /mnt && cat /mnt/note\n", { virtio.blk{ path = img } })
    assert.matches("kept%-across%-boots", out)
    -- and the host sees an ext2 filesystem with that file in it
    local listing = env.sh("debugfs -R 'cat /note' " .. img .. " 2>/dev/null")
    assert.matches("kept%-across%-boots", listing)
    os.remove(img)
  end)

  it("under copy-on-write leaves the master's checksum unchanged", function()
    local master = blank(16)
    run("mke2fs -q /dev/vda && echo made\n", { virtio.blk{ path = master } })
    local before = sha256(master)
    local disk = virtio.blk{ path = master, cow = true }
    local out = run("mkdir /mnt && mount /dev/vda /mnt && dd if=/dev/urandom of=/mnt/big bs=64k count=64 " ..
      "2>/dev/null && sync && ls -l /mnt/big && umount /mnt && echo cow-done\n", { disk })
    assert.matches("cow%-done", out)
    assert.is_true(disk.bytes_written >= 4 * 1024 * 1024)
    assert.equal(before, sha256(master))
    os.remove(master)
  end)

  -- The guest writes a mark to sector 0 with conv=fsync, says so, and
  -- sleeps; the spec kills vmlua with SIGKILL as soon as it reads that.
  local function killed_after_flush(img, cow)
    local log = env.tmpname()
    local w = env.watched()
    local pid = env.sh((w.env .. env.vmlua .. " spec/helpers/disk_guest.lua %s %s " ..
      "'printf flushed-mark-0042 | dd of=/dev/vda conv=fsync 2>/dev/null && echo flush-acked; sleep 600' " ..
      ">%s 2>&1 & echo $!"):format(img, cow or "-", log)):match("%d+")
    local deadline = os.time() + 90
    local seen
    repeat
      local f = io.open(log, "rb")
      seen = f and f:read("a"):find("flush-acked", 1, true)
      if f then f:close() end
      if not seen then env.sh("sleep 0.05") end
    until seen or os.time() > deadline
    os.execute("kill -KILL " .. pid)
    local out = env.sh("tail -c 2000 " .. log)
    -- Nothing of linux.uml may outlive vmlua, not even the helpers it
    -- forked (its guardian sees to that): they would run in a run
    -- directory under the watched TMPDIR.
    local initrd = env.sh("head -c 2000 " .. log):match("disk_guest: initrd (%S+)")
    assert.truthy(initrd, out)
    local gone = os.time() + 10
    while env.uml_pids{ under = w.dir } ~= "" and os.time() < gone do env.sh("sleep 0.1") end
    local left = env.uml_pids{ under = w.dir }
    if left ~= "" then env.sh("kill -KILL " .. left) end
    os.remove(initrd)
    os.execute("rm -rf " .. w.dir)
    assert.equal("", left, "left running after vmlua was killed")
    os.remove(log)
    assert.truthy(seen, out)
    -- vmlua is gone (or a zombie: an orphan here may have no reaper)
    local function alive()
      local f = io.open("/proc/" .. pid .. "/stat")
      if not f then return false end
      local state = f:read("a"):match("^%d+ %b() (%a)")
      f:close()
      return state ~= "Z"
    end
    local deadline2 = os.time() + 10
    while alive() and os.time() < deadline2 do env.sh("sleep 0.05") end
    assert.is_false(alive(), "vmlua still runs")
  end

  it("has the guest's flushed data in the image after vmlua is killed with SIGKILL", function()
    local img = blank(4)
    killed_after_flush(img)
    local f = assert(io.open(img, "rb"))
    assert.equal("flushed-mark-0042", f:read(17))
    f:close()
    os.remove(img)
  end)

  it("has the guest's flushed data in a named overlay after SIGKILL, the master untouched", function()
    local master, overlay = blank(4), env.tmpname()
    os.remove(overlay)
    local before = sha256(master)
    killed_after_flush(master, overlay)
    assert.equal(before, sha256(master))
    -- reopen the overlay and read sector 0 the way a driver would
    local mem = core.memory("8M")
    local dev = assert(virtio.blk{ path = master, cow = overlay })
    local d = assert(require("vmlua.driver").attach(dev, mem))
    local used = d:request(0, { string.pack("<I4I4I8", 0, 0, 0), { write = 513 } })
    assert.equal(0, used[1].data:byte(-1))
    assert.equal("flushed-mark-0042", used[1].data:sub(1, 17))
    dev:close()
    os.remove(master)
    os.remove(overlay)
  end)
end)

describe("a vmlua console in the UML guest #uml", function()
  if not readable(KERNEL) or not readable(INITRD) then
    pending("the default guest is not built: run make guest")
    return
  end

  it("is hvc0: the guest reads a file the host gave it and writes back", function()
    local input = env.tmpname()
    local f = assert(io.open(input, "wb"))
    f:write("line-one from a file\nline-two from a file\n")
    f:close()
    local heard = {}
    local dev, con = virtio.console{ output = "none", input = input }
    con:on("output", function(_, data) heard[#heard + 1] = data end)
    -- the guest opens hvc0 and speaks first; then the file streams in
    local out = run("exec 3<>/dev/hvc0; stty -echo <&3; echo ready >&3; " ..
      "head -n 2 <&3 | sed 's/^/read: /'; echo written-to-hvc0 >&3\n", { dev })
    os.remove(input)
    assert.matches("read: line%-one from a file", out)
    assert.matches("read: line%-two from a file", out)
    assert.matches("written%-to%-hvc0", con:output())
    assert.matches("written%-to%-hvc0", table.concat(heard))
    assert.equal(42, dev.in_bytes)
  end)

  it("takes its input from vmlua's stdin", function()
    local out, status = env.sh("printf 'typed-on-stdin\\n' | " .. env.vmlua .. " spec/helpers/console_guest.lua " ..
      "'exec 3<>/dev/hvc0; stty -echo <&3; echo ready >&3; head -n 1 <&3 | sed s/^/read:/' 2>&1")
    assert.equal(0, status, out)
    assert.matches("read:typed%-on%-stdin", out)
    assert.matches("%[hvc0%] ready", out)
    assert.matches("console_guest: poweroff", out)
  end)
end)

describe("talking to the UML guest: expect, send, run #uml", function()
  if not readable(KERNEL) or not readable(INITRD) then
    pending("the default guest is not built: run make guest")
    return
  end

  it("expects the shell, runs commands with their output and status, and logs", function()
    local vm = assert(vmlua.vm{ backend = "uml", kernel = KERNEL, initrd = INITRD,
      memory = "96M", cmdline = "quiet", console = "none" })
    local log = env.tmpname()
    vm:start()
    local con = vm.console
    assert.same({ "guest", "ready" }, { con:expect("(guest) (ready)", 60) })
    assert.equal(con, con:log(log))
    local out, status = con:run("echo one; echo two # a comment")
    assert.equal("one\ntwo\n", out)
    assert.equal(0, status)
    out, status = con:run("cat /nonexistent")
    assert.matches("No such file or directory", out)
    assert.equal(1, status)
    assert.equal(0, select(2, con:run("test \"$(uname -s)\" = Linux")))
    assert.equal(2, select(2, con:run("if then")))           -- a syntax error, still answered
    con:run([[cd /proc; X="it's kept"]])
    assert.equal("/proc it's kept\n", (con:run("echo $(pwd) $X")))   -- the shell's state stays
    local err = select(2, pcall(con.expect, con, "never printed", 1))
    assert.matches("expect: no \"never printed\" within 1 s; the last lines were:", err)
    con:send("poweroff -f\n")
    assert.equal("poweroff", vm:wait(60))
    vm:close()
    local logged = assert(io.open(log)):read("a")
    os.remove(log)
    assert.matches("__vmlua_S_1__", logged)
    assert.not_matches("guest ready", logged)               -- the log began after that
  end)

  it("fails an expect at once on a guest panic, with the panic line", function()
    local initrd = own_initrd("#!/bin/busybox sh\n/bin/busybox echo about to fail\nexit 3\n")
    local vm = assert(vmlua.vm{ backend = "uml", kernel = KERNEL, initrd = initrd,
      memory = "96M", cmdline = "quiet", console = "none" })
    vm:start()
    local t0 = os.time()
    local ok, err = pcall(vm.console.expect, vm.console, "this never comes", 120)
    vm:close()
    os.remove(initrd)
    assert.is_false(ok)
    assert.matches("^guest panic: Kernel panic %- not syncing: Attempted to kill init!", err)
    assert.is_true(os.time() - t0 < 60, "it waited for the timeout")
  end)

  it("expects on a virtio console too, driving the machine meanwhile", function()
    local dev, con = virtio.console{ output = "none" }
    local vm, initrd = boot("echo hello-on-hvc0 > /dev/hvc0; sleep 2\n", { devices = { dev } })
    vm:start()
    assert.equal("hello-on-hvc0", con:expect("hello%-on%-hvc0", 60))
    assert.equal("poweroff", vm:wait(60))
    vm:close()
    os.remove(initrd)
  end)
end)

describe("vmlua networks in UML guests #uml", function()
  if not readable(KERNEL) or not readable(INITRD) then
    pending("the default guest is not built: run make guest")
    return
  end

  it("puts a guest on a host tap device, and the host answers its ping", function()
    local tun = io.open("/dev/net/tun")
    if not tun then pending("no /dev/net/tun here") return end
    tun:close()
    local nic, why = virtio.net{ tap = "vmlua-spec0" }
    if not nic and why:match("needs root") then pending(why) return end
    assert.is_not_nil(nic, why)
    assert(os.execute("ip addr add 10.213.0.1/24 dev vmlua-spec0 && ip link set vmlua-spec0 up"))
    local out = run("ip link set eth0 up && ip addr add 10.213.0.2/24 dev eth0 && " ..
      "ping -c 3 -W 10 10.213.0.1\n", { nic })
    assert.matches("3 packets transmitted, 3 packets received, 0%% packet loss", out)
    assert.is_true(nic.rx_frames >= 4)      -- an ARP reply and three echo replies
    nic:close()
    -- the tap goes with the device
    assert.is_nil(os.execute("ip link show vmlua-spec0 >/dev/null 2>&1"))
  end)

  it("gives a guest user-mode networking: it fetches from the host's loopback, the host from it", function()
    local busybox = "build/guest-cache/uml/root/bin/busybox"
    math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)"), 16))
    local hport, fport = math.random(20000, 29999), math.random(30000, 39999)
    local www = env.tmpname()
    os.remove(www)
    assert(os.execute(("mkdir -p %s && echo from-the-host-loopback > %s/hello.txt"):format(www, www)))
    -- a real TCP server on the host's loopback: busybox httpd, in the foreground of a subshell
    local pid = env.sh(("%s httpd -f -p 127.0.0.1:%d -h %s >/dev/null 2>&1 & echo $!"):format(busybox, hport, www)):match("%d+")
    local nic = assert(virtio.net{ user = { forwards = { ("tcp::%d-:80"):format(fport) } } })
    local vm, initrd = boot(("ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && " ..
      "ip route add default via 10.0.2.2 && wget -q -O - http://10.0.2.2:%d/hello.txt && " ..
      "mkdir /www && echo served-by-the-guest > /www/index.html && httpd -p 80 -h /www && " ..
      "echo guest-serving && sleep 8\n"):format(hport), { devices = { nic } })
    vm:start()
    -- the host fetches from the guest through the forward, once it serves
    local got = env.tmpname()
    os.execute(("(for i in $(seq 1 60); do %s wget -q -O %s http://127.0.0.1:%d/ 2>/dev/null && " ..
      "grep -q served %s && break; sleep 0.25; done) &"):format(busybox, got, fport, got))
    local reason = vm:wait(90)
    local out = vm:output()
    vm:close()
    os.execute("kill " .. pid)
    os.remove(initrd)
    os.execute("rm -rf " .. www)
    local f = io.open(got, "rb")
    local fetched = f and f:read("a") or ""
    if f then f:close() end
    os.remove(got)
    assert.equal("poweroff", reason, out)
    assert.matches("from%-the%-host%-loopback", out)
    assert.matches("guest%-serving", out)
    assert.equal("served-by-the-guest\n", fetched)
  end)

  it("lets two guests ping each other over vmlua.switch, with no root and no tap", function()
    local sw = vmlua.switch()
    local frames = 0
    local function nic_guest(n, other)
      local nic = virtio.net{ switch = sw, mac = ("52:54:00:00:00:%02x"):format(n),
        hook = function() frames = frames + 1 end }
      local vm, initrd = boot(("ip link set eth0 up && ip addr add 10.0.0.%d/24 dev eth0 && " ..
        "ping -c 3 -W 10 10.0.0.%d; sleep 1\n"):format(n, other), { devices = { nic } })
      return vm, initrd, nic
    end
    local a, ia, na = nic_guest(1, 2)
    local b, ib, nb = nic_guest(2, 1)
    a:start()
    b:start()
    -- one process, two machines: serve each in turn until both end
    local ra, rb
    local deadline = os.time() + 90
    while (not ra or not rb) and os.time() < deadline do
      ra = ra or a:wait(0.02)
      rb = rb or b:wait(0.02)
    end
    local oa, ob = a:output(), b:output()
    a:close()
    b:close()
    os.remove(ia)
    os.remove(ib)
    assert.equal("poweroff", ra, oa)
    assert.equal("poweroff", rb, ob)
    assert.matches("3 packets transmitted, 3 packets received, 0%% packet loss", oa)
    assert.matches("3 packets transmitted, 3 packets received, 0%% packet loss", ob)
    assert.is_true(na.tx_frames >= 7 and nb.tx_frames >= 7)   -- ARP and 6 ICMP each way
    assert.equal(na.tx_frames + na.rx_frames + nb.tx_frames + nb.rx_frames, frames)
    assert.equal(2, sw.ports)
  end)

  it("serves a machine's devices while the script waits only on another", function()
    -- b must be served to boot at all (UML waits for its vhost-user
    -- answers) and to answer a's pings; the script never waits on b.
    local sw = vmlua.switch()
    local function nic(n) return virtio.net{ switch = sw, mac = ("52:54:00:00:00:%02x"):format(n) } end
    local b, ib = boot("ip link set eth0 up && ip addr add 10.0.0.2/24 dev eth0 && sleep 600\n",
      { devices = { nic(2) } })
    local a, ia = boot("ip link set eth0 up && ip addr add 10.0.0.1/24 dev eth0 && " ..
      "ping -c 3 -W 20 10.0.0.2; sleep 1\n", { devices = { nic(1) } })
    b:start()
    a:start()
    local ra = a:wait(120)
    local oa = a:output()
    a:close()
    b:close()
    os.remove(ia)
    os.remove(ib)
    assert.equal("poweroff", ra, oa)
    assert.matches("3 packets transmitted, 3 packets received", oa)
  end)
end)

describe("scripts/boot.lua --backend uml #uml", function()
  if not readable(KERNEL) or not readable(INITRD) then
    pending("the default guest is not built: run make guest")
    return
  end
  it("runs a command in the default guest and exits 0", function()
    local out, status = env.sh(env.vmlua .. " scripts/boot.lua --backend uml --timeout 60 --run 'echo ran:$((6*7))' 2>&1 </dev/null")
    assert.equal(0, status, out)
    assert.matches("ran:42\r?\n", out)
  end)

  it("gives the guest --disk images: read-write, read-only and copy-on-write", function()
    local rw, master = env.tmpname(), env.tmpname()
    assert(os.execute(("truncate -s 8M %s %s && mke2fs -q -F %s"):format(rw, master, master)))
    local before = env.sh("sha256sum < " .. master)
    local out, status = env.sh((env.vmlua .. " scripts/boot.lua --backend uml --timeout 60 " ..
      "--disk %s --disk %s,ro --disk %s,cow --run '%s' 2>&1 </dev/null"):format(rw, master, master,
      "cat /sys/block/vda/ro /sys/block/vdb/ro /sys/block/vdc/ro; echo on-vda | dd of=/dev/vda conv=fsync 2>/dev/null; " ..
      "mkdir /m && mount /dev/vdc /m && echo on-vdc > /m/x && cat /m/x && umount /m"))
    assert.equal(0, status, out)
    assert.matches("0\r?\n1\r?\n0\r?\non%-vdc", out)
    assert.equal("on-vda\n", assert(io.open(rw, "rb")):read(7))
    assert.equal(before, env.sh("sha256sum < " .. master))
    os.remove(rw)
    os.remove(master)
  end)

  -- Runs cmd in a pseudo-terminal (script(1)) between two `stty -g`;
  -- returns the output and the terminal states printed, in order (the
  -- run may print its own in between).
  local function in_a_terminal(cmd)
    local out = env.sh("script -qec " .. env.quote("stty -g; " .. cmd .. "; echo rc=$?; stty -g") ..
      " /dev/null 2>&1 </dev/null")
    local states = {}
    for line in out:gmatch("[^\r\n]+") do
      if line:match("^%x+:%x+:%x+:%x+:") then states[#states + 1] = line end
    end
    return out, states
  end

  -- The terminal's states: before, while the guest ran (raw), after
  -- (as before).
  local function raw_then_restored(states, out)
    assert.equal(3, #states, out)
    assert.are_not.equal(states[1], states[2], out)
    assert.equal(states[1], states[3], out)
  end

  describe("exits cleanly", function()
    if os.execute("command -v script >/dev/null") ~= true then
      pending("script(1) from util-linux is needed for a pty")
      return
    end

    for _, sig in ipairs{ "INT", "TERM", "HUP" } do
      it("on SIG" .. sig .. ": the guest stopped, the tty restored, nothing left", function()
        local initrd = guest_running("echo guest-is-up; sleep 600\n")
        local log = env.tmpname()
        local w = env.watched()
        local _, states = in_a_terminal((w.env .. env.vmlua .. " scripts/boot.lua --backend uml --initrd %s " ..
          "</dev/tty >%s 2>&1 & pid=$!; for i in $(seq 300); do grep -q guest-is-up %s && break; " ..
          "sleep 0.2; done; stty -g; kill -%s $pid; wait $pid"):format(initrd, log, log, sig))
        local out = assert(io.open(log)):read("a")
        os.remove(log)
        w.check()
        os.remove(initrd)
        assert.matches("guest%-is%-up", out)
        assert.matches("boot.lua: interrupted: the guest was stopped", out)
        raw_then_restored(states, out)
      end)
    end

    it("on a Lua error in the script: the error, exit 1, the tty restored, nothing left", function()
      local initrd = guest_running("echo guest-is-up; sleep 600\n")
      local script = env.tmpname()
      local f = assert(io.open(script, "w"))
      f:write(([[
local vmlua = require "vmlua"
local vm = assert(vmlua.vm{ backend = "uml", kernel = %q, initrd = %q, memory = "128M", cmdline = "quiet",
  input = true })
vm:start()
vm.console:expect("guest%%-is%%-up\r?\n", 60)   -- the whole line, before stty prints
os.execute("stty -g")
error("the script's own mistake")
]]):format(KERNEL, initrd))
      f:close()
      local w = env.watched()
      local out, states = in_a_terminal(w.env .. env.vmlua .. " " .. script)
      os.remove(script)
      w.check()
      os.remove(initrd)
      assert.matches("the script's own mistake", out)
      assert.matches("rc=1\r?\n", out)
      raw_then_restored(states, out)
    end)

    it("on a guest panic: says so, exits 3, the tty restored, nothing left", function()
      local initrd = own_initrd("#!/bin/busybox sh\n/bin/busybox echo guest-is-up\nexit 7\n")
      local w = env.watched()
      local out, states = in_a_terminal(w.env .. env.vmlua .. " scripts/boot.lua --backend uml --initrd " ..
        initrd .. " --timeout 60 2>&1")
      w.check()
      os.remove(initrd)
      assert.matches("guest%-is%-up", out)
      assert.matches("guest panic: Kernel panic %- not syncing: Attempted to kill init", out)
      assert.matches("rc=3\r?\n", out)
      assert.equal(2, #states, out)
      assert.equal(states[1], states[2], out)          -- restored after the panic
    end)
  end)

  it("gives the guest --net user: it reaches the host's loopback at 10.0.2.2", function()
    local out, status = env.sh(env.vmlua .. " scripts/boot.lua --backend uml --timeout 60 --net user --run '" ..
      "ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ping -c 2 -W 5 10.0.2.2' 2>&1 </dev/null")
    assert.equal(0, status, out)
    assert.matches("2 packets transmitted, 2 packets received", out)
  end)

  it("takes the user's own --initrd", function()
    local path = own_initrd("#!/bin/busybox sh\n/bin/busybox echo my own init\n/bin/busybox poweroff -f\n")
    local out, status = env.sh(env.vmlua .. " scripts/boot.lua --backend uml --initrd " .. path .. " --timeout 60 2>&1 </dev/null")
    os.remove(path)
    assert.equal(0, status, out)
    assert.matches("my own init\r?\n", out)
  end)
end)
