return {
  ["bench"] = "nested",
  ["date"] = "2026-12-04T19:30:00Z",
  ["note"] = "inside L1 (QEMU TCG, -cpu max, 2 vCPUs), 2026-12-04, bench/nested.lua alone; QEMU's peak RSS not measured in that run",
  ["ratios"] = {
    {
      ["value"] = 0.428094,
      ["what"] = "vmlua / qemu microvm, boot time"
    }
  },
  ["rows"] = {
    {
      ["unit"] = "s",
      ["value"] = 12.8,
      ["what"] = "vmlua kvm backend, boot to poweroff"
    },
    {
      ["unit"] = "s",
      ["value"] = 29.9,
      ["what"] = "qemu -accel kvm -M microvm, boot to poweroff"
    },
    {
      ["unit"] = "kB",
      ["value"] = 105928,
      ["what"] = "vmlua peak RSS (VmHWM)"
    }
  },
  ["runs"] = 5,
  ["title"] = "nested (TCG+SVM): Debian's cloud kernel to poweroff on kvm inside QEMU TCG, 1 vCPU, 256 MiB"
}
