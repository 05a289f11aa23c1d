-- What this machine can run, for specs that need more than the driver
-- backend.  Each answers true, or false and a reason to show in `pending`.
local core = require "vmlua.core"

local env = {}

-- Where the built programs are: build/, or build-san/ when
-- `make test SANITIZE=1` runs the specs (it sets VMLUA_BUILD).  The
-- guests stay in build/ for both.
env.build = os.getenv("VMLUA_BUILD") or "build"
env.vmlua = env.build .. "/vmlua"

-- The sanitizers' settings as NAME=value words to put before a command
-- that does not inherit our environment (tmux runs its sessions from the
-- server's, and the server may be older than this run); "" without them.
function env.sanitizer_vars()
  local words = {}
  for _, name in ipairs{ "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS" } do
    local value = os.getenv(name)
    if value then words[#words + 1] = name .. "=" .. value end
  end
  return table.concat(words, " ")
end

function env.kvm()
  return core.kvm_supported()
end

-- The selftest guest, built by `make selftest`.
env.selftest = "build/guest/selftest.elf"

function env.have_selftest()
  local f = io.open(env.selftest, "rb")
  if f then f:close(); return true end
  return false, env.selftest .. " missing: run make selftest"
end

-- The kvm backend and the selftest guest both, for specs that boot it.
function env.kvm_selftest()
  local ok, why = env.kvm()
  if not ok then return false, "needs the kvm backend: " .. why end
  return env.have_selftest()
end

-- Is there a file we can read at path?
function env.readable(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- Run a shell command; return its stdout and exit status.
function env.sh(cmd)
  local p = assert(io.popen(cmd .. "; echo \"::status=$?\"", "r"))
  local out = p:read("a")
  p:close()
  local status = tonumber(out:match("::status=(%d+)\n?$"))
  return out:gsub("::status=%d+\n?$", ""), status
end

-- Scratch files and directories go under TMPDIR (make test points it at
-- a directory that must be empty when the specs end); os.tmpname would
-- put them in /tmp whatever TMPDIR says.
local stdlib = require "posix.stdlib"
local unistd = require "posix.unistd"
local function tmp_template()
  local dir = os.getenv("TMPDIR")
  if not dir or dir == "" then dir = "/tmp" end
  return dir .. "/vmlua-spec-XXXXXX"
end

-- A new empty file of our own, by name; the caller removes it.
function env.tmpname()
  local fd, path = stdlib.mkstemp(tmp_template())
  assert(fd, path)
  unistd.close(fd)
  return path
end

-- A new empty directory of our own; the caller removes it.
function env.tmpdir()
  return assert(stdlib.mkdtemp(tmp_template()))
end

-- A private TMPDIR (and HOME) for one run, so that what it leaves
-- behind can be told apart from what other runs on this machine do:
-- vmlua makes its run directories there, UML keeps its files in them,
-- and a UML left to itself would write to $HOME/.uml.  `env` is the
-- words to put before a command; check(): the directory is empty again
-- and no linux.uml of this run is left (then it is removed).
-- The linux.uml processes (and the helpers they forked) of one machine
-- or of many, as "pid pid ...": linux.uml runs in its machine's run
-- directory, made under the TMPDIR vmlua had, with its initrd linked
-- there.  `under` picks those whose run directory is in that directory,
-- `initrd` those that boot that file.
function env.uml_pids(o)
  local pids = {}
  for pid in env.sh("pgrep -x linux.uml"):gmatch("%d+") do
    local cwd = unistd.readlink("/proc/" .. pid .. "/cwd")
    if cwd and ((o.under and cwd:sub(1, #o.under + 1) == o.under .. "/") or
                (o.initrd and unistd.readlink(cwd .. "/initrd") == o.initrd)) then
      pids[#pids + 1] = pid
    end
  end
  return table.concat(pids, " ")
end

function env.watched()
  local dir = env.tmpdir()
  return {
    dir = dir,
    env = ("TMPDIR=%s HOME=%s "):format(dir, dir),
    check = function()
      local assert = require "luassert"
      local left = env.sh("ls -A " .. dir)
      local running = env.uml_pids{ under = dir }
      os.execute("rm -rf " .. dir)
      assert.equal("", left, "left behind in TMPDIR")
      assert.equal("", running, "a linux.uml still running")
    end,
  }
end

-- s quoted for the shell, as one word.
function env.quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

return env
