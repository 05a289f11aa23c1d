return {
  ["bench"] = "flake",
  ["date"] = "2026-11-23T12:56:50Z",
  ["rows"] = {
    {
      ["unit"] = "",
      ["value"] = 100,
      ["what"] = "runs"
    },
    {
      ["unit"] = "",
      ["value"] = 0,
      ["what"] = "failures"
    },
    {
      ["unit"] = "s",
      ["value"] = 1.4216,
      ["what"] = "time of one run (scripts/boot.lua --run)"
    }
  },
  ["runs"] = 100,
  ["title"] = "flake hunt: 100 consecutive boot-run-poweroff runs on uml"
}
