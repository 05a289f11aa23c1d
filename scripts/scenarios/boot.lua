-- Boot smoke: the default guest boots, runs a command and powers off.
scenario "boot, run a command, power off" {
  function(vm)
    local out, status = vm.console:run("uname -s")
    assert(status == 0 and out == "Linux\n", "uname -s said: " .. out)
    vm.console:send("poweroff -f\n")
    assert(vm:wait(30) == "poweroff")
  end,
}

-- A guest panic is reported as a failure with its panic line; this one
-- is meant to fail, so the suite marks it an expected failure.
scenario "a guest panic fails the scenario with its line" {
  xfail = "the guest crashes on purpose (echo c > /proc/sysrq-trigger)",
  function(vm)
    vm.console:send("echo c > /proc/sysrq-trigger\n")
    vm.console:expect("this line never comes", 60)
  end,
}
