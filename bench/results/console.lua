return {
  ["bench"] = "console",
  ["date"] = "2026-12-04T19:48:17Z",
  ["note"] = "the echo spawns nothing in the guest; run forks once in the guest shell; before: /tmp/before/build/vmlua",
  ["ratios"] = {
    {
      ["value"] = 0.014289069996138092,
      ["what"] = "echo round trip, after / before"
    },
    {
      ["value"] = 0.22335822263305949,
      ["what"] = "console:run('true'), after / before"
    }
  },
  ["rows"] = {
    {
      ["unit"] = "ms",
      ["value"] = 3.589,
      ["what"] = "echo round trip"
    },
    {
      ["unit"] = "ms",
      ["value"] = 56.058,
      ["what"] = "console:run('true')"
    },
    {
      ["unit"] = "ms",
      ["value"] = 251.17099999999996,
      ["what"] = "echo round trip, before"
    },
    {
      ["unit"] = "ms",
      ["value"] = 250.97799999999998,
      ["what"] = "console:run('true'), before"
    }
  },
  ["runs"] = 30,
  ["title"] = "console latency on uml: echo round trip, console:run('true')"
}
