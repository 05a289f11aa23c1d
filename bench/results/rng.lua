return {
  ["bench"] = "rng",
  ["date"] = "2026-11-23T12:56:50Z",
  ["per_run"] = 12800,
  ["ratios"] = {
    {
      ["value"] = 1.8295,
      ["what"] = "Lua rng / C rng, 64 bytes"
    },
    {
      ["value"] = 1.13513,
      ["what"] = "Lua rng / C rng, 4096 bytes"
    }
  },
  ["rows"] = {
    {
      ["unit"] = "us",
      ["value"] = 0.541281,
      ["what"] = "C rng, 64-byte request"
    },
    {
      ["unit"] = "us",
      ["value"] = 0.990273,
      ["what"] = "Lua rng, 64-byte request"
    },
    {
      ["unit"] = "us",
      ["value"] = 10.9431,
      ["what"] = "C rng, 4096-byte request"
    },
    {
      ["unit"] = "us",
      ["value"] = 12.4219,
      ["what"] = "Lua rng, 4096-byte request"
    }
  },
  ["runs"] = 7,
  ["title"] = "rng device cost per request, Lua vs C (driver harness, 64 chains a notify)"
}
