-- fuzz/fuzz_scenario.lua - the Lua half of fuzz_scenario (see
-- fuzz_scenario.c): hands one input to vmlua.test's scenario loader and
-- option parser, and checks what comes back.
--
-- An input is a scenario file's text.  When it starts with "--argv ",
-- the rest of that line is also the command line of `vmlua test`
-- (words split at spaces), parsed before the file is loaded.
--
-- What must hold, whatever the input:
--   * test.load() and test.parse_args() never raise: they return a
--     result or a message (a string);
--   * every scenario test.load() returns has a string name and a plain
--     table whose every entry, read raw, is an option of the right type:
--     what the runner later reads is what was checked;
--   * parsed options are sane: j a whole number >= 1, a shard with
--     1 <= k <= n.
-- A broken rule raises an error that starts with "fuzz: invariant",
-- which the C side turns into a crash.
local test = require "vmlua.test"

-- The scenario text runs with the globals behind it (test.load's env),
-- as a real scenario file does.  Here it may not touch the files or the
-- process, and whatever it changes in the globals is put back after
-- each input.
local safe_os = { time = os.time, clock = os.clock, date = os.date, difftime = os.difftime,
                  getenv = os.getenv }
for _, name in ipairs{ "io", "require", "dofile", "loadfile", "package", "debug" } do
  _G[name] = nil
end
_G.os = safe_os

local LIBS = { "string", "table", "math", "utf8", "coroutine", "os" }
local function snapshot()
  local snap = { g = {}, libs = {}, strmeta = {} }
  for k, v in pairs(_G) do snap.g[k] = v end
  for _, lib in ipairs(LIBS) do
    local t = {}
    for k, v in pairs(_G[lib]) do t[k] = v end
    snap.libs[lib] = { tab = _G[lib], fields = t }
  end
  for k, v in pairs(getmetatable("")) do snap.strmeta[k] = v end
  return snap
end
local function restore_table(t, fields)
  setmetatable(t, nil)
  for k in pairs(t) do if fields[k] == nil then t[k] = nil end end
  for k, v in pairs(fields) do rawset(t, k, v) end
end
local function restore(snap)
  restore_table(_G, snap.g)
  for lib, saved in pairs(snap.libs) do
    restore_table(saved.tab, saved.fields)
    _G[lib] = saved.tab
  end
  restore_table(getmetatable(""), snap.strmeta)
end
local SNAP = snapshot()

local function broken(what, ...)
  error("fuzz: invariant: " .. what:format(...), 0)
end

-- What each option may be (docs/scenarios.md), checked here on our own.
local function positive_int(v) return math.type(v) == "integer" and v > 0 end
local RULES = {
  backend = function(v) return v == "auto" or v == "kvm" or v == "uml" end,
  memory = function(v) return type(v) == "string" or positive_int(v) end,
  cpus = positive_int,
  kernel = function(v) return type(v) == "string" end,
  initrd = function(v) return type(v) == "string" end,
  cmdline = function(v) return type(v) == "string" end,
  devices = function(v) return type(v) == "function" or (type(v) == "table" and getmetatable(v) == nil) end,
  machines = function(v)
    if type(v) ~= "table" or getmetatable(v) ~= nil then return false end
    for k, name in next, v do
      if math.type(k) ~= "integer" or type(name) ~= "string" or name == "" then return false end
    end
    return true
  end,
  timeout = function(v) return type(v) == "number" and v > 0 and v == v end,
  ready = function(v) return v == false or type(v) == "string" end,
  xfail = function(v) return type(v) == "string" end,
  [1] = function(v) return type(v) == "function" end,
}

local function check_scenarios(list, err)
  if list == nil then
    if type(err) ~= "string" then broken("load failed without a message (%s)", type(err)) end
    return
  end
  if type(list) ~= "table" then broken("load returned a %s", type(list)) end
  for i, sc in ipairs(list) do
    if type(sc.name) ~= "string" then broken("scenario %d has a %s for a name", i, type(sc.name)) end
    if type(sc.spec) ~= "table" or getmetatable(sc.spec) ~= nil then
      broken("scenario '%s': its options are not a plain table", sc.name)
    end
    for k, v in next, sc.spec do
      local rule = RULES[k]
      if not rule then broken("scenario '%s': option '%s' was let through", sc.name, tostring(k)) end
      if not rule(v) then
        broken("scenario '%s': option '%s' = %s (%s) was let through", sc.name, tostring(k),
          tostring(v), type(v))
      end
    end
    if type(rawget(sc.spec, 1)) ~= "function" then broken("scenario '%s' has no body", sc.name) end
  end
end

local function check_options(ok, o)
  if not ok then
    if type(o) ~= "string" then broken("parse_args failed without a message (%s)", type(o)) end
    return
  end
  if math.type(o.j) ~= "integer" or o.j < 1 then broken("-j came out as %s", tostring(o.j)) end
  if o.shard then
    local k, n = o.shard.k, o.shard.n
    if not (math.type(k) == "integer" and math.type(n) == "integer" and k >= 1 and k <= n) then
      broken("--shard came out as %s/%s", tostring(k), tostring(n))
    end
  end
  if type(o.paths) ~= "table" then broken("paths came out as a %s", type(o.paths)) end
end

-- run(input) under the C side's hooks; restore() after it, without them.
return {
  run = function(data)
    local line, text = data:match("^%-%-argv ([^\n]*)\n?(.*)$")
    if line then
      local argv = {}
      for w in line:gmatch("[^ ]+") do argv[#argv + 1] = w end
      check_options(test.parse_args(argv))
    else
      text = data
    end
    check_scenarios(test.load("fuzz-scenario.lua", text))
  end,
  restore = function()
    restore(SNAP)
    collectgarbage("restart")
  end,
}
