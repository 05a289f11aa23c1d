-- Tiny x86-64 programs, hand-assembled, for specs that run a guest
-- without a kernel: each function returns machine code as a string.
local x = {}

function x.mov_dx(port) return string.pack("<BBI2", 0x66, 0xba, port) end
function x.mov_al(v) return string.pack("BB", 0xb0, v) end
x.out = "\xee"          -- out dx, al
x.inb = "\xec"          -- in al, dx
x.hlt = "\xf4"
x.cli = "\xfa"
x.spin = "\xeb\xfe"     -- jmp .

function x.outb(port, v) return x.mov_dx(port) .. x.mov_al(v) .. x.out end

-- Print a string on the UART.
function x.print(s)
  local t = { x.mov_dx(0x3f8) }
  for i = 1, #s do t[#t + 1] = x.mov_al(s:byte(i)) .. x.out end
  return table.concat(t)
end

-- Soft-off through the FADT sleep control register: SLP_TYP 5 | SLP_EN.
x.poweroff = x.outb(0x600, (5 << 2) | 0x20) .. x.hlt

-- Wait for a byte on the UART and send it back.
x.echo_one =
  x.mov_dx(0x3fd) .. x.inb .. "\xa8\x01" .. "\x74\xf7" ..  -- until LSR.DR
  x.mov_dx(0x3f8) .. x.inb .. x.out

return x
