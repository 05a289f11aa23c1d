-- make install into a temporary prefix, then the installed vmlua used
-- from another directory as a package's user would: modules, the
-- default guest, `vmlua boot`, `vmlua test`, lua5.4 with require, the
-- man page; every code block the docs mark runnable, run as written;
-- make uninstall.
local env = require "helpers.env"
local vmlua = require "vmlua"

local q = env.quote
local SAN = env.build == "build-san" and " SANITIZE=1" or ""
-- Under SANITIZE=1 the installed module is build-san's, whose __asan_*
-- symbols only a program linked with the sanitizers provides: plain
-- lua5.4 cannot load it.  The sanitized interpreter busted runs in
-- (build-san/lua-san, which runs a script file) stands in, copied away
-- from build-san/ so that no build tree lies beside it.
local SAN_LUA = SAN ~= "" and env.build .. "/lua-san"

-- Every fenced block whose info string says "runnable": { file, line,
-- lang, code, needs }.  "runnable jail" marks a block that needs the jail
-- for shares (vmlua.share.jail_unavailable says where it cannot be had).
local function runnable_blocks()
  local files = { "README.md" }
  local ls = env.sh("ls docs/*.md")
  for f in ls:gmatch("%S+") do files[#files + 1] = f end
  local blocks = {}
  for _, file in ipairs(files) do
    local n, cur = 0, nil
    for line in io.lines(file) do
      n = n + 1
      if cur then
        if line:match("^```%s*$") then blocks[#blocks + 1] = cur; cur = nil
        else cur.code = cur.code .. line .. "\n" end
      else
        local lang, needs = line:match("^```(%w+)%s+runnable%s*(%w*)%s*$")
        if lang then cur = { file = file, line = n, lang = lang, code = "", needs = needs } end
      end
    end
  end
  return blocks
end

describe("make install", function()
  local prefix, work
  local guest = vmlua.guest("uml")

  setup(function()
    prefix = env.tmpdir()
    work = env.tmpdir()
    local out, status = env.sh("make -s install" .. SAN .. " PREFIX=" .. q(prefix) .. " 2>&1")
    assert(status == 0, out)
  end)

  teardown(function()
    if prefix then os.execute("rm -rf " .. q(prefix) .. " " .. q(work)) end
  end)

  -- cmd run in the scratch directory, with the installed vmlua first on
  -- PATH and nothing pointing back at the checkout.
  local function run(cmd)
    return env.sh("cd " .. q(work) .. " && env -u LUA_PATH -u LUA_CPATH PATH=" .. q(prefix .. "/bin") ..
      ":$PATH " .. cmd)
  end

  it("installs the executable, modules, scripts, scenarios, docs and vmlua(1)", function()
    for _, f in ipairs{ "bin/vmlua", "lib/lua/5.4/vmlua/core.so", "share/lua/5.4/vmlua/init.lua",
        "share/lua/5.4/vmlua/test.lua", "share/lua/5.4/vmlua/paths.lua", "share/vmlua/boot.lua",
        "share/vmlua/build-guest.lua", "share/vmlua/scenarios/boot.lua", "share/man/man1/vmlua.1",
        "share/doc/vmlua/README.md" } do
      assert(env.readable(prefix .. "/" .. f), f .. " is not installed")
    end
  end)

  it("finds its own modules from another directory, with no environment variables", function()
    local out, status = run("vmlua -e 'require \"vmlua.test\"; print(package.searchpath(\"vmlua.test\", package.path))' 2>&1")
    assert.equal(0, status, out)
    assert.equal(prefix .. "/bin/../share/lua/5.4/vmlua/test.lua\n", out)
  end)

  it("finds the installed default guest, and shows it beside no checkout path", function()
    if not guest then pending("the default guest is not built: run make guest") return end
    local out, status = run("vmlua -e 'print(require(\"vmlua\").guest(\"uml\").kernel)' 2>&1")
    assert.equal(0, status, out)
    assert.equal(prefix .. "/share/vmlua/guest/uml/linux.uml\n", out)
  end)

  it("loads under plain lua5.4 with the prefix on its path, and finds the guest from there", function()
    if not guest then pending("the default guest is not built: run make guest") return end
    local f = assert(io.open(work .. "/where.lua", "w"))
    f:write('print(require("vmlua").guest("uml").initrd)\n')
    f:close()
    local lua = "lua5.4"
    if SAN_LUA then
      lua = work .. "/lua-san"
      assert(os.execute("cp " .. q(SAN_LUA) .. " " .. q(lua)))
    end
    local out, status = env.sh("cd " .. q(work) .. " && LUA_PATH=" .. q(prefix .. "/share/lua/5.4/?.lua;" ..
      prefix .. "/share/lua/5.4/?/init.lua;;") .. " LUA_CPATH=" .. q(prefix .. "/lib/lua/5.4/?.so;;") ..
      " " .. q(lua) .. " where.lua 2>&1")
    assert.equal(0, status, out)
    assert.equal(prefix .. "/share/vmlua/guest/uml/initramfs.cpio\n", out)
  end)

  it("boots the default guest with vmlua boot from another directory", function()
    if not guest then pending("the default guest is not built: run make guest") return end
    local out, status = run("vmlua boot --timeout 120 --run 'echo installed-ok' 2>/dev/null </dev/null")
    assert.equal(0, status, out)
    assert.equal("installed-ok\n", out)
  end)

  it("runs a shipped scenario, and one kept in a scratch directory, from another directory", function()
    if not guest then pending("the default guest is not built: run make guest") return end
    local f = assert(io.open(work .. "/mine.lua", "w"))
    f:write([[
scenario "a scenario outside the checkout" {
  function(vm)
    local out, status = vm.console:run("echo $((6 * 7))")
    assert(status == 0 and out == "42\n", out)
  end,
}
]])
    f:close()
    local out, status = run("vmlua test --filter 'boot, run' 2>&1 </dev/null")
    assert.equal(0, status, out)
    assert.matches("ok 1 %- boot, run a command, power off", out)
    out, status = run("vmlua test " .. q(work .. "/mine.lua") .. " 2>&1 </dev/null")
    assert.equal(0, status, out)
    assert.matches("ok 1 %- a scenario outside the checkout", out)
  end)

  describe("runs every runnable code block of the docs as written", function()
    for _, b in ipairs(runnable_blocks()) do
      it(("%s:%d (%s)"):format(b.file, b.line, b.lang), function()
        if not guest then pending("the default guest is not built: run make guest") return end
        local no_jail = b.needs == "jail" and require("vmlua.share").jail_unavailable()
        if no_jail then pending(no_jail) return end
        local file = work .. "/block." .. b.lang
        local f = assert(io.open(file, "w"))
        f:write(b.code)
        f:close()
        local cmd = b.lang == "lua" and "vmlua " .. q(file) or "sh -e " .. q(file)
        local out, status = run(cmd .. " 2>&1 </dev/null")
        assert(status == 0, ("%s:%d exited %s:\n%s"):format(b.file, b.line, tostring(status), out))
      end)
    end
  end)

  it("builds as a rock: luarocks make installs a vmlua that lua5.4 loads", function()
    if os.execute("command -v luarocks >/dev/null") ~= true then
      pending("luarocks is not installed (make deps installs it)") return
    end
    -- luarocks builds in the directory it is given: a clean copy of the
    -- sources, so the checkout's build/ is not touched.
    local src, tree = work .. "/src", work .. "/rocks"
    local out, status = env.sh("mkdir -p " .. q(src) .. " && cp -r core lua vmlua-scm-1.rockspec " .. q(src) ..
      " && cd " .. q(src) .. " && luarocks --lua-version 5.4 make --deps-mode=none --tree " .. q(tree) ..
      " vmlua-scm-1.rockspec 2>&1")
    assert(status == 0, out)
    out, status = env.sh("cd " .. q(work) .. " && eval \"$(luarocks --lua-version 5.4 --tree " .. q(tree) ..
      " path)\" && lua5.4 -e 'local v = require \"vmlua\"; print(v._VERSION ~= nil, " ..
      "package.searchpath(\"vmlua.paths\", package.path))' 2>&1")
    assert.equal(0, status, out)
    assert.equal("true\t" .. tree .. "/share/lua/5.4/vmlua/paths.lua\n", out)
  end)

  it("is removed by make uninstall", function()
    local out, status = env.sh("make -s uninstall" .. SAN .. " PREFIX=" .. q(prefix) .. " 2>&1")
    assert.equal(0, status, out)
    out = env.sh("find " .. q(prefix) .. " -type f")
    assert.equal("", out)
  end)

end)
