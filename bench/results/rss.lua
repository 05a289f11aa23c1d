return {
  ["bench"] = "rss",
  ["date"] = "2026-11-23T12:56:50Z",
  ["rows"] = {
    {
      ["unit"] = "kB",
      ["value"] = 4044,
      ["what"] = "vmlua peak RSS (VmHWM), without the UML child"
    }
  },
  ["runs"] = 5,
  ["title"] = "vmlua peak RSS while booting the guest on uml"
}
