return { bench = "boot", runs = 10, date = "2026-12-04T23:21:14Z",
  title = "boot to poweroff, busybox initramfs, 128 MiB (hyperfine)",
  rows = {
    { what = "vmlua uml backend with vmlua's kernel", value = 0.170629, unit = "s" },
    { what = "vmlua uml backend with Debian's linux.uml", value = 2.191804, unit = "s" },
    { what = "bare vmlua kernel", value = 0.239819, unit = "s" },
    { what = "bare Debian linux.uml", value = 2.234968, unit = "s" },
    { what = "qemu microvm tcg", value = 1.867646, unit = "s" },
  },
  ratios = {
    { what = "vmlua / vmlua uml backend with Debian's linux.uml", value = 0.077849 },
    { what = "vmlua / bare vmlua kernel", value = 0.711491 },
    { what = "vmlua / bare Debian linux.uml", value = 0.076345 },
    { what = "vmlua / qemu microvm tcg", value = 0.091360 },
  } }
