return { bench = "rss", runs = 5, date = "2026-12-04T19:56:09Z", title = "vmlua peak RSS while booting the guest on uml",
  rows = { { what = "vmlua peak RSS (VmHWM), without the UML child", value = 4580, unit = "kB" } } }
