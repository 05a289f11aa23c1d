return {
  ["bench"] = "nested",
  ["date"] = "2026-12-04T22:54:44Z",
  ["note"] = "inside L1 (QEMU TCG, -cpu max, 2 vCPUs); exits are KVM_RUN returns to vmlua, per request the device served (blk: 4 KiB O_DIRECT reads; rng: /dev/hwrng reads), a loop of N less an empty one; the notify is an ioeventfd (no exit), the two mmio exits are the interrupt status read and its ack, the io share grows with the loop's run time, not with its requests",
  ["ratios"] = {
    {
      ["value"] = 0.62831858407079644,
      ["what"] = "vmlua / qemu microvm, boot time"
    },
    {
      ["value"] = 0.59723410964457857,
      ["what"] = "vmlua / qemu microvm, peak RSS"
    }
  },
  ["rows"] = {
    {
      ["unit"] = "s",
      ["value"] = 7.0999999999999996,
      ["what"] = "vmlua kvm backend, boot to poweroff"
    },
    {
      ["unit"] = "s",
      ["value"] = 11.300000000000001,
      ["what"] = "qemu -accel kvm -M microvm, boot to poweroff"
    },
    {
      ["unit"] = "kB",
      ["value"] = 106064,
      ["what"] = "vmlua peak RSS (VmHWM)"
    },
    {
      ["unit"] = "kB",
      ["value"] = 177592,
      ["what"] = "qemu peak RSS (VmHWM, sampled every 0.1 s)"
    },
    {
      ["unit"] = "exits",
      ["value"] = 2.5619999999999998,
      ["what"] = "exits per blk request (1000 requests)"
    },
    {
      ["unit"] = "exits",
      ["value"] = 2.0019999999999998,
      ["what"] = "mmio exits per blk request"
    },
    {
      ["unit"] = "exits",
      ["value"] = 0.56000000000000005,
      ["what"] = "io exits per blk request"
    },
    {
      ["unit"] = "exits",
      ["value"] = 0,
      ["what"] = "hlt exits per blk request"
    },
    {
      ["unit"] = "exits",
      ["value"] = 1.5880000000000001,
      ["what"] = "exits per rng request (512 requests)"
    },
    {
      ["unit"] = "exits",
      ["value"] = 2,
      ["what"] = "mmio exits per rng request"
    },
    {
      ["unit"] = "exits",
      ["value"] = -0.41199999999999998,
      ["what"] = "io exits per rng request"
    },
    {
      ["unit"] = "exits",
      ["value"] = 0,
      ["what"] = "hlt exits per rng request"
    }
  },
  ["runs"] = 5,
  ["title"] = "nested (TCG+SVM): Debian's cloud kernel to poweroff on kvm inside QEMU TCG, 1 vCPU, 256 MiB"
}
