return { bench = "boot", runs = 10, date = "2026-12-04T19:56:09Z",
  title = "boot to poweroff, busybox initramfs, 128 MiB (hyperfine)",
  rows = {
    { what = "vmlua uml backend with vmlua's kernel", value = 0.424276, unit = "s" },
    { what = "vmlua uml backend with Debian's linux.uml", value = 3.324865, unit = "s" },
    { what = "bare vmlua kernel", value = 0.354516, unit = "s" },
    { what = "bare Debian linux.uml", value = 2.981006, unit = "s" },
    { what = "qemu microvm tcg", value = 2.017306, unit = "s" },
  },
  ratios = {
    { what = "vmlua / vmlua uml backend with Debian's linux.uml", value = 0.127607 },
    { what = "vmlua / bare vmlua kernel", value = 1.196776 },
    { what = "vmlua / bare Debian linux.uml", value = 0.142327 },
    { what = "vmlua / qemu microvm tcg", value = 0.210318 },
  } }
