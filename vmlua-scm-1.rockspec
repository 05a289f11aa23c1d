rockspec_format = "3.0"
package = "vmlua"
version = "scm-1"
source = {
  url = "git+file:///work/main",
}
description = {
  summary = "A virtual machine monitor whose every part is a Lua object",
  detailed = [[
vmlua builds, boots and scripts virtual machines from Lua 5.4: guest
memory, kernel loading, vCPUs and devices are Lua objects.  This rock
installs the Lua module (vmlua.core and the vmlua.* Lua layer); the
vmlua executable is built with `make`.
]],
  license = "MIT",
}
-- luaposix: on Debian 12, Debian 13's lua-posix .deb, which make
-- installs (scripts/deps.sh); argparse: Debian 12's lua-argparse.
dependencies = {
  "lua >= 5.4, < 5.5",
  "luaposix >= 36",
  "argparse >= 0.7",
}
build = {
  type = "builtin",
  modules = {
    ["vmlua.core"] = {
      sources = {
        "core/errbuf.c",
        "core/memory.c",
        "core/lmemory.c",
        "core/loader.c",
        "core/lloader.c",
        "core/acpi.c",
        "core/lacpi.c",
        "core/uart.c",
        "core/kvm.c",
        "core/kvm_vcpu.c",
        "core/kvm_board.c",
        "core/lvm.c",
        "core/tty.c",
        "core/ttyesc.c",
        "core/virtq.c",
        "core/lvirtq.c",
        "core/device.c",
        "core/ldevice.c",
        "core/mmio.c",
        "core/uml.c",
        "core/jail.c",
        "core/mconsole.c",
        "core/luml.c",
        "core/vhost_user.c",
        "core/lvhost.c",
        "core/rng.c",
        "core/lrng.c",
        "core/blk.c",
        "core/cow.c",
        "core/image.c",
        "core/fileio.c",
        "core/loop.c",
        "core/calendar.c",
        "core/lblk.c",
        "core/switch.c",
        "core/net.c",
        "core/slirp.c",
        "core/lnet.c",
        "core/vcon.c",
        "core/lconsole.c",
        "core/sandbox.c",
        "core/lsandbox.c",
        "core/lhelpers.c",
        "core/linit.c",
      },
      incdirs = { "core" },
      libraries = { "slirp", "seccomp", "pthread" },
    },
    ["vmlua"] = "lua/vmlua/init.lua",
    ["vmlua.vm"] = "lua/vmlua/vm.lua",
    ["vmlua.repl"] = "lua/vmlua/repl.lua",
    ["vmlua.driver"] = "lua/vmlua/driver.lua",
    ["vmlua.virtio"] = "lua/vmlua/virtio.lua",
    ["vmlua.cpio"] = "lua/vmlua/cpio.lua",
    ["vmlua.console"] = "lua/vmlua/console.lua",
    ["vmlua.test"] = "lua/vmlua/test.lua",
    ["vmlua.paths"] = "lua/vmlua/paths.lua",
    ["vmlua.share"] = "lua/vmlua/share.lua",
  },
}
test = {
  type = "busted",
}
