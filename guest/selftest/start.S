/*
 * start.S - entry of the selftest guest.  vmlua enters here in 64-bit
 * mode with paging on (the first 4 GiB identity-mapped), interrupts off
 * and RSI pointing at boot_params, as Linux's 64-bit boot protocol says.
 */
	.section .text.start, "ax"
	.globl _start
_start:
	cli
	leaq stack_top(%rip), %rsp
	movq %rsi, %rdi            /* selftest_main(boot_params) */
	call selftest_main
1:	cli
	hlt
	jmp 1b

	.section .bss
	.balign 16
stack:
	.skip 16384
stack_top:
