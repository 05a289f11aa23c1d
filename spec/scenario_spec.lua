-- `vmlua test`: the scenario runner, on the shipped scenarios and on
-- scenarios written here to fail.
local env = require "helpers.env"

local readable = env.readable

local function write(path, s)
  local f = assert(io.open(path, "w"))
  f:write(s)
  f:close()
end

describe("vmlua test", function()
  it("says how it is used, and refuses what it does not know", function()
    local out, status = env.sh(env.vmlua .. " test --help")
    assert.equal(0, status)
    assert.matches("^usage: vmlua test %[FILE|DIR %.%.%.%] %[%-%-tap | %-%-junit FILE%] %[%-j N%]", out)
    out, status = env.sh(env.vmlua .. " test --bogus 2>&1")
    assert.equal(126, status)
    assert.matches("vmlua test: unknown option '%-%-bogus'", out)
    out, status = env.sh(env.vmlua .. " test -j 0 2>&1")
    assert.equal(126, status)
    assert.matches("%-j needs a whole number of at least 1", out)
  end)

  it("names a scenario file that cannot load, and a malformed scenario", function()
    local dir = env.tmpdir()
    write(dir .. "/bad.lua", "scenario 'no body' { timeout = 5 }\n")
    local out, status = env.sh(env.vmlua .. " test " .. dir .. " 2>&1")
    assert.equal(126, status)
    assert.matches("scenario 'no body': a table with the body as its first item expected", out)
    write(dir .. "/bad.lua", "scenario 'x' { function() end, colour = 'red' }\n")
    out = env.sh(env.vmlua .. " test " .. dir .. " 2>&1")
    assert.matches("scenario 'x': unknown option 'colour'", out)
    os.execute("rm -rf " .. dir)
  end)
end)

describe("vmlua test on real guests #uml", function()
  if not readable("build/guest/uml/initramfs.cpio") then
    pending("the default guest is not built: run make guest")
    return
  end

  it("passes the shipped scenarios with -j 2 and writes a JUnit report", function()
    local xml = os.tmpname()
    local out, status = env.sh(env.vmlua .. " test scripts/scenarios -j 2 --junit " .. xml .. " 2>&1")
    assert.equal(0, status, out)
    assert.matches("^TAP version 13\n1%.%.(%d+)\n", out)
    local n = tonumber(out:match("1%.%.(%d+)"))
    assert.is_true(n >= 6)
    -- in order, each once
    local seen = 0
    for i in out:gmatch("\nn?o?t? ?ok (%d+) ") do
      seen = seen + 1
      assert.equal(seen, tonumber(i))
    end
    assert.equal(n, seen)
    assert.matches("not ok %d+ %- a guest panic fails the scenario with its line # TODO expected failure", out)
    assert.matches("# [^\n]*guest panic: Kernel panic %- not syncing: sysrq triggered crash", out)
    -- an expected failure leaves no boot log behind, run after run
    assert.not_matches("boot logs kept", out)
    local report = assert(io.open(xml)):read("a")
    os.remove(xml)
    assert.matches('^<%?xml version="1.0" encoding="UTF%-8"%?>\n<testsuites tests="' .. n .. '" failures="0" skipped="1"', report)
    local cases = 0
    for _ in report:gmatch("<testcase ") do cases = cases + 1 end
    assert.equal(n, cases)
    assert.matches("</testsuite>\n</testsuites>\n$", report)
  end)

  it("counts failures in its exit status, keeps their boot logs, and filters", function()
    local dir = env.tmpdir()
    write(dir .. "/fails.lua", [[
scenario "an assertion fails" {
  function(vm) assert(vm.console:run("echo 1") == "2\n", "one is not two") end,
}
scenario "an expect times out" {
  function(vm) vm.console:expect("never", 1) end,
}
scenario "a scenario times out" {
  timeout = 8,
  function(vm) vm.console:expect("never", 100) end,
}
scenario "this one passes" {
  function(vm) assert(select(2, vm.console:run("true")) == 0) end,
}
]])
    local out, status = env.sh(env.vmlua .. " test " .. dir .. " 2>&1")
    assert.equal(3, status, out)
    assert.matches("not ok 1 %- an assertion fails\n# [^\n]*one is not two", out)
    assert.matches("not ok 2 %- an expect times out\n# [^\n]*expect: no \"never\" within 1 s; the last lines were:", out)
    assert.matches("not ok 3 %- a scenario times out\n# scenario timeout: 8 s", out)
    assert.matches("ok 4 %- this one passes", out)
    local log = out:match("# boot logs kept: (%S+)")
    assert.truthy(log and readable(log), out)
    assert.matches("guest ready", assert(io.open(log)):read("a"))
    for l in out:gmatch("# boot logs kept: (%S+)") do os.remove(l) end
    out, status = env.sh(env.vmlua .. " test " .. dir .. " --filter passes 2>&1")
    assert.equal(0, status, out)
    assert.matches("1%.%.1\nok 1 %- this one passes", out)
    os.execute("rm -rf " .. dir)
  end)
end)
