return {
  ["bench"] = "vhost_latency",
  ["date"] = "2026-11-23T12:56:50Z",
  ["note"] = "floor: a forked process that answers each kick eventfd with a call eventfd, no ring work",
  ["per_run"] = 20000,
  ["ratios"] = {
    {
      ["value"] = 1.66518,
      ["what"] = "vmlua C rng / eventfd floor"
    },
    {
      ["value"] = 1.06587,
      ["what"] = "vmlua Lua rng / vmlua C rng"
    }
  },
  ["rows"] = {
    {
      ["unit"] = "us",
      ["value"] = 8.942,
      ["what"] = "vmlua, C rng"
    },
    {
      ["unit"] = "us",
      ["value"] = 9.531,
      ["what"] = "vmlua, Lua rng"
    },
    {
      ["unit"] = "us",
      ["value"] = 5.37,
      ["what"] = "eventfd floor"
    }
  },
  ["runs"] = 7,
  ["title"] = "vhost-user kick->call round trip (16-byte rng request)"
}
