-- Bad-argument specs generated from a signature, as luaposix's specs do:
-- each argument in turn is given a value of the wrong type, and the
-- error must name that argument and the function; one argument too many
-- must be refused by count.
--
--   local badargs = require "helpers.badargs"
--   badargs.check("read", mem, { "int", "int" })       -- mem:read(addr, n)
--   badargs.check("size", core, { "size" }, { plain = true })
--
-- A signature lists the arguments' kinds: "int", "number", "string",
-- "table", "function", "size" (an integer or "256M"); a "?" before one
-- marks it optional (documentation: a wrong type is refused all the same).
local M = {}

-- A good value of each kind, and one that is wrong for it.
local GOOD = { int = 0, number = 0.5, string = "s", table = {}, ["function"] = print, size = "4K" }
local BAD = { int = {}, number = {}, string = {}, table = 1, ["function"] = 1, size = {} }

local function kind(spec) return spec:gsub("^%?", "") end

-- A caller of obj's `name`: obj.name(...) when plain, else obj:name(...),
-- written out so that Lua knows the function's name and that it is a
-- method (whose argument numbers leave out self).
local function caller(obj, name, plain)
  assert(name:match("^[%a_][%w_]*$"), "a function name")
  local src = plain and ("local obj = ...; return function(...) return obj.%s(...) end")
                    or ("local obj = ...; return function(...) return obj:%s(...) end")
  return assert(load(src:format(name), "=badargs"))(obj)
end

--- Check fn `name` of `obj` against `sig`.  opts.plain: a function, not a
-- method; opts.good: values to use instead of GOOD (by position).
function M.check(name, obj, sig, opts)
  opts = opts or {}
  local f = caller(obj, name, opts.plain)
  local good = {}
  for i, spec in ipairs(sig) do good[i] = (opts.good or {})[i] or GOOD[kind(spec)] end
  for i, spec in ipairs(sig) do
    local args = table.move(good, 1, #sig, 1, {})
    args[i] = BAD[kind(spec)]
    local ok, err = pcall(f, table.unpack(args, 1, #sig))
    assert(not ok, ("%s: a %s for argument #%d was accepted"):format(name, type(args[i]), i))
    local want = ("bad argument #%d to '%s'"):format(i, name)
    assert(tostring(err):find(want, 1, true),
      ("%s, argument #%d: expected %q in the error, got: %s"):format(name, i, want, tostring(err)))
  end
  local args = table.move(good, 1, #sig, 1, {})
  args[#sig + 1] = GOOD.int
  local ok, err = pcall(f, table.unpack(args, 1, #sig + 1))
  assert(not ok, name .. ": one argument too many was accepted")
  assert(tostring(err):find("no more than", 1, true),
    ("%s: expected 'no more than N arguments' for one too many, got: %s"):format(name, tostring(err)))
end

return M
