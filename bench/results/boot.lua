return { bench = "boot", runs = 10, date = "2026-12-04T19:52:48Z",
  title = "boot to poweroff, busybox initramfs, 128 MiB (hyperfine)",
  rows = {
    { what = ""vmlua (uml backend", value = 0.027913, unit = "s" },
    { what = ""vmlua (uml backend", value = 0.379729, unit = "s" },
    { what = "bare vmlua kernel", value = 0.304615, unit = "s" },
    { what = "bare Debian linux.uml", value = 3.057308, unit = "s" },
    { what = "qemu microvm tcg", value = 2.177631, unit = "s" },
  },
  ratios = {
    { what = "vmlua / "vmlua (uml backend", value = 0.073507 },
    { what = "vmlua / bare vmlua kernel", value = 0.091634 },
    { what = "vmlua / bare Debian linux.uml", value = 0.009130 },
    { what = "vmlua / qemu microvm tcg", value = 0.012818 },
  } }
