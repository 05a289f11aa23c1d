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
local UNSEEN_MAX = 1024 * 1024     -- text kept for expect() to search

--- Where the "stdout" sink writes; the REPL puts its own here, which
-- prints above the prompt.
function M.stdout(data)
  io.stdout:write(data)
  io.stdout:flush()
end

local function now()
  return require("vmlua.core").monotonic()
end

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
--   -> n: how input reaches the guest), wait (function(seconds) ->
--   reason, detail: one turn of the loop of the machine that carries the
--   console, whose output arrives through `write`; see `driven_by`)
-- @treturn[1] vmlua.Console
-- @treturn[2] nil
-- @treturn[2] string why the log cannot be opened
function M.new(opts)
  opts = opts or {}
  for _, k in ipairs{ "send", "wait" } do
    if opts[k] ~= nil and type(opts[k]) ~= "function" then
      argerror("new", ("option '%s' must be a function"):format(k))
    end
  end
  local log, err
  if opts.log then
    log, err = io.open(opts.log, "w")
    if not log then return nil, err end
  end
  local sink = opts.output
  if sink == nil then sink = "stdout" end
  return setmetatable({ _sink = sink, _log = log, _size = opts.size or DEFAULT_SIZE,
    _ring = {}, _ring_len = 0, _hooks = {}, _send = opts.send, _wait = opts.wait, bytes = 0,
    _unseen_parts = {}, _unseen_len = 0, _runs = 0 }, Console)
end

