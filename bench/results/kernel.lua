return { bench = "kernel", runs = 1, date = "2026-12-04T19:56:11Z",
  title = "the UML kernels: size of linux.uml (and build time of vmlua's)",
  rows = {
    { what = "vmlua's kernel (linux-vmlua-6.1.176-1-b696e4e14415)", value = 7415, unit = "KiB" },
    { what = "Debian's linux.uml", value = 10475, unit = "KiB" },

  },
  ratios = { { what = "vmlua's / Debian's size", value = 7415 / 10475 } } }
