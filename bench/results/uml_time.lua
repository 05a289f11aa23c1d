return {
  ["bench"] = "uml_time",
  ["date"] = "2026-12-04T22:21:33Z",
  ["note"] = "the sleep: medians of 5",
  ["ratios"] = {
    {
      ["value"] = 0.038579609849171193,
      ["what"] = "vmlua's kernel / Debian's, time to /init"
    },
    {
      ["value"] = 0.012517996850025763,
      ["what"] = "wall / guest time, sleep 60 on virtual time"
    }
  },
  ["rows"] = {
    {
      ["unit"] = "ms",
      ["value"] = 237.38876700190303,
      ["what"] = "time to /init, vmlua's kernel"
    },
    {
      ["unit"] = "ms",
      ["value"] = 6153.2184469979256,
      ["what"] = "time to /init, Debian's linux.uml"
    },
    {
      ["unit"] = "s",
      ["value"] = 0.75107981100154575,
      ["what"] = "sleep 60 on virtual time, wall time"
    }
  },
  ["runs"] = 20,
  ["title"] = "uml: exec to the guest's /init; a guest's minute of sleep on virtual time"
}
