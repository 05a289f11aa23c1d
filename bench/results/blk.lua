return {
  ["bench"] = "blk",
  ["date"] = "2026-11-23T12:56:50Z",
  ["ratios"] = {
    {
      ["value"] = 1.19231,
      ["what"] = "vmlua / UML ubd, write"
    },
    {
      ["value"] = 1.375,
      ["what"] = "vmlua / UML ubd, read"
    },
    {
      ["value"] = 1.15385,
      ["what"] = "vmlua / qemu tcg virtio-blk, write"
    },
    {
      ["value"] = 4.25,
      ["what"] = "vmlua / qemu tcg virtio-blk, read"
    }
  },
  ["rows"] = {
    {
      ["unit"] = "MB/s",
      ["value"] = 984.615,
      ["what"] = "vmlua vhost-user blk, write"
    },
    {
      ["unit"] = "MB/s",
      ["value"] = 3200,
      ["what"] = "vmlua vhost-user blk, read"
    },
    {
      ["unit"] = "MB/s",
      ["value"] = 825.806,
      ["what"] = "UML ubd, write"
    },
    {
      ["unit"] = "MB/s",
      ["value"] = 2327.27,
      ["what"] = "UML ubd, read"
    },
    {
      ["unit"] = "MB/s",
      ["value"] = 853.333,
      ["what"] = "qemu tcg virtio-blk, write"
    },
    {
      ["unit"] = "MB/s",
      ["value"] = 752.941,
      ["what"] = "qemu tcg virtio-blk, read"
    }
  },
  ["runs"] = 5,
  ["title"] = "sequential 256 MiB in the guest, dd 1 MiB direct I/O"
}
