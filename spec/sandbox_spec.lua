-- The sandbox: the seccomp filters of vCPU and device threads, and
-- boot.lua's --user/--chroot.
local vmlua = require "vmlua"
local core = require "vmlua.core"
local virtio = require "vmlua.virtio"
local env = require "helpers.env"
local guest = require "helpers.initrd"

local EPERM, ENOENT = 1, 2

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- This process's pid (a shell's /proc/self would be the shell's).
local MYPID = slurp("/proc/self/stat"):match("^(%d+)")

-- The threads of process pid: name -> { tid, seccomp mode, uid line }.
local function threads(pid)
  local out = {}
  local ls = io.popen("ls /proc/" .. pid .. "/task 2>/dev/null")
  for tid in ls:lines() do
    local status = slurp(("/proc/%s/task/%s/status"):format(pid, tid)) or ""
    local name = (slurp(("/proc/%s/task/%s/comm"):format(pid, tid)) or ""):gsub("\n$", "")
    out[name] = { tid = tid, seccomp = tonumber(status:match("\nSeccomp:%s*(%d+)")),
                  uid = status:match("\nUid:%s*([^\n]*)") }
  end
  ls:close()
  return out
end

describe("vmlua.sandbox", function()
  describe("the device thread filter (the one libslirp's thread loads)", function()
    it("blocks execve with EPERM, where an unfiltered thread reaches the kernel", function()
      assert.same({ nil, "Operation not permitted", EPERM },
        { core.sandbox_probe("io", "execve", "/nonexistent/vmlua-probe") })
      assert.same({ nil, "No such file or directory", ENOENT },
        { core.sandbox_probe("none", "execve", "/nonexistent/vmlua-probe") })
    end)

    it("blocks opening a file for writing: nothing is created", function()
      local path = env.tmpname()
      os.remove(path)
      assert.same({ nil, "Operation not permitted", EPERM }, { core.sandbox_probe("io", "open_write", path) })
      assert.is_nil(slurp(path))
      assert.is_true(core.sandbox_probe("none", "open_write", path))
      assert.equal("", slurp(path))
      os.remove(path)
    end)

    it("blocks sockets outside the internet families (a unix socket)", function()
      assert.same({ nil, "Operation not permitted", EPERM }, { core.sandbox_probe("io", "socket_unix") })
      assert.is_true(core.sandbox_probe("none", "socket_unix"))
    end)

    it("still allows what libslirp needs: an internet socket, a read-only open", function()
      assert.is_true(core.sandbox_probe("io", "socket_inet"))
      assert.is_true(core.sandbox_probe("io", "open_read", "spec/sandbox_spec.lua"))
    end)
  end)

  describe("the vCPU thread filter", function()
    it("blocks any open, any socket and execve", function()
      for _, call in ipairs{ "open_read", "open_write", "socket_inet", "socket_unix", "execve" } do
        local ok, msg, errno = core.sandbox_probe("vcpu", call, "/nonexistent/vmlua-probe")
        assert.is_nil(ok, call)
        assert.equal("Operation not permitted", msg, call)
        assert.equal(EPERM, errno, call)
      end
    end)
  end)

  describe("bad arguments", function()
    it("sandbox_probe names the kind, the call and the missing path", function()
      assert.has_error(function() core.sandbox_probe("gpu", "execve", "/x") end,
        "bad argument #1 to 'sandbox_probe' (invalid option 'gpu')")
      assert.has_error(function() core.sandbox_probe("io", "fork") end,
        "bad argument #2 to 'sandbox_probe' (invalid option 'fork')")
      assert.has_error(function() core.sandbox_probe("io", "execve") end,
        "bad argument #3 to 'sandbox_probe' ('execve' needs a path)")
    end)

    it("drop_privileges checks its options", function()
      assert.has_error(function() core.drop_privileges() end,
        "bad argument #1 to 'drop_privileges' (table expected, got no value)")
      assert.has_error(function() core.drop_privileges{} end,
        "bad argument #1 to 'drop_privileges' (option 'user' or 'chroot' is required)")
      assert.has_error(function() core.drop_privileges{ user = 65534 } end,
        "bad argument #1 to 'drop_privileges' (option 'user' must be a user name)")
      assert.has_error(function() core.drop_privileges{ user = "nobody", chroot = "" } end,
        "bad argument #1 to 'drop_privileges' (option 'chroot' must be a directory)")
      assert.has_error(function() core.drop_privileges{ user = "nobody", check = 1 } end,
        "bad argument #1 to 'drop_privileges' (option 'check' must be a boolean)")
      assert.has_error(function() core.drop_privileges{ uid = 0 } end,
        "bad argument #1 to 'drop_privileges' (unknown option 'uid' (user, chroot, check))")
    end)

    it("drop_privileges{ check = true } says what cannot be done, and does nothing", function()
      if not env.sh("id -u"):match("^0") then pending("needs root") return end
      assert.same({ nil, "user 'nosuchuser-vmlua': no such user" },
        { core.drop_privileges{ user = "nosuchuser-vmlua", check = true } })
      assert.same({ nil, "chroot '/nonexistent/vmlua': No such file or directory" },
        { core.drop_privileges{ user = "nobody", chroot = "/nonexistent/vmlua", check = true } })
      assert.same({ nil, "user 'root': is root, which drops nothing" },
        { core.drop_privileges{ user = "root", check = true } })
      assert.is_true(core.drop_privileges{ user = "nobody", chroot = "/", check = true })
      assert.matches("^0\n", env.sh("id -u"))
    end)

    it("the sandbox options are booleans", function()
      assert.has_error(function() virtio.net{ user = true, sandbox = "off" } end,
        "bad argument #1 to 'net' (option 'sandbox' must be a boolean)")
      assert.has_error(function() vmlua.vm{ backend = "uml", sandbox = 0 } end,
        "bad argument #1 to 'vm' (option 'sandbox' must be a boolean, got number)")
    end)
  end)

  describe("the real threads #kvm", function()
    local ok, why = env.kvm_selftest()
    if not ok then pending(why) return end

    local function selftest(sandbox)
      local vm = assert(vmlua.vm{ backend = "kvm", kernel = env.selftest, memory = "256M", cpus = 2,
        cmdline = ("selftest.cpus=2 selftest.mem=%d"):format(256 * 1024 * 1024), console = "none",
        sandbox = sandbox })
      vm:start()
      -- Paused, each vCPU thread is past its filter and parked.
      vm:pause()
      local t = threads(MYPID)
      vm:resume()
      local reason = vm:wait(120)
      local out = vm:output()
      vm:close()
      assert.equal("poweroff", reason, out)
      assert.matches("selftest: PASS\n", out)
      return t
    end

    it("each vCPU thread of the selftest guest is named and filtered, and the guest passes", function()
      local t = selftest(nil)
      assert.equal(2, t.vcpu0 and t.vcpu0.seccomp)
      assert.equal(2, t.vcpu1 and t.vcpu1.seccomp)
      -- the thread that runs Lua has none
      for _, th in pairs(t) do
        if th.tid == MYPID then assert.equal(0, th.seccomp) end
      end
    end)

    it("sandbox = false leaves them unfiltered", function()
      local t = selftest(false)
      assert.equal(0, t.vcpu0 and t.vcpu0.seccomp)
      assert.equal(0, t.vcpu1 and t.vcpu1.seccomp)
    end)
  end)

  describe("libslirp's thread #uml", function()
    if not env.readable(guest.KERNEL) or not env.readable(guest.INITRD) then
      pending("the default guest is not built: run make guest")
      return
    end

    local function slirp_thread()
      for name, t in pairs(threads(MYPID)) do
        if name == "slirp" then return t end
      end
    end

    it("is named and filtered before net{} returns, and a guest's TCP still goes through it", function()
      local busybox = "build/guest-cache/uml/root/bin/busybox"
      local port = 40000 + os.time() % 5000
      local www = env.tmpname()
      os.remove(www)
      assert(os.execute(("mkdir -p %s && echo through-the-filter > %s/f.txt"):format(www, www)))
      local pid = env.sh(("%s httpd -f -p 127.0.0.1:%d -h %s >/dev/null 2>&1 & echo $!")
        :format(busybox, port, www)):match("%d+")
      local nic = assert(virtio.net{ user = true })
      local t = slirp_thread()
      assert.is_table(t)
      assert.equal(2, t.seccomp)
      local initrd = guest.with_run(("ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && " ..
        "ip route add default via 10.0.2.2 && wget -q -O - http://10.0.2.2:%d/f.txt\n"):format(port))
      local vm = assert(vmlua.vm{ backend = "uml", kernel = guest.KERNEL, initrd = initrd,
        memory = "128M", cmdline = "quiet", console = "none", devices = { nic } })
      vm:start()
      local reason = vm:wait(90)
      local out = vm:output()
      vm:close()
      nic:close()
      os.execute("kill " .. pid)
      os.execute("rm -rf " .. www)
      os.remove(initrd)
      assert.equal("poweroff", reason, out)
      assert.matches("through%-the%-filter", out)
    end)

    it("runs unfiltered with sandbox = false", function()
      local nic = assert(virtio.net{ user = true, sandbox = false })
      local t = slirp_thread()
      assert.is_table(t)
      assert.equal(0, t.seccomp)
      nic:close()
    end)
  end)

  describe("boot.lua --user and --chroot #uml", function()
    local root = env.sh("id -u"):match("^0\n")
    local nobody = env.sh("id -u nobody 2>/dev/null"):match("^(%d+)")
    if not root or not nobody then pending("needs root and a user nobody") return end
    if not env.readable(guest.KERNEL) or not env.readable(guest.INITRD) then
      pending("the default guest is not built: run make guest")
      return
    end

    it("drops to nobody in a chroot while the guest runs, and the guest finishes its command", function()
      local dir = env.tmpdir()
      local log = env.tmpname()
      local pid = env.sh((env.vmlua .. " scripts/boot.lua --backend uml --timeout 60 --user nobody " ..
        "--chroot %s --net user --run 'echo sandbox-start; sleep 4; echo sandbox-done' >%s 2>&1 </dev/null & echo $!")
        :format(dir, log)):match("%d+")
      -- From outside: the uid, the root directory, the threads.
      local status, seen
      for _ = 1, 200 do
        status = slurp("/proc/" .. pid .. "/status") or ""
        if status:match("\nUid:%s*" .. nobody .. "%s") then seen = true; break end
        os.execute("sleep 0.1")
      end
      local rootdir = env.sh("readlink /proc/" .. pid .. "/root")
      local t = threads(pid)
      local early = slurp(log)
      -- Then the guest goes on to the end.
      for _ = 1, 600 do
        if not slurp("/proc/" .. pid .. "/status") then break end
        os.execute("sleep 0.1")
      end
      local out = slurp(log)
      os.remove(log)
      os.execute("rmdir " .. dir)
      assert.is_true(seen, "vmlua never became nobody:\n" .. status .. "\n" .. out)
      assert.matches(("\nUid:%%s*%s%%s+%s%%s+%s%%s+%s\n"):format(nobody, nobody, nobody, nobody), status)
      assert.matches("\nNoNewPrivs:%s*1\n", status)
      assert.equal(dir .. "\n", rootdir)
      assert.equal(2, t.slirp and t.slirp.seccomp)
      assert.matches("^" .. nobody .. "%s", t.slirp.uid)
      assert.not_matches("sandbox%-done", early)
      assert.equal("sandbox-start\nsandbox-done\n", out)    -- the command's output, and its status 0
    end)

    it("refuses bad arguments with a message naming them", function()
      local function boot(args)
        return env.sh(env.vmlua .. " scripts/boot.lua --backend uml --run true " .. args .. " 2>&1")
      end
      local out, code = boot("--user nosuchuser-vmlua")
      assert.equal("boot.lua: --user 'nosuchuser-vmlua': no such user\n", out)
      assert.equal(125, code)     -- with --run: vmlua could not run it
      out, code = boot("--user nobody --chroot /nonexistent/vmlua")
      assert.equal("boot.lua: --chroot '/nonexistent/vmlua': No such file or directory\n", out)
      assert.equal(125, code)     -- with --run: vmlua could not run it
      out, code = boot("--user nobody --chroot scripts/boot.lua")
      assert.equal("boot.lua: --chroot 'scripts/boot.lua': not a directory\n", out)
      assert.equal(125, code)     -- with --run: vmlua could not run it
      out, code = boot("--chroot /tmp")
      assert.equal("boot.lua: --chroot needs --user: root can leave a chroot\n", out)
      assert.equal(125, code)     -- with --run: vmlua could not run it
      out, code = env.sh("setpriv --reuid=" .. nobody .. " --regid=" .. nobody .. " --clear-groups " ..
        env.vmlua .. " scripts/boot.lua --backend uml --run true --user nobody 2>&1")
      assert.equal("boot.lua: --user needs root (running as uid " .. nobody .. ")\n", out)
      assert.equal(125, code)
    end)
  end)
end)
