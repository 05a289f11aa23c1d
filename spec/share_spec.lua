-- vmlua.share: host directories in the guest (hostfs on uml), boot.lua's
-- --share, --hostroot and --root, and disks by label.
local env = require "helpers.env"
local share = require "vmlua.share"
local virtio = require "vmlua.virtio"
local stat = require "posix.sys.stat"

local BOOT = env.vmlua .. " scripts/boot.lua"

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- boot.lua with args; its stdout, stderr and exit status.
local function boot(args)
  local errf = env.tmpname()
  local out, status = env.sh(BOOT .. " " .. args .. " 2>" .. errf .. " </dev/null")
  local err = read(errf)
  os.remove(errf)
  return out, err, status
end

describe("vmlua.share", function()
  local dir, file
  setup(function()
    dir = env.tmpdir()
    file = dir .. "/file"
    write(file, "x")
  end)
  teardown(function()
    env.sh("rm -rf " .. q(dir))
  end)

  it("checks its options", function()
    assert.has_error(function() share.new() end, "bad argument #1 to 'share' (table expected, got nil)")
    assert.has_error(function() share.new{} end,
      "bad argument #1 to 'share' (option 'path' (the host directory) is required)")
    assert.has_error(function() share.new{ path = dir, size = 1 } end,
      "bad argument #1 to 'share' (unknown option 'size' (path, mount, tag, readonly, via, unconfined, cow))")
    assert.has_error(function() share.new{ path = dir, readonly = "yes" } end,
      "bad argument #1 to 'share' (option 'readonly' must be a boolean, got string)")
    assert.has_error(function() share.new{ path = dir, via = "9p" } end,
      "bad argument #1 to 'share' (option 'via' must be 'hostfs' or 'virtiofs', got '9p')")
    assert.has_error(function() share.new{ path = dir, tag = "a b" } end,
      "bad argument #1 to 'share' (option 'tag' must be 1 to 36 letters, digits, '.', '_' or '-', got 'a b')")
    assert.has_error(function() share.new{ path = dir, mount = "data" } end,
      "bad argument #1 to 'share' (option 'mount' must be an absolute path in the guest, got 'data')")
    assert.has_error(function() share.new{ path = dir .. "\n" } end,
      "bad argument #1 to 'share' (option 'path' must be a non-empty path without NUL or newline)")
    assert.has_error(function() share.new{ path = dir, mount = "/", cow = false } end,
      "bad argument #1 to 'share' (the root share (mount = '/') is copy-on-write: leave 'cow' true " ..
      "or name a diff directory)")
  end)

  it("says why a path cannot be shared", function()
    assert.same({ nil, "directory '/nonexistent' does not exist" },
      { share.new{ path = "/nonexistent" } })
    assert.same({ nil, "directory '" .. file .. "' is not a directory" }, { share.new{ path = file } })
  end)

  it("defaults: mounted where it is on the host, tagged by its name", function()
    local s = assert(share.new{ path = dir, readonly = true })
    assert.equal(dir, s.mount)
    assert.equal(dir:match("[^/]+$"), s.tag)
    local r = assert(share.new{ path = dir, mount = "/" })
    assert.equal("root", r.tag)
    assert.is_true(r.cow)
    assert.is_true(r.readonly)
  end)

  it("picks hostfs on uml, says so, and refuses what it cannot do", function()
    local s = assert(share.new{ path = dir, mount = "/data", tag = "d", readonly = true })
    assert.equal("vmlua: share 'd': " .. dir .. " on /data through hostfs (the best the uml backend " ..
                 "has), read-only", s:resolve("uml"))
    assert.equal("hostfs", s.resolved)
    assert.same({ nil, "share 'd': the kvm backend cannot share host directories yet" }, { s:resolve("kvm") })
    local v = assert(share.new{ path = dir, tag = "v", readonly = true, via = "virtiofs" })
    assert.same({ nil, "share 'v': via 'virtiofs' is not yet supported on the uml backend (it has: hostfs)" },
      { v:resolve("uml") })
    local w = assert(share.new{ path = dir, tag = "w" })
    assert.matches("through hostfs .*, writable$", w:resolve("uml"))
    local u = assert(share.new{ path = dir, tag = "u", unconfined = true })
    assert.matches("through hostfs .*, writable, unconfined$", u:resolve("uml"))
  end)

  it("refuses two tags alike and two shares on one place; numbers default tags", function()
    local a = assert(share.new{ path = dir, tag = "t", mount = "/a", readonly = true })
    local b = assert(share.new{ path = dir, tag = "t", mount = "/b", readonly = true })
    assert.same({ nil, "two shares have the tag 't'" }, { share.check_list{ a, b } })
    local c = assert(share.new{ path = dir, mount = "/a", readonly = true })
    assert.matches("^shares '.*' and '.*' are both mounted on /a$", select(2, share.check_list{ a, c }))
    local d1 = assert(share.new{ path = dir, mount = "/d1", readonly = true })
    local d2 = assert(share.new{ path = dir, mount = "/d2", readonly = true })
    assert.is_true(share.check_list{ d1, d2 })
    assert.equal(d1.tag .. "-2", d2.tag)
  end)

  it("cannot go into a kvm machine yet", function()
    local s = assert(share.new{ path = dir, readonly = true, tag = "k" })
    local vm, why = require("vmlua").vm{ backend = "kvm", kernel = file, devices = { s } }
    if vm then vm:close() end
    assert.is_nil(vm)
    assert.equal("share 'k': the kvm backend cannot share host directories yet", why)
  end)
end)

