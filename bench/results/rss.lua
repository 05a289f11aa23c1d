return { bench = "rss", runs = 5, date = "2026-12-04T23:21:14Z", title = "vmlua peak RSS while booting the guest on uml",
  rows = { { what = "vmlua peak RSS (VmHWM), without the UML child", value = 4532, unit = "kB" } } }
