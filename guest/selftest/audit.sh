#!/bin/sh
# audit.sh ELF - check that the selftest image is what vmlua and the
# kvm_pvm instruction emulator can run, or exit 1 saying why.
#
#  * no instruction the emulator lacks or that needs the FPU/SSE/AVX:
#    anything naming an xmm/ymm/zmm/mm/st register, x87 (f...), the
#    xsave/fxsave family, mxcsr, popcnt/lzcnt/tzcnt/movbe/crc32,
#    cmpxchg16b, clac/stac, (f)wait, int3/int/into, rdrand/rdseed, movnti,
#    emms, vzeroupper;
#  * an ELF64 x86-64 executable with exactly one PT_LOAD, at physical ==
#    virtual 0x100000, holding the entry point _start;
#  * no sections besides .text .rodata .data .bss (a .got or .plt would
#    mean position-independent code crept in).
set -eu
elf=$1
me="audit.sh: $elf"
fail() { echo "$me: $*" >&2; exit 1; }

# The instruction text is the last tab-separated field of each line.
insns=$(objdump -d --no-show-raw-insn "$elf" | awk -F'\t' 'NF >= 2 && $1 ~ /^ *[0-9a-f]+:$/ { print $2 }')
[ -n "$insns" ] || fail "objdump shows no instructions"
bad=$(printf '%s\n' "$insns" | grep -Ein \
	-e '%(x|y|z)?mm[0-9]' -e '%st' \
	-e '^(rep[a-z]* +|lock +)?(f[a-z0-9]*|popcnt[a-z]*|lzcnt[a-z]*|tzcnt[a-z]*|movbe[a-z]*|crc32[a-z]*|cmpxchg16b|xsave[a-z0-9]*|xrstor[a-z0-9]*|fxsave[a-z0-9]*|fxrstor[a-z0-9]*|ldmxcsr|stmxcsr|clac|stac|wait|int3|int|into|rdrand|rdseed|movnti[a-z]*|emms|vzeroupper|v[a-z0-9]+)( |$)' \
	|| true)
[ -z "$bad" ] || fail "instructions the kvm_pvm emulator cannot run:
$bad"

hdr=$(readelf -hW "$elf")
echo "$hdr" | grep -q 'Class: *ELF64' || fail "not ELF64"
echo "$hdr" | grep -q 'Type: *EXEC' || fail "not an executable"
echo "$hdr" | grep -q 'Machine: *Advanced Micro Devices X86-64' || fail "not x86-64"
entry=$(echo "$hdr" | awk '/Entry point address/ { print $4 }')
start=$(nm "$elf" | awk '$3 == "_start" { print "0x" $1 }')
[ $((entry)) -eq $((start)) ] || fail "entry $entry is not _start ($start)"

loads=$(readelf -lW "$elf" | awk '$1 == "LOAD"')
[ "$(echo "$loads" | wc -l)" -eq 1 ] || fail "want one PT_LOAD, have:
$loads"
set -- $loads
vaddr=$3 paddr=$4 filesz=$5 memsz=$6
[ $((vaddr)) -eq $((0x100000)) ] && [ $((paddr)) -eq $((0x100000)) ] ||
	fail "PT_LOAD at virtual $vaddr physical $paddr, want 0x100000 for both"
[ $((entry)) -ge $((paddr)) ] && [ $((entry)) -lt $((paddr + memsz)) ] ||
	fail "entry $entry outside the PT_LOAD"

extra=$(readelf -SW "$elf" | sed -n 's/^ *\[ *[0-9]*\] *\([^ ]*\).*/\1/p' |
	grep -Ev '^(NULL|\.text|\.rodata|\.data|\.bss|\.symtab|\.strtab|\.shstrtab)$' || true)
[ -z "$extra" ] || fail "unexpected sections: $(echo $extra)"

echo "audit: $(printf '%s\n' "$insns" | wc -l) instructions, none forbidden;" \
	"one PT_LOAD at 0x100000 (file $((filesz)) bytes, memory $((memsz)) bytes), entry $entry"
