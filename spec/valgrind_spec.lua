-- build/vmlua under valgrind's memcheck, booting the default uml guest to
-- a command and its poweroff.  linux.uml itself runs natively: valgrind
-- does not follow exec (--trace-children=no, its default).
--
-- What fails the spec: any memory error (invalid read or write, use of
-- uninitialised values, bad free) in vmlua or in the guardian it forks,
-- and any block definitely or indirectly lost by vmlua's own process.
-- Still-reachable blocks are allowed: at exit they are what libraries
-- set up once and keep (GLib's tables, pulled in by libslirp).  The
-- guardian's leak report is not read: it is a forked copy of vmlua that
-- never returns to the code holding its pointers, so memcheck finds
-- blocks "lost" there that vmlua frees in the parent.
local env = require "helpers.env"
local guest = require "helpers.initrd"

local readable = env.readable

-- The valgrind logs in dir, one per process: { pid = n, parent = n, text = s }.
local function logs(dir)
  local found = {}
  for name in env.sh("ls " .. dir):gmatch("[^\n]+") do
    local f = assert(io.open(dir .. "/" .. name))
    local text = f:read("a")
    f:close()
    found[#found + 1] = { pid = tonumber(name:match("%d+")), text = text,
                          parent = tonumber(text:match("Parent PID: (%d+)")) }
  end
  return found
end

describe("vmlua under valgrind #slow #uml", function()
  if env.build ~= "build" then
    pending("valgrind cannot run an ASan build (" .. env.vmlua .. "): plain make test runs this spec")
    return
  end
  if not env.sh("command -v valgrind"):find("valgrind") then
    pending("valgrind is missing: apt-get install valgrind")
    return
  end
  if not readable(guest.KERNEL) or not readable(guest.INITRD) then
    pending("the default guest is not built: run make guest")
    return
  end

  it("stops a uml guest from a device hook, then collects: no invalid read of the servers", function()
    local dir = env.tmpdir()
    local out, status = env.sh(("valgrind --error-exitcode=99 --log-file=%s/vg.%%p %s " ..
      "spec/helpers/stop_in_hook.lua notify 2>&1 </dev/null"):format(dir, env.vmlua))
    local found = logs(dir)
    os.execute("rm -rf " .. dir)
    local all = {}
    for _, l in ipairs(found) do all[#all + 1] = l.text end
    all = table.concat(all, "\n")
    assert.equal(0, status, out .. "\n" .. all)
    assert.matches("exits: 1: stopped", out)
    for _, l in ipairs(found) do
      local errors = l.text:match("ERROR SUMMARY: (%d+) errors")
      assert.truthy(errors == nil or errors == "0", l.text)
    end
  end)

  it("boots the default uml guest, runs a command and powers off: no memory error, nothing lost", function()
    local dir = env.tmpdir()
    local out, status = env.sh(("valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=none " ..
      "--log-file=%s/vg.%%p %s scripts/boot.lua --backend uml --timeout 300 --run 'echo ran:$((6*7))' 2>&1 </dev/null")
      :format(dir, env.vmlua))
    local found = logs(dir)
    os.execute("rm -rf " .. dir)
    local all = {}
    for _, l in ipairs(found) do all[#all + 1] = l.text end
    all = table.concat(all, "\n")

    assert.equal(0, status, out .. "\n" .. all)
    assert.matches("ran:42\r?\n", out)
    -- vmlua is the process whose parent ran no valgrind of ours.
    local pids, main = {}, nil
    for _, l in ipairs(found) do pids[l.pid] = true end
    for _, l in ipairs(found) do if not pids[l.parent] then main = l end end
    assert.truthy(main, "no log of vmlua's own process:\n" .. all)
    for _, l in ipairs(found) do
      local errors = l.text:match("ERROR SUMMARY: (%d+) errors")
      assert.truthy(errors == nil or errors == "0", l.text)
    end
    assert.matches("ERROR SUMMARY: 0 errors", main.text)
    local lost = main.text:match("definitely lost: ([%d,]+) bytes")
    local indirect = main.text:match("indirectly lost: ([%d,]+) bytes")
    if not main.text:find("All heap blocks were freed") then
      assert.equal("0", lost, main.text)
      assert.equal("0", indirect, main.text)
    end
  end)
end)
