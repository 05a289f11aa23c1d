-- vmlua.paths: the default guest and vmlua's shipped files, found from
-- any directory, in the documented order.
local env = require "helpers.env"
local paths = require "vmlua.paths"
local vmlua = require "vmlua"

local q = env.quote
local ROOT = env.sh("pwd"):gsub("\n$", "")

describe("vmlua.paths", function()
  it("sets no globals", function()
    local seen = {}
    for k in pairs(_G) do seen[k] = true end
    package.loaded["vmlua.paths"] = nil
    require "vmlua.paths"
    for k in pairs(_G) do assert(seen[k], "new global " .. k) end
  end)

  describe("guest()", function()
    it("checks its argument", function()
      assert.has_error(function() vmlua.guest("xen") end,
        "bad argument #1 to 'guest' (backend 'uml' or 'kvm' expected, got 'xen')")
      assert.has_error(function() vmlua.guest() end,
        "bad argument #1 to 'guest' (backend 'uml' or 'kvm' expected, got nil)")
    end)

    -- Beside the build that runs: build/, or under SANITIZE=1 build-san/,
    -- whose guest is a link to build/guest (the Makefile makes it).
    it("finds the build tree's guest by absolute paths", function()
      local g = vmlua.guest("uml")
      if not g then pending("the default guest is not built: run make guest") return end
      local dir = ROOT .. "/" .. env.build .. "/guest"
      assert.equal(dir, g.dir)
      assert.equal(dir .. "/uml/linux.uml", g.kernel)
      assert.equal(dir .. "/uml/initramfs.cpio", g.initrd)
      assert.equal(ROOT .. "/build/guest\n", env.sh("realpath " .. q(dir)))
      assert.equal("quiet", g.cmdline)
      assert.equal("guest ready", g.ready)
    end)
  end)

  -- A vmlua copied away from its build tree, its modules given by
  -- LUA_PATH, run in a scratch directory with HOME and XDG_CACHE_HOME of
  -- its own: only the per-user cache can hold its guest.
  describe("away from the build tree", function()
    local dir
    before_each(function()
      dir = env.tmpdir()
      assert(os.execute("mkdir -p " .. q(dir .. "/bin") .. " && cp " .. q(env.vmlua) .. " " .. q(dir .. "/bin/vmlua")))
    end)
    after_each(function() os.execute("rm -rf " .. q(dir)) end)

    local function run(code, extra)
      return env.sh("cd " .. q(dir) .. " && env HOME=" .. q(dir) .. " XDG_CACHE_HOME=" .. q(dir .. "/cache") ..
        " PATH=/usr/bin:/bin LUA_PATH=" .. q(ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;;") ..
        " " .. (extra or "") .. " " .. q(dir .. "/bin/vmlua") .. " -e " .. q(code) .. " 2>&1")
    end

    it("says where it looked and what to run when there is no guest", function()
      local out, status = run("print(require('vmlua').guest('uml'))")
      assert.equal(0, status, out)
      assert.equal(("nil\tno default uml guest (looked for uml/linux.uml and uml/initramfs.cpio in " ..
        "%s/bin/guest, %s/share/vmlua/guest, %s/cache/vmlua/guest): run make guest\n"):format(dir, dir, dir), out)
      out = run("print(require('vmlua').backends.uml.supported())")
      assert.equal("false\tlinux.uml not found (no default guest, none on PATH): run make guest, " ..
        "or apt-get install user-mode-linux\n", out)
    end)

    it("finds the guest in the per-user cache ($XDG_CACHE_HOME/vmlua/guest)", function()
      local g = vmlua.guest("uml")
      if not g then pending("the default guest is not built: run make guest") return end
      local cache = dir .. "/cache/vmlua/guest/uml"
      assert(os.execute("mkdir -p " .. q(cache) .. " && ln -s " .. q(g.kernel) .. " " .. q(g.initrd) .. " " .. q(cache)))
      local out, status = run("local g = require('vmlua').guest('uml'); print(g.kernel, g.initrd)")
      assert.equal(0, status, out)
      assert.equal(cache .. "/linux.uml\t" .. cache .. "/initramfs.cpio\n", out)
    end)

    it("prefers the installed share directory to the per-user cache", function()
      local g = vmlua.guest("uml")
      if not g then pending("the default guest is not built: run make guest") return end
      for _, d in ipairs{ dir .. "/cache/vmlua/guest/uml", dir .. "/share/vmlua/guest/uml" } do
        assert(os.execute("mkdir -p " .. q(d) .. " && ln -s " .. q(g.kernel) .. " " .. q(g.initrd) .. " " .. q(d)))
      end
      local out = run("print(require('vmlua').guest('uml').dir)")
      assert.equal(dir .. "/share/vmlua/guest\n", out)
    end)

    it("takes $VMLUA_GUEST_DIR before any other, and says so when it is not whole", function()
      local g = vmlua.guest("uml")
      if not g then pending("the default guest is not built: run make guest") return end
      for _, d in ipairs{ dir .. "/share/vmlua/guest/uml", dir .. "/chosen/uml" } do
        assert(os.execute("mkdir -p " .. q(d) .. " && ln -s " .. q(g.kernel) .. " " .. q(g.initrd) .. " " .. q(d)))
      end
      local out = run("print(require('vmlua').guest('uml').dir)", "VMLUA_GUEST_DIR=chosen")
      assert.equal(dir .. "/chosen\n", out)
      -- one that lacks a part is passed over, and named where it looked
      os.remove(dir .. "/chosen/uml/linux.uml")
      out = run("print(require('vmlua').guest('uml').dir)", "VMLUA_GUEST_DIR=chosen")
      assert.equal(dir .. "/share/vmlua/guest\n", out)
      os.execute("rm -rf " .. q(dir .. "/share"))
      out = run("print(require('vmlua').guest('uml'))", "VMLUA_GUEST_DIR=chosen")
      assert.matches("looked for uml/linux.uml and uml/initramfs.cpio in " .. dir:gsub("%p", "%%%0") ..
        "/chosen, ", out)
    end)
  end)

  describe("shipped()", function()
    it("finds boot.lua and the scenarios of the checkout", function()
      assert.equal(ROOT .. "/scripts/boot.lua", paths.shipped("boot.lua"))
      assert.equal(ROOT .. "/scripts/scenarios", paths.shipped("scenarios"))
      local p, why = paths.shipped("nonesuch.lua")
      assert.is_nil(p)
      assert.matches("^nonesuch%.lua not found in ", why)
    end)
  end)
end)
