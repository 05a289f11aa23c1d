return {
  ["bench"] = "kvm_virtio",
  ["date"] = "2026-11-23T12:56:50Z",
  ["note"] = "the notify is an ioeventfd (no exit); the two mmio exits are the interrupt status read and its ack; the io share is the guest's one line of output after the loop",
  ["per_run"] = 2000,
  ["ratios"] = {
    {
      ["value"] = 0.995143,
      ["what"] = "Lua rng / C rng, time per request"
    }
  },
  ["rows"] = {
    {
      ["unit"] = "exits",
      ["value"] = 2.028,
      ["what"] = "exits per request, C rng"
    },
    {
      ["unit"] = "exits",
      ["value"] = 2,
      ["what"] = "mmio exits per request, C rng"
    },
    {
      ["unit"] = "us",
      ["value"] = 188.321,
      ["what"] = "time per request, C rng"
    },
    {
      ["unit"] = "exits",
      ["value"] = 2.0285,
      ["what"] = "exits per request, Lua rng"
    },
    {
      ["unit"] = "us",
      ["value"] = 187.407,
      ["what"] = "time per request, Lua rng"
    }
  },
  ["runs"] = 5,
  ["title"] = "kvm, selftest guest: one 16-byte rng request"
}
