return {
  ["bench"] = "notify_hook",
  ["date"] = "2026-11-23T12:56:50Z",
  ["per_run"] = 200000,
  ["ratios"] = {
    {
      ["value"] = 2.0155,
      ["what"] = "with hook / without"
    }
  },
  ["rows"] = {
    {
      ["unit"] = "ns",
      ["value"] = 149.785,
      ["what"] = "notify, C device, no hook"
    },
    {
      ["unit"] = "ns",
      ["value"] = 301.893,
      ["what"] = "notify, same device with a Lua hook"
    },
    {
      ["unit"] = "ns",
      ["value"] = 152.108,
      ["what"] = "hook cost"
    }
  },
  ["runs"] = 7,
  ["title"] = "a Lua notify hook, per notify (driver harness, no VM)"
}
