return {
  ["bench"] = "uml_time",
  ["date"] = "2026-12-04T23:19:50Z",
  ["note"] = "the sleep: medians of 5",
  ["ratios"] = {
    {
      ["value"] = 0.043103734519085987,
      ["what"] = "vmlua's kernel / Debian's, time to /init"
    },
    {
      ["value"] = 0.014455734966638071,
      ["what"] = "wall / guest time, sleep 60 on virtual time"
    }
  },
  ["rows"] = {
    {
      ["unit"] = "ms",
      ["value"] = 91.285775499272859,
      ["what"] = "time to /init, vmlua's kernel"
    },
    {
      ["unit"] = "ms",
      ["value"] = 2117.8159275004873,
      ["what"] = "time to /init, Debian's linux.uml"
    },
    {
      ["unit"] = "s",
      ["value"] = 0.86734409799828427,
      ["what"] = "sleep 60 on virtual time, wall time"
    }
  },
  ["runs"] = 20,
  ["title"] = "uml: exec to the guest's /init; a guest's minute of sleep on virtual time"
}
