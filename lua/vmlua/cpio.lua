--- vmlua.cpio: write initramfs archives (cpio "newc") from Lua.
--
--     local cpio = require "vmlua.cpio"
--     local a = cpio.new()
--     a:dir("etc")
--     a:file("etc/motd", "hello\n")
--     a:file("init", "#!/bin/sh\n...", 493)   -- 0755
--     a:symlink("bin/sh", "busybox")
--     a:write("extra.cpio")
--
-- The kernel unpacks concatenated archives in order, later files
-- replacing earlier ones, so a scenario can put its own /init or test
-- files over the default guest's by appending a small archive.
-- @module vmlua.cpio
local M = {}
local Archive = { __name = "vmlua.cpio.Archive" }
Archive.__index = Archive

local S_IFDIR, S_IFREG, S_IFLNK = 0x4000, 0x8000, 0xa000

local function pad4(n) return ("\0"):rep((4 - n % 4) % 4) end

--- A new, empty archive.
function M.new()
  return setmetatable({ parts = {}, ino = 1 }, Archive)
end

function Archive:_entry(name, mode, data)
  if type(name) ~= "string" or name == "" or name:find("\0", 1, true) then
    error("bad argument #1 (file name must be a non-empty string without NUL)", 3)
  end
  name = name:gsub("^/+", "")
  data = data or ""
  local hdr = string.format("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
    self.ino, mode, 0, 0, (mode & S_IFDIR ~= 0) and 2 or 1, 0, #data,
    0, 0, 0, 0, #name + 1, 0)
  self.ino = self.ino + 1
  local p = self.parts
  p[#p + 1] = hdr
  p[#p + 1] = name .. "\0"
  p[#p + 1] = pad4(110 + #name + 1)
  p[#p + 1] = data
  p[#p + 1] = pad4(#data)
  return self
end

--- A directory (mode default 0755).
function Archive:dir(name, perm) return self:_entry(name, S_IFDIR | (perm or 493)) end

--- A regular file with `content` (mode default 0644).
function Archive:file(name, content, perm)
  if type(content) ~= "string" then
    error("bad argument #2 to 'file' (string expected, got " .. type(content) .. ")", 2)
  end
  return self:_entry(name, S_IFREG | (perm or 420), content)
end

--- A file copied from the host's `path`.
function Archive:file_from(name, path, perm)
  local f, err = io.open(path, "rb")
  if not f then error("cpio: " .. err, 2) end
  local data = f:read("a")
  f:close()
  return self:_entry(name, S_IFREG | (perm or 420), data)
end

--- A symbolic link `name` -> `target`.
function Archive:symlink(name, target) return self:_entry(name, S_IFLNK | 511, target) end

--- The archive as a string, trailer included.
function Archive:finish()
  local t = setmetatable({ parts = { table.unpack(self.parts) }, ino = self.ino }, Archive)
  t:_entry("TRAILER!!!", 0)
  return table.concat(t.parts)
end

--- Write the archive to `path`.  A write that fails (a full disk) is a
-- failure; what was written stays for the caller to remove.
-- @return true, or nil and a message
function Archive:write(path)
  local f, err = io.open(path, "wb")
  if not f then return nil, err end
  local ok, werr = f:write(self:finish())
  local closed, cerr = f:close()
  if ok and closed then return true end
  return nil, path .. ": " .. tostring(werr or cerr)
end

return M