--- What the guest wrote: to the sink, the log, the ring and the hooks.
function Console:write(data)
  if data == "" then return end
  if self._sink == "stdout" then
    M.stdout(data)
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
  -- Pieces, joined only when expect() looks: a busy guest's output is
  -- not copied over and over.
  local u = self._unseen_parts
  u[#u + 1] = data
  self._unseen_len = self._unseen_len + #data
  if self._unseen_len > 2 * UNSEEN_MAX then self:_unseen() end
  for _, fn in ipairs(self._hooks) do fn(self, data) end
end

-- What expect() has not consumed yet (the last UNSEEN_MAX bytes), as one
-- string; `rest` replaces it.
function Console:_unseen(rest)
  local s = rest or table.concat(self._unseen_parts)
  if #s > UNSEEN_MAX then s = s:sub(-UNSEEN_MAX) end
  self._unseen_parts, self._unseen_len = { s }, #s
  return s
end

-- The last n lines of what expect() has not consumed, for error messages.
local function last_lines(text, n)
  local lines = {}
  for line in (text:gsub("\r", "")):gmatch("[^\n]*") do lines[#lines + 1] = line end
  while #lines > 0 and lines[#lines] == "" do lines[#lines] = nil end
  local from = math.max(1, #lines - n + 1)
  return "  | " .. table.concat(lines, "\n  | ", from)
end

-- expect(), with the words of its errors given: `words.who` names the
-- method, `words.late` says what did not come in time, `words.what` what
-- was awaited, and `words.shown(text)` picks what to show of the text not
-- consumed.  Errors are raised at the level of the method's caller.
function Console:_expect(pattern, timeout, plain, words)
  local who, shown = words.who, words.shown
  local deadline = now() + timeout
  while true do
    local unseen = self:_unseen()
    local r = table.pack(unseen:find(pattern, 1, plain))
    if r[1] then
      local whole = unseen:sub(r[1], r[2])
      self:_unseen(unseen:sub(r[2] + 1))
      if r.n > 2 then return table.unpack(r, 3, r.n) end
      return whole
    end
    local left = deadline - now()
    if left <= 0 then
      error(("%s: %s within %g s; the last lines were:\n%s"):format(who, words.late, timeout,
        last_lines(shown(unseen), 8)), 3)
    end
    if not self._wait then error("console:" .. who .. "(): no machine drives this console", 3) end
    local reason, detail = self._wait(math.min(left, 0.25))
    if reason == "panic" then
      error("guest panic: " .. tostring(detail), 3)
    elseif reason and reason ~= "timeout" and not self:_unseen():find(pattern, 1, plain) then
      error(("%s: the guest ended (%s: %s) before %s; the last lines were:\n%s"):format(
        who, reason, tostring(detail), words.what, last_lines(shown(self:_unseen()), 8)), 3)
    end
  end
end

local function as_is(text) return text end

--- Wait for the guest to write something that matches.
-- Searches what arrived since the last match; what matched, and all
-- before it, is consumed.  A guest panic, or the guest ending, fails at
-- once, with the panic line in the error.
-- @tparam string pattern a Lua pattern (or plain text when `plain`)
-- @tparam[opt=30] number timeout seconds
-- @tparam[opt] boolean plain take the pattern as plain text
-- @return the captures, or the whole match when there are none
function Console:expect(pattern, timeout, plain)
  if type(pattern) ~= "string" then
    error("bad argument #1 to 'expect' (string expected, got " .. type(pattern) .. ")", 2)
  end
  if timeout ~= nil and (type(timeout) ~= "number" or timeout < 0) then
    error("bad argument #2 to 'expect' (timeout must be a non-negative number)", 2)
  end
  local r = table.pack(self:_expect(pattern, timeout or 30, plain,
    { who = "expect", late = ("no %q"):format(pattern), what = ("%q"):format(pattern), shown = as_is }))
  return table.unpack(r, 1, r.n)
end

--- Run a shell command in the guest (its shell must be on this console,
-- as the default guest's is) and wait for it to finish.  A timeout, or
-- the guest ending first, raises an error that quotes the command and
-- shows its last lines of output.
-- @tparam string cmd one line of shell
-- @tparam[opt=60] number timeout seconds
-- @treturn string what it printed ("\r\n" made "\n")
-- @treturn integer its exit status
function Console:run(cmd, timeout)
  if type(cmd) ~= "string" or cmd:find("\n") then
    error("bad argument #1 to 'run' (one line of shell expected)", 2)
  end
  if timeout ~= nil and (type(timeout) ~= "number" or timeout < 0) then
    error("bad argument #2 to 'run' (timeout must be a non-negative number)", 2)
  end
  self._runs = self._runs + 1
  local n = self._runs
  -- The markers are printf'ed, so the echo of the typed line cannot
  -- match them.  The command is parsed first in a subshell (as the body
  -- of a function, which is not run): a syntax error, which would abort
  -- an eval and the end marker with it, is then shown by a subshell and
  -- answered with status 2; a good command runs in the shell itself, so
  -- `cd` and variables stay.  The newlines inside the quotes keep a
  -- trailing comment from swallowing the rest; the shell reads the whole
  -- thing before it runs any of it.
  local q = cmd:gsub("'", "'\\''")
  self:send(("printf '__vmlua_%%s_%d__\\n' S; if ( eval '__vmlua_parse() {\n%s\n}' ) 2>/dev/null; " ..
    "then eval '%s\n'; else ( eval '%s\n' ); fi; printf '__vmlua_%%s_%d_%%d__\\n' E $?\n")
    :format(n, q, q, q, n))
  -- For an error: what the command printed so far, not the shell's echo
  -- of the wrapper above (cut out if it has not started yet).
  local start = ("__vmlua_S_%d__\r?\n"):format(n)
  local function shown(text)
    local after = text:match(start .. "(.*)$")
    if after then return after end
    return (text:gsub("printf '__vmlua_.-E %$%?\r?\n", ""))
  end
  local out, status = self:_expect(start .. ("(.-)__vmlua_E_%d_(%%d+)__"):format(n), timeout or 60,
    false, { who = "run", late = ("%q did not finish"):format(cmd),
             what = ("the end of %q"):format(cmd), shown = shown })
  out = out:gsub("\r\n", "\n")
  return out, tonumber(status)
end

--- Also write the output from now on to the file at path (replacing a
-- log given before).
-- @treturn[1] vmlua.Console self
-- @treturn[2] nil
-- @treturn[2] string why the file cannot be opened
function Console:log(path)
  if type(path) ~= "string" then
    error("bad argument #1 to 'log' (file name expected, got " .. type(path) .. ")", 2)
  end
  local f, err = io.open(path, "w")
  if not f then return nil, err end
  if self._log then self._log:close() end
  self._log = f
  return self
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

--- Let another loop drive the console: `wait(seconds)` is one turn of
-- it, returning the machine's exit reason and detail once it has ended
-- (a console made before its machine gets the machine's; `vmlua test`
-- gives every console of a scenario one that turns all its machines).
-- @tparam function wait
-- @treturn vmlua.Console self
function Console:driven_by(wait)
  if type(wait) ~= "function" then
    error("bad argument #1 to 'driven_by' (function expected, got " .. type(wait) .. ")", 2)
  end
  self._wait = wait
  return self
end

--- Close the log.  Also `__close`: `local con <close> = ...`.
function Console:close()
  if self._log then self._log:close(); self._log = nil end
end
Console.__close = Console.close

function Console:__tostring()
  return ("vmlua.Console (%d bytes so far)"):format(self.bytes)
end

return M
