return {
  ["bench"] = "vhost_latency",
  ["date"] = "2026-12-04T19:50:13Z",
  ["note"] = "floor: a forked process that answers each kick eventfd with a call eventfd, no ring work; before: the previous build (d030896), run right after in the same session",
  ["per_run"] = 20000,
  ["ratios"] = {
    {
      ["value"] = 1.2009862522414825,
      ["what"] = "vmlua C rng / eventfd floor"
    },
    {
      ["value"] = 0.98475799427647137,
      ["what"] = "vmlua Lua rng / vmlua C rng"
    },
    {
      ["value"] = 0.97103331621711431,
      ["what"] = "vmlua, C rng, after / before"
    },
    {
      ["value"] = 0.86254529602484808,
      ["what"] = "vmlua, Lua rng, after / before"
    }
  },
  ["rows"] = {
    {
      ["unit"] = "us",
      ["value"] = 32.148000000000003,
      ["what"] = "vmlua, C rng"
    },
    {
      ["unit"] = "us",
      ["value"] = 31.658000000000001,
      ["what"] = "vmlua, Lua rng"
    },
    {
      ["unit"] = "us",
      ["value"] = 26.768000000000001,
      ["what"] = "eventfd floor"
    },
    {
      ["unit"] = "us",
      ["value"] = 33.106999999999999,
      ["what"] = "vmlua, C rng, before"
    },
    {
      ["unit"] = "us",
      ["value"] = 36.703000000000003,
      ["what"] = "vmlua, Lua rng, before"
    }
  },
  ["runs"] = 7,
  ["title"] = "vhost-user kick->call round trip (16-byte rng request)"
}