describe("vmlua.virtio.blk{ label }", function()
  it("refuses bad labels", function()
    for _, bad in ipairs{ "", "-x", ".x", "a/b", "a b", ("l"):rep(19) } do
      assert.has_error(function() virtio.blk{ path = "/dev/null", label = bad } end,
        "bad argument #1 to 'blk' (option 'label' must be 1 to 18 letters, digits, '.', '_' or '-', " ..
        "not starting with '.' or '-')")
    end
    assert.has_error(function() virtio.blk{ path = "/dev/null", label = "a", serial = "b" } end,
      "bad argument #1 to 'blk' (options 'label' and 'serial' exclude each other)")
  end)
end)

-- Bad input: one line naming the option, status 1 (125 with --run), and
-- nothing booted.
describe("scripts/boot.lua --share bad input", function()
  local dir
  setup(function()
    dir = env.tmpdir()
    assert(stat.chmod(dir, 493))
    write(dir .. "/file", "x")
    assert(stat.mkdir(dir .. "/a,b:c", 448))
  end)
  teardown(function() env.sh("rm -rf " .. q(dir)) end)

  it("names the option and the reason", function()
    local cases = {
      { "--share /nonexistent,ro", "--share /nonexistent,ro: directory '/nonexistent' does not exist" },
      { "--share " .. dir .. "/file,ro", "--share " .. dir .. "/file,ro: directory '" .. dir ..
        "/file' is not a directory" },
      { "--share " .. q(dir .. "/a,b:c"), "--share " .. dir .. "/a,b:c: a ':' among the options (write '\\,' " ..
        "and '\\:' for ',' and ':' in a path)" },
      { "--share " .. q(dir .. "/a,b"), "--share " .. dir .. "/a,b: unknown option 'b' (ro, rw, hostfs, " ..
        "virtiofs, unsafe, tag=NAME)" },
      { "--share " .. q(dir .. "/a\\,b:c:/x"), "--share " .. dir .. "/a\\,b:c:/x: a second ':' (write " ..
        "'\\:' for a ':' in a path)" },
      { "--share " .. dir .. ":/x,ro,tag=t --share " .. dir .. ":/y,ro,tag=t", "--share: two shares have " ..
        "the tag 't'" },
      { "--share " .. dir .. ",virtiofs,ro", "--share " .. dir .. ",virtiofs,ro: via 'virtiofs' is not yet " ..
        "supported on the uml backend (it has: hostfs)" },
      { "--share " .. dir .. ",ro,tag=a.b/c", "--share " .. dir .. ",ro,tag=a.b/c: option 'tag' must be 1 " ..
        "to 36 letters, digits, '.', '_' or '-', got 'a.b/c'" },
      { "--root " .. dir .. "/file", "--root " .. dir .. "/file: directory '" .. dir ..
        "/file' is not a directory" },
      { "--hostroot --root /", "option '--root' can not be used together with option '--hostroot' (see --help)" },
      { "--disk /dev/null,label=no/slash", "--disk /dev/null,label=no/slash: bad label 'no/slash' (1 to 18 " ..
        "letters, digits, '.', '_' or '-', not starting with '.' or '-')" },
    }
    for _, c in ipairs(cases) do
      local out, err, status = boot("--backend uml " .. c[1] .. " --run true")
      assert.equal("", out)
      assert.equal("boot.lua: " .. c[2] .. "\n", err)
      assert.equal(125, status)
    end
  end)

  it("says a directory vmlua's user cannot read is not readable", function()
    if env.sh("id -u") ~= "0\n" then pending("needs root, to run boot.lua as nobody") return end
    if not env.sh("command -v setpriv") :find("setpriv") then pending("setpriv missing (util-linux)") return end
    -- Somewhere nobody can reach (TMPDIR may be root's own, 0700): the
    -- build directory.
    local top = assert(require("posix.stdlib").mkdtemp(env.build .. "/share-spec-XXXXXX"))
    assert(stat.chmod(top, 493))
    assert(stat.mkdir(top .. "/a,b:c", 448))
    local out = env.sh("TMPDIR=/tmp setpriv --reuid=nobody --regid=nogroup --clear-groups " .. BOOT ..
      " --backend uml --share " .. top .. "/a\\\\,b\\\\:c,ro --run true 2>&1")
    env.sh("rm -rf " .. q(top))
    assert.equal("boot.lua: --share " .. top .. "/a\\,b\\:c,ro: directory '" .. top .. "/a,b:c' is not " ..
      "readable by vmlua's user\n", out)
  end)
end)

-- Booting the default uml guest with shares.
describe("shares in the default uml guest #uml", function()
  local guest, why = require("vmlua").guest("uml")
  if not guest then pending("needs the default uml guest: " .. why) return end
  local dir
  before_each(function() dir = env.tmpdir() end)
  after_each(function() env.sh("chmod -R u+w " .. q(dir) .. "; rm -rf " .. q(dir)) end)
  -- The jail cannot be built inside a chroot; those specs say so there.
  local no_jail = require("vmlua.share").jail_unavailable()
  local function jailed_it(name, fn, ...)
    if no_jail then
      it(name, function() pending(no_jail) end)
    else
      it(name, fn, ...)
    end
  end

  local function run(args, cmd)
    return boot("--backend uml --timeout 300 " .. args .. " --run " .. q(cmd))
  end

  jailed_it("mounts each share where asked, read-only or writable, and says it chose hostfs", function()
    assert(stat.mkdir(dir .. "/ro"))
    assert(stat.mkdir(dir .. "/a,b:c"))
    write(dir .. "/ro/f", "from the host\n")
    local log = dir .. "/log"
    local out, err, status = run("--log " .. log .. " --share " .. dir .. "/ro:/data,ro --share " ..
      q(dir .. "/a\\,b\\:c:/rw,tag=rw"),
      "cat /data/f; (echo new > /data/g) 2>/dev/null || echo refused; echo written > /rw/h; " ..
      "mount | grep -c hostfs")
    assert.equal("", err)
    assert.equal(0, status)
    assert.equal("from the host\nrefused\n2\n", out)
    assert.equal("written\n", read(dir .. "/a,b:c/h"))
    assert.is_nil(read(dir .. "/ro/g"))
    local text = read(log)
    assert.matches("vmlua: share 'ro': " .. dir:gsub("%p", "%%%0") .. "/ro on /data through hostfs %(the " ..
      "best the uml backend has%), read%-only", text)
    assert.matches("vmlua: share 'rw': [^\n]* on /rw through hostfs %(the best the uml backend has%), " ..
      "writable\r?\n", text)
  end)

  -- What linux.uml's hostfs= confines, tried from inside the guest (see
  -- docs/shares.md): a share directory, a secret next to it, and
  -- symlinks out of it.
  it("hostfs=DIR confines absolute mount paths but not '..', nor a swapped directory", function()
    local sh, outside = dir .. "/share", dir .. "/outside"
    assert(stat.mkdir(sh)); assert(stat.mkdir(sh .. "/d")); assert(stat.mkdir(outside))
    write(outside .. "/secret", "SECRET\n")
    write(sh .. "/d/f", "inside\n")
    assert(require("posix.unistd").link(outside .. "/secret", sh .. "/abs", true))
    assert(require("posix.unistd").link("../outside/secret", sh .. "/rel", true))
    local out, err, status = boot("--backend uml --timeout 300 --cmdline " ..
      q("quiet loglevel=1 hostfs=" .. sh) .. " --run " .. q([[
mkdir -p /m /n
try() { "$@" 2>/dev/null || echo no; }
mount -t hostfs -o /d none /m && echo "absolute: $(try cat /m/f)"; umount /m
mount -t hostfs -o ]] .. outside .. [[ none /m 2>/dev/null || echo "absolute outside: no"
mount -t hostfs -o ../outside none /m && echo "dotdot: $(try cat /m/secret)"; umount /m
mount -t hostfs none /m
echo "absolute symlink: $(try cat /m/abs)"
echo "relative symlink: $(try cat /m/rel)"
mount -t hostfs none /n
cd /m/d && rm -r /n/d && ln -s ]] .. outside .. [[ /n/d && echo "swapped directory: $(try cat secret)"
]]))
    assert.equal("", err)
    assert.equal(0, status)
    assert.equal("absolute: inside\nabsolute outside: no\ndotdot: SECRET\nabsolute symlink: no\n" ..
                 "relative symlink: no\nswapped directory: SECRET\n", out)
  end)

  -- The same tries with a share: linux.uml runs in its jail (core/jail.c),
  -- where nothing but the share, read-only system files and its own run
  -- directory exist.  With ,unsafe it runs without, and '..' escapes again.
  local function tries(sh, outside, jailed)
    return [[
mkdir -p /m /n
try() { "$@" 2>/dev/null || echo no; }
mount -t hostfs -o ]] .. outside .. [[ none /m 2>/dev/null && echo "outside: $(try cat /m/secret)" && umount /m
mount -t hostfs -o ]] .. sh .. [[/../outside none /m 2>/dev/null && echo "dotdot: $(try cat /m/secret)" && umount /m
mount -t hostfs -o ]] .. sh .. [[ none /m; mount -t hostfs -o ]] .. sh .. [[ none /n
cd /m/d && rm -r /n/d && ln -s ]] .. outside .. [[ /n/d && echo "swapped directory: $(try cat secret)"
cd /; umount /m
mount -t hostfs -o / none /m && echo "host root: $(try cat /m/etc/passwd | head -c 4)"
]] .. (jailed and "touch /m/usr/vmlua-jail-probe 2>/dev/null || echo 'system files: read-only'\n" or "") ..
      "echo done\n"
  end
  local function jail_dirs()
    local sh, outside = dir .. "/share", dir .. "/outside"
    assert(stat.mkdir(sh)); assert(stat.mkdir(sh .. "/d")); assert(stat.mkdir(outside))
    write(outside .. "/secret", "SECRET\n")
    return sh, outside
  end

  jailed_it("a writable share is confined: linux.uml runs in a jail of its shares", function()
    local sh, outside = jail_dirs()
    local out, err, status = run("--share " .. sh .. ":/s", tries(sh, outside, true))
    assert.equal("", err)
    assert.equal(0, status)
    assert.equal("swapped directory: no\nhost root: no\nsystem files: read-only\ndone\n", out)
    assert.is_nil(stat.stat("/usr/vmlua-jail-probe"))
  end)

  it("a share with ,unsafe runs linux.uml without the jail, and '..' leads out", function()
    local sh, outside = jail_dirs()
    local out, err, status = run("--share " .. sh .. ":/s,unsafe", tries(sh, outside))
    assert.equal("", err)
    assert.equal(0, status)
    assert.equal("outside: SECRET\ndotdot: SECRET\nswapped directory: SECRET\nhost root: root\ndone\n", out)
  end)

  jailed_it("--hostroot runs the host's python as the host does, in the current directory, writes kept apart",
     function()
    local cmd = [[python3 -c "import sys; print(sys.version)"]]
    local host = env.sh(cmd)
    local out, err, status = run("--hostroot", cmd .. "; pwd; id -u; touch /usr/vmlua-hostroot-probe " ..
      "&& ls /usr/vmlua-hostroot-probe; ls -A /tmp | wc -l; grep -c ' /proc proc' /proc/mounts")
    assert.equal("", err)
    assert.equal(0, status)
    assert.equal(host .. require("posix.unistd").getcwd() .. "\n0\n/usr/vmlua-hostroot-probe\n0\n1\n", out)
    assert.is_nil(stat.stat("/usr/vmlua-hostroot-probe"))
  end)

  -- The default guest's busybox, read out of its initramfs (cpio newc:
  -- a 110-byte header, the name, the data, each padded to 4 bytes).
  local function busybox_of(initrd)
    local data = assert(read(initrd))
    local pos = 1
    while pos + 110 <= #data and data:sub(pos, pos + 5) == "070701" do
      local size = tonumber(data:sub(pos + 54, pos + 61), 16)
      local namesize = tonumber(data:sub(pos + 94, pos + 101), 16)
      local name = data:sub(pos + 110, pos + 110 + namesize - 2)
      local start = pos + 110 + namesize
      start = start + (4 - (start - 1) % 4) % 4
      if name == "bin/busybox" then return data:sub(start, start + size - 1) end
      pos = start + size
      pos = pos + (4 - (pos - 1) % 4) % 4
    end
    error("no bin/busybox in " .. initrd)
  end

  -- A master tree that is a tiny root of its own: busybox and a file.
  local function master_tree(m)
    assert(stat.mkdir(m)); assert(stat.mkdir(m .. "/bin")); assert(stat.mkdir(m .. "/etc"))
    write(m .. "/bin/busybox", busybox_of(guest.initrd))
    assert(stat.chmod(m .. "/bin/busybox", 493))
    for _, c in ipairs{ "sh", "cat", "ls", "rm", "echo" } do
      assert(require("posix.unistd").link("busybox", m .. "/bin/" .. c, true))
    end
    write(m .. "/etc/hello", "master\n")
  end
  local function listing(m)
    return env.sh("cd " .. q(m) .. " && find . -printf '%p %y %m %s %l\\n' | sort && " ..
                  "find . -type f -exec sha256sum {} + | sort")
  end

  jailed_it("--root MASTER,cow=DIFF: the master stays as it was, the diff persists between boots", function()
    local m, d = dir .. "/master", dir .. "/diff"
    master_tree(m)
    local before = listing(m)
    local out, err, status = run("--root " .. m .. ",cow=" .. d,
      "cat /etc/hello; echo changed > /etc/hello; echo kept > /etc/new; rm /bin/ls")
    assert.equal("", err)
    assert.equal(0, status)
    assert.equal("master\n", out)
    out, err, status = run("--root " .. m .. ",cow=" .. d, "cat /etc/hello /etc/new; ls -1 /bin")
    assert.equal("", err)
    assert.equal(0, status)
    assert.equal("changed\nkept\nbusybox\ncat\necho\nrm\nsh\n", out)
    assert.equal(before, listing(m))
    assert.truthy(stat.stat(d .. "/" .. share.DIFF_IMAGE))
    -- Without cow=, writes go to a tmpfs and are gone after.
    out, err, status = run("--root " .. m, "cat /etc/hello; echo again > /etc/hello")
    assert.equal("", err)
    assert.equal(0, status)
    assert.equal("master\n", out)
    assert.equal(before, listing(m))
  end)

  jailed_it("vmlua.share{} in a machine's devices: mounted, copy-on-write over a tmpfs if asked", function()
    local vmlua = require "vmlua"
    assert(stat.mkdir(dir .. "/c"))
    write(dir .. "/c/f", "host\n")
    local plain = assert(vmlua.share{ path = dir .. "/c", mount = "/plain", readonly = true })
    local cow = assert(vmlua.share{ path = dir .. "/c", mount = "/cow", cow = true, tag = "cow" })
    local vm = assert(vmlua.vm{ backend = "uml", kernel = guest.kernel, initrd = guest.initrd,
      cmdline = guest.cmdline, console = "none", devices = { plain, cow } })
    assert.equal("hostfs", plain.resolved)
    assert.matches("vmlua: share 'cow': [^\n]* on /cow through hostfs %(the best the uml backend has%), " ..
                   "writes to a tmpfs", vm:output())
    vm:start()
    vm.console:expect(guest.ready, 120)
    local out = vm.console:run("echo guest > /cow/f; cat /cow/f /plain/f")
    vm.console:send("poweroff -f\n")
    vm:wait(60)
    vm:close()
    assert.matches("guest\r?\nhost", out)
    assert.equal("host\n", read(dir .. "/c/f"))
  end)

  jailed_it("jails linux.uml for a vmlua that is not root too (a user namespace)", function()
    if env.sh("id -u") ~= "0\n" then pending("needs root, to run boot.lua as nobody") return end
    -- nobody's TMPDIR and share, where nobody can reach them.
    local top = assert(require("posix.stdlib").mkdtemp(env.build .. "/share-spec-XXXXXX"))
    assert(stat.chmod(top, 511))
    assert(stat.mkdir(top .. "/s"))
    assert(stat.chmod(top .. "/s", 511))
    write(top .. "/s/f", "mine\n")
    assert(stat.chmod(top .. "/s/f", 420))
    local out = env.sh("TMPDIR=" .. q(top) .. " HOME=" .. q(top) .. " setpriv --reuid=nobody " ..
      "--regid=nogroup --clear-groups " .. BOOT .. " --backend uml --timeout 300 --share " .. top ..
      "/s:/s --run " .. q("cat /s/f; echo new > /s/g; mkdir /m; mount -t hostfs -o / none /m; " ..
      "ls /m/etc") .. " 2>&1 </dev/null")
    local made = read(top .. "/s/g")
    local owner = stat.stat(top .. "/s/g")
    local left = env.sh("ls -A " .. q(top))
    env.sh("rm -rf " .. q(top))
    assert.equal("mine\nld.so.cache\n", out)
    assert.equal("new\n", made)
    assert.equal(65534, owner and owner.st_uid)
    assert.equal("s\n", left)
  end)

  it("--disk PATH,label=NAME is /dev/disk/by-label-vmlua/NAME", function()
    local img = dir .. "/disk.img"
    write(img, ("\0"):rep(1 << 20))
    local out, err, status = run("--disk " .. img .. " --disk " .. img .. ",ro,label=data",
      "readlink /dev/disk/by-label-vmlua/data; ls /dev/disk/by-label-vmlua; cat /sys/block/vdb/serial; echo")
    assert.equal("", err)
    assert.equal(0, status)
    assert.equal("../../vdb\ndata\nL=data\n", out)
  end)
end)
