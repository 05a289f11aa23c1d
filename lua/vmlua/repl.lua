--- vmlua.repl: the interactive prompt of `vmlua` with no script.
--
-- Like lua.c's: a line is first tried as `return <line>` so that
-- expressions print without `=`, and an incomplete statement (a syntax
-- error at <eof>) asks for more lines.  On a terminal it edits with
-- readline (history in ~/.vmlua_history, Tab completes globals, fields
-- and methods), and the guests keep running while you type: their
-- console output appears above the prompt, the line being edited stays.
-- Ctrl-C drops the line, or interrupts what is running; Ctrl-D stops
-- every guest and leaves.
-- @module vmlua.repl
local M = {}

local function incomplete(msg)
  return msg and msg:find("<eof>$") ~= nil
end

local function type_name(v)
  local mt = getmetatable(v)
  return type(mt) == "table" and rawget(mt, "__name") or nil
end

--- A value as the prompt shows it: vmlua objects with their parts,
-- tables with their first fields.
function M.pretty(v)
  local name = type_name(v)
  if name == "vmlua.VM" then
    local lines = { tostring(v) }
    if v.exit_reason then lines[#lines + 1] = "  exit: " .. v.exit_reason .. ": " .. tostring(v.exit_detail) end
    lines[#lines + 1] = ("  console: %d bytes so far"):format(v.console and v.console.bytes or 0)
    for i, d in ipairs(v.devices or {}) do lines[#lines + 1] = ("  device %d: %s"):format(i, M.pretty(d)) end
    return table.concat(lines, "\n")
  elseif name == "vmlua.Device" then
    local ok, n = pcall(function() return v.queues end)
    local parts = { tostring(v) }
    for i = 0, (ok and n or 0) - 1 do
      local qok, q = pcall(v.queue, v, i)
      if qok then parts[#parts + 1] = ("\n    queue %d: %s"):format(i, tostring(q)) end
    end
    return table.concat(parts)
  elseif type(v) == "table" and not name then
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    local parts = {}
    for i, k in ipairs(keys) do
      if i > 12 then parts[#parts + 1] = "..."; break end
      local val = v[k]
      parts[#parts + 1] = (type(k) == "string" and k:match("^[%a_][%w_]*$") and k or "[" .. tostring(k) .. "]")
        .. " = " .. (type(val) == "string" and ("%q"):format(val) or tostring(val))
    end
    return "{ " .. table.concat(parts, ", ") .. " }"
  end
  return tostring(v)
end

local function show(write, ...)
  local n = select("#", ...)
  if n == 0 then return end
  local parts = {}
  for i = 1, n do parts[i] = M.pretty((select(i, ...))) end
  write(table.concat(parts, "\t") .. "\n")
end

-- The fields and methods of v: its own keys, and its class's.
local function keys_of(v, methods_only)
  local out, seen = {}, {}
  local function add(t)
    if type(t) ~= "table" then return end
    for k, x in pairs(t) do
      if type(k) == "string" and k:match("^[%a_][%w_]*$") and not seen[k]
         and (not methods_only or type(x) == "function") then
        seen[k] = true
        out[#out + 1] = k
      end
    end
  end
  if type(v) == "table" then add(v) end
  local mt = getmetatable(v)
  if type(mt) == "table" then add(rawget(mt, "__index")) end
  if type(v) == "string" then add(string) end
  return out
end

--- Tab completion: the word before the cursor, as `name`, `a.b.c` or
-- `a.b:c`, completed from globals, fields and methods.  Nothing is called.
function M.complete(line, point)
  local word = line:sub(1, point):match("[%w_%.:]*$") or ""
  local base, sep, partial = word:match("^(.*)([%.:])([%w_]*)$")
  local from, prefix, methods = _G, "", false
  if base then
    from = _G
    for part in base:gmatch("[^%.]+") do
      if type(from) ~= "table" and type(from) ~= "userdata" then return {} end
      local ok, nxt = pcall(function() return from[part] end)
      if not ok or nxt == nil then return {} end
      from = nxt
    end
    prefix, methods = base .. sep, sep == ":"
  else
    partial = word
  end
  local out = {}
  for _, k in ipairs(keys_of(from, methods)) do
    if k:sub(1, #partial) == partial then out[#out + 1] = prefix .. k end
  end
  table.sort(out)
  return out
end

-- Run one chunk of input; `write` shows results and errors.
local function evaluate(code, write)
  local chunk, err = load("return " .. code, "=stdin", "t")
  if not chunk then chunk, err = load(code, "=stdin", "t") end
  if not chunk then return err end
  local r = table.pack(xpcall(chunk, function(e)
    if tostring(e):find("interrupted$") then return "interrupted" end
    return debug.traceback(e, 2)
  end))
  if r[1] then show(write, table.unpack(r, 2, r.n)) else write(tostring(r[2]) .. "\n") end
end

-- The plain prompt, for input that is not a terminal.
local function run_plain()
  while true do
    io.write("> "); io.flush()
    local line = io.read("L")
    if not line then io.write("\n"); return end
    local code = line
    local chunk, err = load("return " .. code, "=stdin", "t")
    if not chunk then chunk, err = load(code, "=stdin", "t") end
    while not chunk and incomplete(err) do
      io.write(">> "); io.flush()
      local more = io.read("L")
      if not more then break end
      code = code .. more
      chunk, err = load(code, "=stdin", "t")
    end
    if chunk or not incomplete(err) then
      if chunk then evaluate(code, io.write) else print(err) end
    end
  end
end

--- Read-eval-print until end of input.
function M.run()
  local vmlua = require "vmlua"
  local vm_mod = require "vmlua.vm"
  local console = require "vmlua.console"
  io.write(vmlua._VERSION, " - Lua 5.4 with virtual machines. Ctrl-D to leave.\n")
  _G.vmlua = vmlua
  local has_rl, rl = pcall(require, "vmlua.readline")
  if not has_rl or not rl.isatty() then return run_plain() end

  vm_mod.keep_on_interrupt = true
  local home = os.getenv("HOME")
  rl.open{ prompt = "> ", history = home and (home .. "/.vmlua_history"), complete = M.complete }
  -- Guests' console output goes above the prompt.
  local saved = console.stdout
  -- A guest's terminal queries (ESC [6n, where is the cursor?) would
  -- have the terminal answer into our input: they are not passed on.
  console.stdout = function(data) rl.print((data:gsub("\27%[6n", ""))) end
  local function write(s) rl.print(s) end
  -- Let the guests run while nothing is typed.
  local function pump()
    for vm in pairs(vm_mod.live) do
      if vm.state == "running" or vm.state == "paused" then
        local reason, detail = vm:wait(0.01)
        if reason then rl.print(("[%s: %s: %s]\n"):format(tostring(vm), reason, tostring(detail))) end
      end
    end
  end
  local code
  while true do
    local ok, line = pcall(function()
      while true do
        local l = rl.poll(0.05)
        if l ~= nil then return l end
        pump()
      end
    end)
    if not ok then
      if not tostring(line):find("interrupted$") then write(tostring(line) .. "\n") end
      code = nil
      rl.prompt("> ")
    elseif line == false then
      break
    else
      code = code and (code .. "\n" .. line) or line
      local _, err = load("return " .. code, "=stdin", "t")
      if err then _, err = load(code, "=stdin", "t") end
      if err and incomplete(err) then
        rl.prompt(">> ")
      else
        evaluate(code, io.write)
        code = nil
        rl.prompt("> ")
      end
    end
  end
  -- Ctrl-D: every guest stops, the terminal is as it was.
  rl.close()
  console.stdout = saved
  for vm in pairs(vm_mod.live) do pcall(vm.close, vm) end
  require("vmlua.core").tty_restore()
  io.write("\n")
end

return M
