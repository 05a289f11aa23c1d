return { bench = "kernel", runs = 1, date = "2026-12-04T23:21:15Z",
  title = "the UML kernels: size of linux.uml (and build time of vmlua's)",
  rows = {
    { what = "vmlua's kernel (linux-vmlua-6.1.176-1-78595331e3ad)", value = 7415, unit = "KiB" },
    { what = "Debian's linux.uml", value = 10475, unit = "KiB" },
    { what = "vmlua's kernel, build time on 2 CPUs", value = 1091, unit = "s" },
  },
  ratios = { { what = "vmlua's / Debian's size", value = 7415 / 10475 } } }
