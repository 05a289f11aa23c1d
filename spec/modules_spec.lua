-- The modules as a whole: requiring any of them sets no global, and the
-- C functions check their arguments (spec/helpers/badargs.lua).
local env = require "helpers.env"
local badargs = require "helpers.badargs"
local core = require "vmlua.core"

local MODULES = { "vmlua", "vmlua.core", "vmlua.console", "vmlua.cpio", "vmlua.driver",
  "vmlua.paths", "vmlua.repl", "vmlua.share", "vmlua.test", "vmlua.virtio", "vmlua.vm" }

describe("the vmlua modules", function()
  it("set no global when required", function()
    -- In a fresh vmlua each, so that nothing is loaded already.
    for _, name in ipairs(MODULES) do
      local code = ("local before = {} for k in pairs(_G) do before[k] = true end " ..
        "require %q " ..
        "for k in pairs(_G) do if not before[k] then io.write(tostring(k), ' ') end end")
        :format(name)
      local out, status = env.sh(env.vmlua .. " -e " .. env.quote(code) .. " 2>&1")
      assert.equal(0, status, name .. ": " .. out)
      assert.equal("", out, name .. " set globals: " .. out)
    end
  end)

  it("are all in the list above", function()
    local listed = {}
    for _, name in ipairs(MODULES) do listed[name] = true end
    local p = io.popen("ls lua/vmlua/*.lua")
    for file in p:read("a"):gmatch("[^\n]+") do
      local name = "vmlua." .. file:match("([%w_]+)%.lua$")
      if name == "vmlua.init" then name = "vmlua" end
      assert.is_true(listed[name] == true, name .. " is not checked for globals")
    end
    p:close()
  end)
end)

describe("the Lua layer's objects", function()
  it("say what they are", function()
    local virtio, driver, console = require "vmlua.virtio", require "vmlua.driver", require "vmlua.console"
    local mem = core.memory("4M")
    local d = assert(driver.attach(virtio.rng(), mem))
    assert.matches("^vmlua%.driver%.Driver: ", tostring(d))
    assert.matches("^vmlua%.driver%.Ring: ", tostring(d.rings[0]))
    assert.matches("^vmlua%.cpio%.Archive: ", tostring(require("vmlua.cpio").new()))
    assert.matches("^vmlua%.Console ", tostring(console.new{ output = "none" }))
    mem:close()
  end)
end)

describe("vmlua.core's functions", function()
  it("name a bad argument and refuse one too many", function()
    badargs.check("size", core, { "size" }, { plain = true })
    badargs.check("memory", core, { "size" }, { plain = true })
    local mem = core.memory("4M")
    badargs.check("read", mem, { "int", "int" })
    badargs.check("write", mem, { "int", "string" })
    badargs.check("fill", mem, { "int", "int", "?int" })
    for _, name in ipairs{ "u8", "u16", "u32", "u64" } do badargs.check(name, mem, { "int", "?int" }) end
    badargs.check("regions", mem, {})
    badargs.check("virtqueue", core, { "table", "table" }, { plain = true,
      good = { mem, { size = 8, desc = 0, avail = 0x1000, used = 0x2000 } } })
    mem:close()
  end)
end)
