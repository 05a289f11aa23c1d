return {
  ["bench"] = "hostfs",
  ["date"] = "2026-12-04T19:00:00Z",
  ["note"] = "ratio: host time / guest time; the host reads the file from its page cache, the guest (256 MiB) through hostfs each time",
  ["ratios"] = {
    {
      ["value"] = 0.0931443,
      ["what"] = "hostfs / host speed, sequential read, 512 MiB"
    },
    {
      ["value"] = 0.05587,
      ["what"] = "hostfs / host speed, find + wc -l, 20,000 files"
    },
    {
      ["value"] = 0.254825,
      ["what"] = "hostfs / host speed, write 256 MiB + fsync"
    }
  },
  ["rows"] = {
    {
      ["unit"] = "s",
      ["value"] = 0.068148,
      ["what"] = "host: sequential read, 512 MiB"
    },
    {
      ["unit"] = "s",
      ["value"] = 0.731639,
      ["what"] = "uml guest, hostfs: sequential read, 512 MiB"
    },
    {
      ["unit"] = "s",
      ["value"] = 0.027256,
      ["what"] = "host: find + wc -l, 20,000 files"
    },
    {
      ["unit"] = "s",
      ["value"] = 0.487847,
      ["what"] = "uml guest, hostfs: find + wc -l, 20,000 files"
    },
    {
      ["unit"] = "s",
      ["value"] = 0.294809,
      ["what"] = "host: write 256 MiB + fsync"
    },
    {
      ["unit"] = "s",
      ["value"] = 1.15691,
      ["what"] = "uml guest, hostfs: write 256 MiB + fsync"
    }
  },
  ["runs"] = 5,
  ["title"] = "host files in a uml guest (hostfs share) vs the host itself"
}
