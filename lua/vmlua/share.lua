--- vmlua.Share: a host directory in the guest.
--
--     local vm = vmlua.vm{ devices = {
--       vmlua.share{ path = "/srv/data", mount = "/data", readonly = true },
--     } }
--
-- A share is not a virtio device of its own: on the uml backend it is
-- hostfs, which the guest's kernel reaches by plain system calls of the
-- linux.uml process.  The default guest's /init mounts each share where
-- it is asked, reading the list vmlua appends to its initramfs (one
-- directory per share under /etc/vmlua/shares, see docs/shares.md).
-- hostfs confines nothing by itself, so a machine with shares runs
-- linux.uml in a jail (M.jail, core/jail.c): a mount namespace that
-- holds only the shares and what linux.uml needs.
--
-- A share whose `mount` is "/" is the guest's root: the default guest
-- mounts it read-only under an overlay, whose upper layer is a tmpfs
-- (`cow = true`) or a disk image in a diff directory that outlives the
-- guest (`cow = DIR`), and runs its command or shell there.
--
-- @module vmlua.share
local paths = require "vmlua.paths"
local stat = require "posix.sys.stat"
local unistd = require "posix.unistd"
local errno = require "posix.errno"

local M = {}
local Share = {}
Share.__index = Share
Share.__name = "vmlua.Share"

--- The ways a backend can share, best first.
M.VIA = { uml = { "hostfs" }, kvm = {} }

--- The size of the upper layer's image a diff directory gets.
M.DIFF_SIZE = 1 << 30
--- The name of that image in the diff directory.
M.DIFF_IMAGE = "upper.ext4"

local OPTIONS = { path = "string", tag = "string", mount = "string", readonly = "boolean",
                  via = "string", unconfined = "boolean", cow = "cow" }

local function argerror(msg)
  error("bad argument #1 to 'share' (" .. msg .. ")", 3)
end

