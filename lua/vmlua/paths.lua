--- vmlua.paths: where vmlua's own files are, from any directory.
--
-- vmlua runs from its build tree (build/vmlua), installed under a
-- prefix (P/bin/vmlua, P/share/vmlua, P/share/lua/5.4/vmlua), or as a
-- Lua module under plain lua5.4.  Nothing here depends on the current
-- directory: every place is found from the running executable, from
-- where this module was loaded, or from the user's cache.
--
-- The default guest is looked up in this order, and the first directory
-- that holds a whole guest wins:
--
-- 1. beside the running executable: `build/guest` next to `build/vmlua`
--    (also next to the `build/lua/vmlua/core.so` a lua5.4 loads);
-- 2. the installed share directory, `P/share/vmlua/guest`;
-- 3. the per-user cache, `$XDG_CACHE_HOME/vmlua/guest` (default
--    `~/.cache/vmlua/guest`), where `make guest GUEST_DIR=...` can put it.
--
-- A guest directory holds `uml/linux.uml` and `uml/initramfs.cpio` (the
-- uml guest), and `kvm/vmlinuz` (Debian's cloud kernel) with
-- `kvm/initramfs.cpio` (the same initramfs, the cloud kernel's virtio
-- modules appended: that kernel has virtio only as modules).
-- @module vmlua.paths
local unistd = require "posix.unistd"
local stat = require "posix.sys.stat"
local stdlib = require "posix.stdlib"
local core = require "vmlua.core"

local M = {}

local function dirname(p) return (p:match("^(.*)/[^/]*$")) end

local function is_file(p)
  local st = stat.stat(p)
  return st ~= nil and stat.S_ISREG(st.st_mode) ~= 0
end
M.is_file = is_file

local function is_dir(p)
  local st = stat.stat(p)
  return st ~= nil and stat.S_ISDIR(st.st_mode) ~= 0
end

-- Make p absolute and drop "." and ".." (without resolving symlinks).
local function absolute(p)
  if p:sub(1, 1) ~= "/" then p = (unistd.getcwd() or ".") .. "/" .. p end
  local out = {}
  for part in p:gmatch("[^/]+") do
    if part == ".." then out[#out] = nil
    elseif part ~= "." then out[#out + 1] = part end
  end
  return "/" .. table.concat(out, "/")
end
M.absolute = absolute

--- The running executable (vmlua, or the lua5.4 that loaded us).
function M.exe()
  return unistd.readlink("/proc/self/exe")
end

-- Directories that hold a vmlua executable, and so may be a build tree:
-- the running executable's, and the one whose lua/vmlua/core.so a plain
-- lua5.4 loaded.
local function build_dirs()
  local dirs = {}
  local exe = M.exe()
  local so = package.searchpath("vmlua.core", package.cpath)
  local candidates = { exe and dirname(exe),
                       so and dirname(dirname(dirname(absolute(so)))) }  -- B/lua/vmlua/core.so -> B
  for i = 1, 2 do
    local d = candidates[i]
    if d and d ~= dirs[1] and is_file(d .. "/vmlua") then dirs[#dirs + 1] = d end
  end
  return dirs
end

--- The installed share directories (P/share/vmlua), most likely first:
-- the one beside the executable, then the one beside this module.
function M.share_dirs()
  local dirs, seen = {}, {}
  local function add(d)
    if d and not seen[d] then seen[d] = true; dirs[#dirs + 1] = d end
  end
  local exe = M.exe()
  if exe then add(absolute(dirname(exe) .. "/../share/vmlua")) end
  local src = debug.getinfo(1, "S").source:match("^@(.*)$")
  local prefix = src and absolute(src):match("^(.*)/share/lua/[%d.]+/vmlua/paths%.lua$")
  if prefix then add(prefix .. "/share/vmlua") end
  return dirs
end

--- The per-user cache directory, $XDG_CACHE_HOME/vmlua or ~/.cache/vmlua.
function M.cache_dir()
  local xdg = os.getenv("XDG_CACHE_HOME")
  if xdg and xdg:sub(1, 1) == "/" then return xdg .. "/vmlua" end
  local home = os.getenv("HOME")
  if home and home ~= "" then return home .. "/.cache/vmlua" end
  return nil
end

--- Every place a default guest may be, in the order they are tried:
-- $VMLUA_GUEST_DIR when set (a guest of one's choice, e.g. one that
-- `make guest GUEST_DIR=DIR UML_KERNEL=debian` built), then beside the
-- build's executable, the installed share directory and the per-user
-- cache.
-- @treturn table list of guest directories
function M.guest_dirs()
  local dirs = {}
  local chosen = os.getenv("VMLUA_GUEST_DIR")
  if chosen and chosen ~= "" then dirs[1] = absolute(chosen) end
  for _, d in ipairs(build_dirs()) do dirs[#dirs + 1] = d .. "/guest" end
  for _, d in ipairs(M.share_dirs()) do dirs[#dirs + 1] = d .. "/guest" end
  local cache = M.cache_dir()
  if cache then dirs[#dirs + 1] = cache .. "/guest" end
  return dirs
end

-- What makes a guest directory whole, per backend.
local PARTS = {
  uml = { kernel = "uml/linux.uml", initrd = "uml/initramfs.cpio" },
  kvm = { kernel = "kvm/vmlinuz", initrd = "kvm/initramfs.cpio" },
}
local CMDLINE = { uml = "quiet", kvm = "console=ttyS0 quiet" }

--- The default guest for a backend: the busybox initramfs that
-- `make guest` builds, with the kernel for that backend.
-- @tparam string backend "uml" or "kvm"
-- @treturn[1] table { kernel = PATH, initrd = PATH, cmdline = STRING,
--   ready = TEXT the guest prints when its shell is there, dir = PATH }
-- @treturn[2] nil
-- @treturn[2] string where it looked and what to run
function M.guest(backend)
  local parts = PARTS[backend]
  if not parts then
    error("bad argument #1 to 'guest' (backend 'uml' or 'kvm' expected, got " ..
          (type(backend) == "string" and ("'" .. backend .. "'") or type(backend)) .. ")", 2)
  end
  local dirs = M.guest_dirs()
  for _, d in ipairs(dirs) do
    local kernel, initrd = d .. "/" .. parts.kernel, d .. "/" .. parts.initrd
    if is_file(kernel) and is_file(initrd) then
      return { kernel = kernel, initrd = initrd, cmdline = CMDLINE[backend],
               ready = "guest ready", dir = d, backend = backend }
    end
  end
  return nil, ("no default %s guest (looked for %s and %s in %s): run make guest%s"):format(
    backend, parts.kernel, parts.initrd, table.concat(dirs, ", "),
    backend == "kvm" and " and make kernel" or "")
end

--- A new empty file of the caller's, $TMPDIR/vmlua-WHAT-XXXXXX (TMPDIR
-- defaults to /tmp; os.tmpname ignores it).
-- @tparam string what a word for the name
-- @treturn[1] string its path
-- @treturn[2] nil
-- @treturn[2] string why it could not be made
function M.tmpname(what)
  local dir = os.getenv("TMPDIR")
  if not dir or dir == "" then dir = "/tmp" end
  local fd, path = stdlib.mkstemp(dir .. "/vmlua-" .. what .. "-XXXXXX")
  if not fd then return nil, path end
  unistd.close(fd)
  return path
end

--- The linux.uml every uml machine runs: the given path, else the
-- default guest's, else one on PATH.
-- @tparam[opt] string path
-- @treturn[1] string its full path
-- @treturn[2] nil
-- @treturn[2] string what is missing and how to get it
function M.uml_kernel(path)
  if path then
    -- Absolute: linux.uml is started in its run directory.
    local found, why = core.uml_find(path)
    return found and absolute(found), why
  end
  local guest = M.guest("uml")
  if guest then return core.uml_find(guest.kernel) end
  local found = core.uml_find()
  if found then return found end
  return nil, "linux.uml not found (no default guest, none on PATH): run make guest, " ..
    "or apt-get install user-mode-linux"
end

--- A file vmlua ships (a script, the scenarios): in the build tree's
-- checkout (B/../scripts/NAME) or the installed share directory.
-- @tparam string name e.g. "boot.lua" or "scenarios"
-- @treturn[1] string its path
-- @treturn[2] nil
-- @treturn[2] string where it looked
function M.shipped(name)
  local tried = {}
  for _, d in ipairs(build_dirs()) do tried[#tried + 1] = absolute(d .. "/../scripts/" .. name) end
  for _, d in ipairs(M.share_dirs()) do tried[#tried + 1] = d .. "/" .. name end
  for _, p in ipairs(tried) do
    if is_file(p) or is_dir(p) then return p end
  end
  return nil, name .. " not found in " .. table.concat(tried, ", ")
end

return M
