/*
 * start.S - entry of the selftest guest.
 *
 * vmlua enters here as Linux's 64-bit boot protocol says: long mode,
 * paging on with the first 4 GiB identity-mapped, interrupts off, RSI
 * pointing at boot_params.  We rely on nothing else: not on the stack we
 * were given, nor on .bss having been zeroed by the loader.
 */
	.code64
	.section .text.start, "ax"
	.globl _start
_start:
	leaq	stack_top(%rip), %rsp	/* our own stack, first thing */
	pushfq				/* RFLAGS as vmlua left them, for */
	popq	%r12			/* the "interrupts off" check */
	cli
	cld
	movq	%rsi, %r13		/* boot_params */

	/* Zero .bss (which holds the stack, so nothing may be on it yet),
	 * one quadword per iteration: plain instructions, no REP. */
	leaq	__bss_start(%rip), %rdi
	leaq	__bss_end(%rip), %rcx
1:	cmpq	%rcx, %rdi
	jae	2f
	movq	$0, (%rdi)
	addq	$8, %rdi
	jmp	1b

2:	movq	%r13, %rdi		/* selftest_main(boot_params, rflags) */
	movq	%r12, %rsi
	call	selftest_main

	/* It returns only if the machine did not switch off. */
3:	cli
	hlt
	jmp	3b

	.section .bss
	.balign 16
stack:
	.skip	16384
stack_top:

	.section .note.GNU-stack, "", @progbits