--- Is s a usable tag: 1 to 36 bytes (virtio-fs's limit) of letters,
-- digits, '.', '_' and '-', not starting with '.' or '-'?
function M.valid_tag(s)
  return #s >= 1 and #s <= 36 and s:match("^[%w_][%w._-]*$") ~= nil
end

-- A host directory vmlua can share: it exists, is a directory, and the
-- caller can read and enter it.  Returns its absolute path, or nil and why.
local function host_dir(path, what)
  local abs = paths.absolute(path)
  local st, err, errnum = stat.stat(abs)
  if not st and errnum == errno.ENOENT then return nil, ("%s '%s' does not exist"):format(what, path) end
  if not st then return nil, ("%s '%s' cannot be reached (%s)"):format(what, path, err:gsub("^.-: ", "")) end
  if stat.S_ISDIR(st.st_mode) == 0 then return nil, ("%s '%s' is not a directory"):format(what, path) end
  if unistd.access(abs, "rx") ~= 0 then
    return nil, ("%s '%s' is not readable by vmlua's user"):format(what, path)
  end
  return abs
end

--- A share.
-- @tparam table opts path (the host directory, required), mount (where
--   the guest sees it, absolute; default the same path as on the host;
--   "/" makes it the guest's root), tag (a name, 1-36 of [A-Za-z0-9._-];
--   default from the directory's name), readonly (boolean), via
--   ("hostfs" or "virtiofs"; default the best the backend has),
--   unconfined (true: linux.uml runs without the jail that confines
--   hostfs to the shares, see M.jail and docs/shares.md), cow (true: writes go to a
--   tmpfs over the read-only share; a directory name: to an image in
--   that directory, kept between boots; the root share has cow = true
--   unless told)
-- @treturn[1] vmlua.Share
-- @treturn[2] nil
-- @treturn[2] string why the directory cannot be shared
function M.new(opts)
  if type(opts) ~= "table" then argerror("table expected, got " .. type(opts)) end
  for k, v in pairs(opts) do
    local want = OPTIONS[k]
    if not want then
      argerror("unknown option '" .. tostring(k) .. "' (path, mount, tag, readonly, via, unconfined, cow)")
    elseif want == "cow" then
      if v ~= true and v ~= false and type(v) ~= "string" then
        argerror("option 'cow' must be true, false or a diff directory's name")
      end
    elseif type(v) ~= want then
      argerror("option '" .. k .. "' must be a " .. want .. ", got " .. type(v))
    end
  end
  if not opts.path then argerror("option 'path' (the host directory) is required") end
  for _, k in ipairs{ "path", "mount", "cow" } do
    local v = opts[k]
    if type(v) == "string" and (v == "" or v:find("[%z\n]")) then
      argerror("option '" .. k .. "' must be a non-empty path without NUL or newline")
    end
  end
  if opts.tag and not M.valid_tag(opts.tag) then
    argerror("option 'tag' must be 1 to 36 letters, digits, '.', '_' or '-', got '" .. opts.tag .. "'")
  end
  if opts.via and opts.via ~= "hostfs" and opts.via ~= "virtiofs" then
    argerror("option 'via' must be 'hostfs' or 'virtiofs', got '" .. opts.via .. "'")
  end
  local mount = opts.mount and paths.absolute(opts.mount)
  if opts.mount and opts.mount:sub(1, 1) ~= "/" then
    argerror("option 'mount' must be an absolute path in the guest, got '" .. opts.mount .. "'")
  end
  local host, why = host_dir(opts.path, "directory")
  if not host then return nil, why end
  mount = mount or host
  local cow = opts.cow
  if cow == nil then cow = mount == "/" end
  if cow and opts.readonly == false then argerror("options 'cow' and 'readonly = false' exclude each other") end
  if mount == "/" and not cow then
    argerror("the root share (mount = '/') is copy-on-write: leave 'cow' true or name a diff directory")
  end
  local diff
  if type(cow) == "string" then
    diff = paths.absolute(cow)
    if not stat.stat(diff) then
      local ok, err = stat.mkdir(diff, 493)
      if not ok then return nil, ("cannot make the diff directory '%s': %s"):format(cow, err) end
    end
    diff, why = host_dir(diff, "diff directory")
    if not diff then return nil, why end
    if unistd.access(diff, "w") ~= 0 then
      return nil, ("diff directory '%s' is not writable by vmlua's user"):format(cow)
    end
  end
  local tag = opts.tag
  local default_tag = not tag
  if not tag then
    tag = (mount == "/" and "root") or (host:match("([^/]+)$") or "host"):gsub("[^%w._-]", "_")
    tag = tag:gsub("^[.-]", "_"):sub(1, 36)
  end
  return setmetatable({ path = host, mount = mount, tag = tag, _default_tag = default_tag,
    readonly = opts.readonly or cow ~= false or false, cow = cow and (diff or true) or false,
    via = opts.via, unconfined = opts.unconfined or false }, Share)
end

function Share:__tostring()
  return ("vmlua.Share (%s: %s on %s%s)"):format(self.tag, self.path, self.mount,
    self.cow and ", copy-on-write" or self.readonly and ", read-only" or "")
end

--- Pick the way this share goes into a guest of `backend`, and check
-- that it may: sets self.via and self.chosen (true when vmlua chose).
-- @treturn[1] string what vmlua says about it (one line)
-- @treturn[2] nil
-- @treturn[2] string why this share cannot go into such a guest
function Share:resolve(backend)
  local ways = M.VIA[backend] or {}
  local via = self.via
  if via then
    local ok = false
    for _, w in ipairs(ways) do ok = ok or w == via end
    if not ok then
      return nil, ("share '%s': via '%s' is not yet supported on the %s backend%s"):format(self.tag, via,
        backend, #ways > 0 and (" (it has: " .. table.concat(ways, ", ") .. ")") or "")
    end
  else
    via = ways[1]
    if not via then
      return nil, ("share '%s': the %s backend cannot share host directories yet"):format(self.tag, backend)
    end
    self.chosen = true
  end
  self.resolved = via
  return ("vmlua: share '%s': %s on %s through %s%s%s%s"):format(self.tag, self.path, self.mount, via,
    self.chosen and (" (the best the " .. backend .. " backend has)") or "",
    self.cow == true and ", writes to a tmpfs" or self.cow and (", writes to " .. self.cow) or
    self.readonly and ", read-only" or ", writable",
    self.unconfined and ", unconfined" or "")
end

--- Check a list of shares together and give each a unique tag (a
-- default tag that is taken gets -2, -3, ...).  Two explicit tags alike,
-- two shares on one mount point, or two roots are the script's mistake.
-- @treturn[1] true
-- @treturn[2] nil
-- @treturn[2] string what clashes
function M.check_list(shares)
  local tags, mounts = {}, {}
  for _, s in ipairs(shares) do
    if not s._default_tag then
      if tags[s.tag] then return nil, ("two shares have the tag '%s'"):format(s.tag) end
      tags[s.tag] = true
    end
  end
  for _, s in ipairs(shares) do
    if s._default_tag then
      local base, n = s.tag, 1
      while tags[s.tag] do n = n + 1; s.tag = base:sub(1, 33) .. "-" .. n end
      tags[s.tag] = true
    end
    if mounts[s.mount] then
      return nil, ("shares '%s' and '%s' are both mounted on %s"):format(mounts[s.mount], s.tag, s.mount)
    end
    mounts[s.mount] = s.tag
  end
  return true
end

--- Is v a vmlua.Share?
function M.is(v) return getmetatable(v) == Share end

--- The diff directory's image (made, sparse, if missing) as the
-- virtio-blk device the guest's overlay writes to, or nil and why.
function Share:diff_disk()
  if type(self.cow) ~= "string" then return nil end
  local image = self.cow .. "/" .. M.DIFF_IMAGE
  if not paths.is_file(image) then
    local f, err = io.open(image, "wb")
    if not f then return nil, ("share '%s': cannot make %s: %s"):format(self.tag, image, err) end
    f:seek("set", M.DIFF_SIZE - 1)
    f:write("\0")
    f:close()
  end
  return require("vmlua.virtio").blk{ path = image, label = "diff-" .. self.tag:sub(1, 13) }
end

--- The archive the default guest reads its shares from: appended to its
-- initramfs, it adds /etc/vmlua/shares/N/{host,mount,tag,ro,cow}, the
-- root share first and the others by depth, so that a share inside
-- another is mounted after it.
-- @tparam {vmlua.Share,...} shares
-- @treturn string the cpio bytes
function M.archive(shares)
  local list = table.move(shares, 1, #shares, 1, {})
  local function depth(s) return s.mount == "/" and 0 or select(2, s.mount:gsub("/", "")) end
  table.sort(list, function(a, b)
    if depth(a) ~= depth(b) then return depth(a) < depth(b) end
    return a.mount < b.mount
  end)
  local a = require("vmlua.cpio").new()
  for _, d in ipairs{ "etc", "etc/vmlua", "etc/vmlua/shares" } do a:dir(d) end
  for i, s in ipairs(list) do
    local d = ("etc/vmlua/shares/%02d"):format(i)
    a:dir(d)
    a:file(d .. "/host", s.path .. "\n")
    a:file(d .. "/mount", s.mount .. "\n")
    a:file(d .. "/tag", s.tag .. "\n")
    a:file(d .. "/ro", s.readonly and "ro\n" or "\n")
    a:file(d .. "/cow", s.cow == true and "tmpfs\n" or s.cow and ("diff-" .. s.tag:sub(1, 13) .. "\n") or "\n")
  end
  return a:finish()
end

--- Why the jail cannot be built here, or nil.  Inside a chroot (a
-- build root, a container's chroot) Linux refuses a user namespace, and
-- / is no mount to make private or pivot from: the jail would leak its
-- mounts to the host's namespace, so vmlua does not build it there.
function M.jail_unavailable()
  -- In a chroot no mount has / as its mount point (/proc/self/mountinfo
  -- shows mount points as seen from our root).
  local f = io.open("/proc/self/mountinfo", "r")
  if not f then return nil end
  local root_mounted = false
  for line in f:lines() do
    if line:match("^%S+ %S+ %S+ %S+ / ") then root_mounted = true break end
  end
  f:close()
  if not root_mounted then
    return "vmlua runs inside a chroot, where the jail that confines hostfs cannot be built " ..
      "(Linux refuses it the namespaces it needs): run vmlua outside the chroot, or add " ..
      "',unsafe' (unconfined = true) to the share to go without it"
  end
end

--- Does any of these shares ask to go without the jail?
function M.unconfined(shares)
  for _, s in ipairs(shares) do
    if s.unconfined then return true end
  end
  return false
end

--- The jail linux.uml runs in when it has shares (core/jail.c): a mount
-- namespace whose root holds only the shares, each at its own path, the
-- system's libraries and linux.uml itself read-only, a few device
-- nodes, the run directory `rundir`, a fresh tmpfs on /dev/shm for UML's
-- memory, and an empty /proc when the host's root is shared.  Parents
-- come before children.
-- @treturn table for core.uml_vm{ jail = ... }
function M.jail(shares, binary, rundir)
  rundir = paths.absolute(rundir)
  local list = {}
  local function add(path, flags)
    flags.path = path
    list[#list + 1] = flags
  end
  local rooted = false
  for _, s in ipairs(shares) do
    add(s.path, { ro = s.readonly })
    rooted = rooted or s.path == "/"
  end
  for _, d in ipairs{ "/usr", "/lib", "/lib64", "/etc/ld.so.cache" } do
    if stat.stat(d) then add(d, { ro = true }) end
  end
  add(binary, { ro = true })
  for _, d in ipairs{ "/dev/null", "/dev/zero", "/dev/random", "/dev/urandom" } do
    if stat.stat(d) then add(d, { dev = true }) end
  end
  if rooted then add("/proc", { mask = true }) end
  add("/dev/shm", { tmp = true })
  add(rundir, {})
  local function depth(p) return p == "/" and 0 or select(2, p:gsub("/", "")) end
  for i, b in ipairs(list) do b.order = i end
  table.sort(list, function(a, b)
    if depth(a.path) ~= depth(b.path) then return depth(a.path) < depth(b.path) end
    return a.order < b.order
  end)
  list.root = rundir .. "/jail"
  return list
end

--- Write `dest`: the initramfs `initrd` followed by the shares' archive
-- (the kernel unpacks one after the other).
-- @treturn[1] true
-- @treturn[2] nil
-- @treturn[2] string what failed
function M.initrd_with(initrd, shares, dest)
  local src, err = io.open(initrd, "rb")
  if not src then return nil, err end
  local out
  out, err = io.open(dest, "wb")
  if not out then src:close(); return nil, err end
  repeat
    local block = src:read(1 << 20)
    if block and not out:write(block) then block, err = nil, "cannot write " .. dest end
  until not block
  src:close()
  local ok, werr = out:write(M.archive(shares))
  ok = out:close() and ok
  if err or not ok then return nil, err or ("cannot write %s: %s"):format(dest, werr) end
  return true
end

return M
