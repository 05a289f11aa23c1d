-- The REPL (vmlua with no script), driven through a real terminal: tmux.
local env = require "helpers.env"
local guest = require "helpers.initrd"

local readable = env.readable

local function sleep(s) os.execute("sleep " .. s) end

describe("the REPL in a terminal #repl", function()
  if not env.sh("command -v tmux"):find("tmux") then
    pending("tmux is missing: apt-get install tmux")
    return
  end
  local session, home

  -- Starts `vmlua ARGS` in a tmux session of its own, with its own HOME.
  local function start(args)
    session = ("vmlua-spec-%d"):format(math.random(1, 1e9))
    home = env.tmpname()
    os.remove(home)
    assert(os.execute("mkdir -p " .. home))
    assert(os.execute(("tmux new-session -d -s %s -x 160 -y 40 'HOME=%s %s %s %s; echo EXITED-$?; sleep 600'")
      :format(session, home, env.sanitizer_vars(), env.vmlua, args or "")))
  end
  -- Keys: Enter, Tab and C-x by name; anything else as literal text
  -- (tmux would take "end" for the End key).
  local named = { Enter = true, Tab = true }
  local function keys(...)
    for i = 1, select("#", ...) do
      local k = select(i, ...)
      local literal = not named[k] and not k:match("^C%-%a$")
      assert(os.execute(("tmux send-keys -t %s %s %q"):format(session, literal and "-l" or "", k)))
    end
  end
  local function screen()
    return (env.sh(("tmux capture-pane -p -J -S -200 -t %s"):format(session)))
  end
  -- Waits until the screen matches; returns it.
  local function wait_for(pattern, secs)
    local deadline = os.time() + (secs or 20)
    repeat
      local s = screen()
      if s:find(pattern) then return s end
      sleep(0.2)
    until os.time() > deadline
    error("timed out waiting for " .. pattern .. " on the screen:\n" .. screen())
  end

  before_each(function() math.randomseed(os.time() + math.floor(os.clock() * 1e6)) end)
  after_each(function()
    if session then os.execute("tmux kill-session -t " .. session .. " 2>/dev/null") end
    if home then os.execute("rm -rf " .. home) end
  end)

  it("prints values without =, pretty-prints tables, completes names, keeps history", function()
    start()
    wait_for("Ctrl%-D to leave%.\n> ")
    keys("1+1", "Enter")
    wait_for("\n2\n> ")
    keys("({ b = 2, a = 'x' })", "Enter")
    wait_for('{ a = "x", b = 2 }')
    keys("vmlua.swi", "Tab")
    wait_for("> vmlua%.switch")
    keys("C-u", "function twice(x)", "Enter", "return 2 * x", "Enter", "end", "Enter")
    wait_for(">> end\n> ")                      -- more lines until the chunk is whole
    keys("twice(21)", "Enter")
    wait_for("\n42\n> ")
    keys("C-u", "C-d")
    wait_for("EXITED%-0")
    local hist = assert(io.open(home .. "/.vmlua_history")):read("a")
    assert.matches("1%+1", hist)
  end)

  it("runs a script first with -i, then keeps its globals", function()
    local script = env.tmpname()
    local f = assert(io.open(script, "w"))
    f:write("answer = 6 * 7\n")
    f:close()
    start("-i " .. script)
    wait_for("> ")
    keys("answer", "Enter")
    wait_for("\n42\n> ")
    keys("C-d")
    wait_for("EXITED%-0")
    os.remove(script)
  end)

  describe("with a guest #uml", function()
    if not readable(guest.KERNEL) or not readable(guest.INITRD) then
      pending("the default guest is not built: run make guest")
      return
    end

    it("keeps the guest running while you type, Ctrl-C stops a call, Ctrl-D the guest", function()
      -- a copy of the initramfs with a name of its own, to find this guest's processes
      local initrd = guest.with_run("echo typed-while-you-wait; exec sh\n")
      start()
      wait_for("> ")
      keys(("vm = vmlua.vm{ backend = 'uml', kernel = %q, initrd = %q, memory = '96M', cmdline = 'quiet' }; vm:start()")
        :format(guest.KERNEL, initrd), "Enter")
      keys("abc")                                   -- typed, not entered
      wait_for("typed%-while%-you%-wait", 60)
      -- the guest's lines came above the prompt; the line being edited is whole
      sleep(0.5)
      local s = screen():gsub("%s+$", "")
      assert.matches("\n> abc$", s)
      keys("C-u", "vm.console:expect('never', 100)", "Enter")
      sleep(1)
      keys("C-c")
      wait_for("interrupted\n> ")
      keys("vm.state", "Enter")
      wait_for("\nrunning\n> ")                    -- the call stopped, not the guest
      assert.not_equal("", env.uml_pids{ initrd = initrd })
      keys("C-d")
      wait_for("EXITED%-0")
      local deadline = os.time() + 10
      while env.uml_pids{ initrd = initrd } ~= "" and os.time() < deadline do sleep(0.2) end
      assert.equal("", env.uml_pids{ initrd = initrd },
        "linux.uml is still there: " .. env.sh("ps -o pid,ppid,stat,cmd -C linux.uml"))
      os.remove(initrd)
    end)
  end)
end)
