--- vmlua.Console: a guest console, whichever device carries it.
--
-- The serial console of a VM (`vm.console`: the UART on kvm, con0 on
-- uml) and a virtio console (`virtio.console{}`, hvc0 in the guest) are
-- the same object: what the guest writes goes to a sink (stdout, a
-- function, or nowhere), to a log file, and into a ring buffer that
-- `console:output()` reads; `console:send(s)` is input for the guest.
--
--     local dev, con = virtio.console{ output = "none" }
--     con:on("output", function(_, data) io.write("[hvc0] ", data) end)
--     con:send("echo hi\n")
--
-- @module vmlua.console
local M = {}
local Console = {}
Console.__index = Console
Console.__name = "vmlua.Console"

local DEFAULT_SIZE = 64 * 1024

local function argerror(fname, msg)
  error("bad argument #1 to '" .. fname .. "' (" .. msg .. ")", 3)
end

--- Check the sink and log options shared by every console.
function M.check(fname, opts)
  local out = opts.output
  if out ~= nil and out ~= false and out ~= "stdout" and out ~= "none" and type(out) ~= "function" then
    argerror(fname, "option 'output' must be 'stdout', 'none', false or a function(data)")
  end
  if opts.log ~= nil and type(opts.log) ~= "string" then
    argerror(fname, "option 'log' must be a file name")
  end
  if opts.size ~= nil and (math.type(opts.size) ~= "integer" or opts.size < 1) then
    argerror(fname, "option 'size' must be a positive number of bytes")
  end
end

--- A console.
-- @tparam table opts output ("stdout" (default), "none"/false, or a
--   function(data)), log (a file name: also write everything there),
--   size (bytes kept for `output()`, default 64 KiB), send (function(s)
--   -> n: how input reaches the guest; set by whoever carries it)
-- @treturn[1] vmlua.Console
-- @treturn[2] nil
-- @treturn[2] string why the log cannot be opened
function M.new(opts)
  opts = opts or {}
  local log, err
  if opts.log then
    log, err = io.open(opts.log, "w")
    if not log then return nil, err end
  end
  local sink = opts.output
  if sink == nil then sink = "stdout" end
  return setmetatable({ _sink = sink, _log = log, _size = opts.size or DEFAULT_SIZE,
    _ring = {}, _ring_len = 0, _hooks = {}, _send = opts.send, bytes = 0 }, Console)
end

--- What the guest wrote: to the sink, the log, the ring and the hooks.
function Console:write(data)
  if data == "" then return end
  if self._sink == "stdout" then
    io.stdout:write(data)
    io.stdout:flush()
  elseif type(self._sink) == "function" then
    self._sink(data)
  end
  if self._log then self._log:write(data); self._log:flush() end
  local r = self._ring
  r[#r + 1] = data
  self._ring_len = self._ring_len + #data
  if self._ring_len > 2 * self._size then
    local s = table.concat(r):sub(-self._size)
    self._ring, self._ring_len = { s }, #s
  end
  self.bytes = self.bytes + #data
  for _, fn in ipairs(self._hooks) do fn(self, data) end
end

--- The most recent output, up to `size` bytes.
function Console:output()
  return table.concat(self._ring):sub(-self._size)
end

--- Input for the guest.
-- @treturn integer how many bytes were taken
function Console:send(s)
  if type(s) ~= "string" then
    error("bad argument #1 to 'send' (string expected, got " .. type(s) .. ")", 2)
  end
  if not self._send then error("console:send(): this console has no input", 2) end
  return self._send(s)
end

--- Watch the output: fn(console, data) for every piece.
function Console:on(event, fn)
  if event ~= "output" then
    error("bad argument #1 to 'on' (unknown event '" .. tostring(event) .. "' (output))", 2)
  end
  if type(fn) ~= "function" then
    error("bad argument #2 to 'on' (function expected, got " .. type(fn) .. ")", 2)
  end
  self._hooks[#self._hooks + 1] = fn
  return self
end

--- Close the log.
function Console:close()
  if self._log then self._log:close(); self._log = nil end
end

function Console:__tostring()
  return ("vmlua.Console (%d bytes so far)"):format(self.bytes)
end

return M
