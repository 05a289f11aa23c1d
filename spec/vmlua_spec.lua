-- The vmlua executable: lua-compatible command line, errors, signals.
local env = require "helpers.env"

local VMLUA = env.vmlua

local function vmlua(args)
  return env.sh(VMLUA .. " " .. args .. " 2>&1")
end

local function tmpfile(content)
  local name = env.tmpname()
  local f = assert(io.open(name, "w"))
  f:write(content)
  f:close()
  return name
end

describe("vmlua (the executable)", function()
  it("prints its version with -v", function()
    local out, status = vmlua("-v")
    assert.equal(0, status)
    assert.matches("^vmlua %d+%.%d+%.%d+ %(Lua 5%.4%.%d+%)\n$", out)
  end)

  it("prints help with --help and -h", function()
    for _, flag in ipairs{ "--help", "-h" } do
      local out, status = vmlua(flag)
      assert.equal(0, status)
      assert.matches("^usage: vmlua %[options%] %[script %[args%]%]", out)
      assert.matches("%-e CODE", out)
    end
  end)

  it("runs -e code with vmlua.core built in", function()
    local out, status = vmlua([[-e 'print(require("vmlua.core")._VERSION)']])
    assert.equal(0, status)
    assert.matches("^vmlua %d", out)
  end)

  it("finds the Lua layer next to itself", function()
    local out, status = vmlua([[-e 'print(require("vmlua").vm ~= nil)']])
    assert.equal(0, status)
    assert.equal("true\n", out)
  end)

  it("gives a script arg as lua does", function()
    local script = tmpfile("print(#arg, arg[0] ~= nil, arg[1], arg[2], ...)\n")
    local out, status = vmlua("-e 'x=1' " .. script .. " one two")
    os.remove(script)
    assert.equal(0, status)
    assert.equal("2\ttrue\tone\ttwo\tone\ttwo\n", out)
    out = vmlua([[-e 'print(arg[-1], arg[-2], arg[-3])' ]] .. "/dev/null")
    assert.equal("x=1\t-e\t" .. VMLUA .. "\n", (out:gsub("print%b()", "x=1")))
  end)

  it("prints a traceback and exits 1 on a Lua error", function()
    local script = tmpfile("local function f() error('boom') end\nf()\n")
    local out, status = vmlua(script)
    os.remove(script)
    assert.equal(1, status)
    assert.matches("^vmlua: .-:1: boom\nstack traceback:\n", out)
  end)

  it("exits 1 on a syntax error and on an unknown option", function()
    local out, status = vmlua("-e 'x ='")
    assert.equal(1, status)
    assert.matches("unexpected symbol near <eof>", out)
    out, status = vmlua("--bogus")
    assert.equal(1, status)
    assert.matches("^vmlua: unrecognized option '%-%-bogus'\nusage:", out)
    out, status = vmlua("-e")
    assert.equal(1, status)
    assert.matches("^vmlua: '%-e' needs an argument", out)
  end)

  it("reads a script from stdin with -", function()
    local out, status = env.sh("echo 'print(6*7)' | " .. VMLUA .. " -")
    assert.equal(0, status)
    assert.equal("42\n", out)
  end)

  describe("on SIGINT", function()
    local ok, why = env.kvm()
    if not ok then pending("needs the kvm backend: " .. why) return end

    -- A guest that spins forever, waited on by a Lua loop.
    local spin = [[
local core = require "vmlua.core"
local mem = core.memory("16M")
mem:write(0x100000, "\235\254")
local vm = assert(core.kvm_vm{ memory = mem, cpus = 2 })
core.tty_raw(0)
vm:start(0x100000, 0x7000)
io.write("running\n"); io.flush()
for _ = 1, 30 do vm:poll(1) end  -- ends by itself if no signal comes
]]

    it("stops the guest, says interrupted and exits 1", function()
      local script = tmpfile(spin)
      local out, status = env.sh("(" .. VMLUA .. " " .. script ..
        " & pid=$!; sleep 1; kill -INT $pid; wait $pid; echo \"rc=$?\") 2>&1")
      os.remove(script)
      assert.equal(0, status)
      assert.matches("running\n", out)
      assert.matches("interrupted", out)
      assert.matches("rc=1\n$", out)
    end)

    it("restores the terminal", function()
      if os.execute("command -v script >/dev/null") ~= true then
        pending("script(1) from util-linux is needed for a pty")
        return
      end
      local script = tmpfile(spin)
      local inner = "stty -g; " .. VMLUA .. " " .. script ..
        " </dev/tty & pid=$!; sleep 1; stty -g -F /dev/tty; kill -INT $pid; wait $pid; stty -g"
      local out = env.sh("script -qec '" .. inner .. "' /dev/null 2>&1 </dev/null")
      os.remove(script)
      local states = {}
      for line in out:gmatch("[^\r\n]+") do
        if line:match("^%x+:%x+:%x+:%x+:") then states[#states + 1] = line end
      end
      assert.equal(3, #states, out)
      assert.are_not.equal(states[1], states[2])  -- raw while the guest ran
      assert.equal(states[1], states[3])          -- restored after SIGINT
    end)
  end)
end)
