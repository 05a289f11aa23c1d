return {
  ["bench"] = "boot",
  ["date"] = "2026-11-23T12:56:50Z",
  ["ratios"] = {
    {
      ["value"] = 0.990698,
      ["what"] = "vmlua / bare linux.uml"
    },
    {
      ["value"] = 0.682232,
      ["what"] = "vmlua / qemu microvm tcg"
    }
  },
  ["rows"] = {
    {
      ["unit"] = "s",
      ["value"] = 1.22717,
      ["what"] = "vmlua (uml backend)"
    },
    {
      ["unit"] = "s",
      ["value"] = 1.23869,
      ["what"] = "bare linux.uml"
    },
    {
      ["unit"] = "s",
      ["value"] = 1.79876,
      ["what"] = "qemu microvm tcg"
    }
  },
  ["runs"] = 10,
  ["title"] = "boot to poweroff, busybox initramfs, 128 MiB (hyperfine)"
}
