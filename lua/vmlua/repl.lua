--- vmlua.repl: the interactive prompt of `vmlua` with no script.
--
-- Like lua.c's: a line is first tried as `return <line>` so that
-- expressions print without `=`, and an incomplete statement (a syntax
-- error at <eof>) asks for more lines.
-- @module vmlua.repl
local M = {}

local function incomplete(msg)
  return msg and msg:find("<eof>$") ~= nil
end

local function show(...)
  local n = select("#", ...)
  if n == 0 then return end
  local parts = {}
  for i = 1, n do parts[i] = tostring((select(i, ...))) end
  print(table.concat(parts, "\t"))
end

--- Read-eval-print until end of input.
function M.run()
  local vmlua = require "vmlua"
  io.write(vmlua._VERSION, " - Lua 5.4 with virtual machines. Ctrl-D to leave.\n")
  _G.vmlua = vmlua
  while true do
    io.write("> "); io.flush()
    local line = io.read("L")
    if not line then io.write("\n"); return end
    local chunk, err = load("return " .. line, "=stdin", "t")
    if not chunk then
      local code = line
      chunk, err = load(code, "=stdin", "t")
      while not chunk and incomplete(err) do
        io.write(">> "); io.flush()
        local more = io.read("L")
        if not more then break end
        code = code .. more
        chunk, err = load(code, "=stdin", "t")
      end
    end
    if chunk then
      local r = table.pack(xpcall(chunk, debug.traceback))
      if r[1] then show(table.unpack(r, 2, r.n)) else print(r[2]) end
    else
      print(err)
    end
  end
end

return M
