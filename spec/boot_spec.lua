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
    for _, opt in ipairs{ "--backend", "--kernel", "--initrd", "--run", "--disk", "--net", "--cmdline",
                          "--mem", "--cpus", "--timeout", "--log", "--quiet", "--stats", "--user",
                          "--chroot", "--no-seccomp", "--show-boot", "--share", "--hostroot", "--root" } do
      assert.matches("\n  " .. opt:gsub("%-", "%%-") .. " ", out)
    end
    -- both tables of exit statuses, and the escape key
    assert.matches("Exit status with %-%-run:\n  N    the command's own exit status\n  123 ", out)
    assert.matches("Exit status without %-%-run:\n  0 the guest powered off, 1 bad options", out)
    assert.matches("Ctrl%-A x stops the guest and quits; Ctrl%-A Ctrl%-A sends one Ctrl%-A", out)
  end)

  it("exits 125 for bad options with --run, naming the option", function()
    local out, status = boot("--run true --bogus")
    assert.equal(125, status)
    assert.equal("boot.lua: unknown option '--bogus' (see --help)\n", out)
    out, status = boot("--run true --mem lots")
    assert.equal(125, status)
    assert.equal("boot.lua: --mem must be a number of at least 1, got 'lots'\n", out)
  end)

  it("says in one line that an --initrd directory is not a file", function()
    local dir = env.tmpdir()
    local out, status = boot("--backend uml --initrd " .. dir .. " --run true")
    assert.equal(125, status)
    assert.equal("boot.lua: --initrd " .. dir .. ": not a file\n", out)
    out, status = boot("--backend uml --initrd " .. dir)
    os.remove(dir)
    assert.equal(1, status)
    assert.equal("boot.lua: " .. dir .. ": not a file\n", out)
  end)

  it("on SIGTERM while it copies the --initrd for --run: one line, status 130, no scratch file left", function()
    -- The initrd is a FIFO, so that the copy is under way, and stays so,
    -- when the signal comes: 3 MiB are in the scratch file by then.
    -- The kernel is named, for a vmlua (build-san/) with no guest beside
    -- it; the FIFO is opened read-write, so that nothing blocks should
    -- vmlua end before it reads.
    local w = env.watched()
    local fifo, out = env.tmpname(), env.tmpname()
    os.remove(fifo)
    assert(os.execute("mkfifo " .. fifo))
    local kernel = require("vmlua.paths").absolute((require("vmlua").guest("uml") or {}).kernel or
      "build/guest/uml/linux.uml")
    local sh = ("%s%s --backend uml --kernel %s --initrd %s --run true >%s 2>&1 & pid=$!; exec 7<>%s; " ..
      "timeout 60 head -c 3145728 /dev/zero >&7; for i in $(seq 300); do " ..
      "[ $(cat %s/vmlua-initrd-* 2>/dev/null | wc -c) -ge 3145728 ] && break; sleep 0.1; done; " ..
      "ls %s; kill -TERM $pid; wait $pid; echo \"rc=$?\"; exec 7>&-")
      :format(w.env, BOOT, kernel, fifo, out, fifo, w.dir, w.dir)
    local shown = env.sh(sh)
    local text = assert(io.open(out)):read("a")
    os.remove(out)
    os.remove(fifo)
    w.check()
    assert.matches("vmlua%-initrd%-", shown, nil, "the copy was under way")
    assert.matches("rc=130\n", shown)
    assert.equal("boot.lua: interrupted: nothing was started\n", text)
  end)

  describe("rejects bad options with one line and no traceback", function()
    local cases = {
      { "--bogus", "boot.lua: unknown option '--bogus' (see --help)\n" },
      { "--backend kvm", "boot.lua: --kernel PATH is required (see --help)\n" },
      { "--kernel", "boot.lua: option '--kernel' requires an argument (see --help)\n" },
      { "--quiet --show-boot", "boot.lua: option '--show-boot' can not be used together with option '--quiet' (see --help)\n" },
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

-- --run on the default uml guest: vmlua as a stand-in for the command.
describe("scripts/boot.lua --run #uml", function()
  local guest, why = require("vmlua").guest("uml")
  if not guest then pending("needs the default uml guest: " .. why) return end

  -- Runs boot.lua; returns stdout, stderr and the exit status apart.
  local function run(args)
    local errf = env.tmpname()
    local out, status = env.sh(BOOT .. " --backend uml --timeout 300 " .. args .. " 2>" .. errf .. " </dev/null")
    local err = assert(io.open(errf, "rb")):read("a")
    os.remove(errf)
    return out, err, status
  end

  it("exits 0 and stdout is exactly what the command wrote, nothing on stderr", function()
    local out, err, status = run("--run 'echo hi'")
    assert.equal(0, status, err)
    assert.equal("hi\n", out)
    assert.equal("", err)
  end)

  it("exits with the command's own status: 1 for false, 42 for exit 42", function()
    local _, err, status = run("--run false")
    assert.equal(1, status, err)
    assert.equal("", err)
    _, err, status = run("--run 'exit 42'")
    assert.equal(42, status, err)
  end)

  it("puts the command's stderr on stderr, its stdout on stdout, even with --quiet", function()
    local out, err, status = run("--quiet --run 'echo err >&2; printf out'")
    assert.equal(0, status, err)
    assert.equal("out", out)
    assert.equal("err\n", err)
  end)

  it("passes a few hundred KB of binary output byte-exact, to the last byte", function()
    local out, err, status = run("--run 'head -c 300001 /dev/urandom > /tmp/r; sha256sum </tmp/r >&2; cat /tmp/r'")
    assert.equal(0, status, err)
    assert.equal(300001, #out)
    local theirs = err:match("^(%x+)  %-\n$")
    assert.is_truthy(theirs, err)
    local file = env.tmpname()
    assert(io.open(file, "wb")):write(out):close()
    local ours = env.sh("sha256sum < " .. file)
    os.remove(file)
    assert.equal(theirs .. "  -\n", ours)
  end)

  it("exits 123 with a reason when the guest panics before the command ends", function()
    local out, err, status = run("--run 'echo c > /proc/sysrq-trigger; echo after'")
    assert.equal(123, status, err)
    assert.equal("", out)
    assert.equal("boot.lua: the guest panicked before the command finished: " ..
      "Kernel panic - not syncing: sysrq triggered crash\n", err)
  end)

  it("exits 123 when the guest powers off before the command ends", function()
    local _, err, status = run("--run 'poweroff -f; sleep 600'")
    assert.equal(123, status, err)
    assert.matches("^boot.lua: the guest powered off before the command finished: ", err)
  end)

  it("exits 124 on --timeout", function()
    local out, err, status = run("--timeout 3 --run 'sleep 600'")
    assert.equal(124, status, err)
    assert.equal("", out)
    assert.equal("boot.lua: timeout after 3 s: the command did not finish\n", err)
  end)

  it("hides the boot by default and shows it on stderr with --show-boot, and in --log", function()
    local log = env.tmpname()
    local out, err, status = run("--show-boot --log " .. log .. " --run 'echo hi'")
    local logged = assert(io.open(log, "rb")):read("a")
    os.remove(log)
    assert.equal(0, status, err)
    assert.equal("hi\n", out)
    assert.matches("vmlua: running /etc/vmlua/run, stdout on hvc0, stderr on hvc1\r?\n", err)
    assert.matches("vmlua: exit status 0\r?\n", err)
    assert.matches("reboot: System halted", err)
    assert.matches("vmlua: exit status 0\r?\n", logged)
  end)
end)

-- Interactive boot in a real terminal (tmux): keys go to the guest.
describe("scripts/boot.lua at a terminal #uml", function()
  local guest, why = require("vmlua").guest("uml")
  if not guest then pending("needs the default uml guest: " .. why) return end
  if not env.sh("command -v tmux"):find("tmux") then
    pending("tmux is missing: apt-get install tmux")
    return
  end
  local session

  local function tmux(fmt, ...)
    assert(os.execute(("tmux " .. fmt):format(...)))
  end
  local function screen()
    return (env.sh(("tmux capture-pane -p -J -S -200 -t %s"):format(session)))
  end
  local function wait_for(pattern, secs)
    local deadline = os.time() + (secs or 60)
    repeat
      local s = screen()
      if s:find(pattern) then return s end
      os.execute("sleep 0.2")
    until os.time() > deadline
    error("timed out waiting for " .. pattern .. " on the screen:\n" .. screen())
  end

  before_each(function()
    math.randomseed(os.time() + math.floor(os.clock() * 1e6))
    session = ("vmlua-boot-%d"):format(math.random(1, 1e9))
    tmux("new-session -d -s %s -x 160 -y 40 '%s %s --backend uml; echo EXITED-$?; sleep 600'",
      session, env.sanitizer_vars(), BOOT)
    wait_for("guest ready.-\n/ # ", 120)
  end)
  after_each(function()
    os.execute("tmux kill-session -t " .. session .. " 2>/dev/null")
  end)

  it("sends Ctrl-C to the guest, whose shell interrupts its command", function()
    tmux("send-keys -t %s -l 'sleep 100'", session)
    tmux("send-keys -t %s Enter", session)
    wait_for("# sleep 100\n")
    os.execute("sleep 1")
    tmux("send-keys -t %s C-c", session)
    wait_for("%^C\n/ # ", 20)
    tmux("send-keys -t %s -l 'echo status=$?'", session)
    tmux("send-keys -t %s Enter", session)
    local s = wait_for("status=%d+")
    assert.matches("status=130", s)
    assert.not_matches("EXITED", s)
  end)

  it("quits on Ctrl-A x with status 130, and sends Ctrl-A Ctrl-A as one Ctrl-A", function()
    -- Ctrl-A is the shell's start of line: "two" goes before "echo one".
    tmux("send-keys -t %s -l 'echo one'", session)
    tmux("send-keys -t %s C-a", session)
    tmux("send-keys -t %s C-a", session)
    tmux("send-keys -t %s -l 'echo two; '", session)
    tmux("send-keys -t %s Enter", session)
    wait_for("\ntwo\none\n")
    tmux("send-keys -t %s C-a", session)
    tmux("send-keys -t %s -l x", session)
    local s = wait_for("EXITED%-%d+", 30)
    assert.matches("boot.lua: quit %(Ctrl%-A x%): the guest was stopped\nEXITED%-130", s)
  end)
end)
