/*
 * lib.c - what the selftest guest's checks stand on: a tiny libc, memory
 * reads, and a printf over the UART with the ok/fail lines of its report.
 * It calls nothing in the other files.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "selftest.h"

#define UART_THR 0x3f8

static unsigned nfailed;

u8 rd8(u64 a)   { return *(const volatile u8 *)a; }
u32 rd32(u64 a) { return *(const volatile u32u *)a; }

unsigned failures(void) { return nfailed; }

static void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }

/* ---- a tiny libc ---------------------------------------------------- */

/* gcc may call these for struct copies even with -fno-builtin.  The
 * Makefile passes -fno-tree-loop-distribute-patterns so that gcc does not
 * turn these very loops back into calls to themselves. */

void *memset(void *d, int c, size_t n)
{
	u8 *p = d;
	while (n--)
		*p++ = (u8)c;
	return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
	u8 *p = d;
	const u8 *q = s;
	while (n--)
		*p++ = *q++;
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const u8 *p = a, *q = b;
	for (; n; n--, p++, q++)
		if (*p != *q)
			return *p - *q;
	return 0;
}

size_t slen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

/* ---- output: a printf with %s %.Ns %c %d %u %x, l and ll ------------ */

/* One byte, one VM exit.  The UART's transmitter is always ready in
 * vmlua, so we do not poll LSR (that would be a second exit per byte). */
void putch(char c)
{
	outb(UART_THR, (u8)c);
}

static void putnum(u64 v, unsigned base)
{
	char buf[24];
	int i = (int)sizeof buf;
	do {
		buf[--i] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	while (i < (int)sizeof buf)
		putch(buf[i++]);
}

static void vsay(const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		int longs = 0, prec = -1;
		if (*fmt != '%') {
			putch(*fmt);
			continue;
		}
		fmt++;
		if (*fmt == '.') {
			for (prec = 0, fmt++; *fmt >= '0' && *fmt <= '9'; fmt++)
				prec = prec * 10 + (*fmt - '0');
		}
		for (; *fmt == 'l'; fmt++)
			longs++;
		switch (*fmt) {
		case 's': {
			const char *s = va_arg(ap, const char *);
			for (; *s && prec != 0; s++, prec--)
				putch(*s);
			break;
		}
		case 'c':
			putch((char)va_arg(ap, int));
			break;
		case 'u':
		case 'x': {
			u64 v = longs ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned);
			putnum(v, *fmt == 'x' ? 16 : 10);
			break;
		}
		case 'd': {
			long long v = longs ? va_arg(ap, long long) : va_arg(ap, int);
			if (v < 0)
				putch('-');
			putnum(v < 0 ? -(u64)v : (u64)v, 10);
			break;
		}
		case '%':
			putch('%');
			break;
		default:        /* not reached: gcc checks every format */
			return;
		}
	}
}

void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsay(fmt, ap);
	va_end(ap);
}

/* "selftest: ok <what>" and its detail. */
void ok(const char *fmt, ...)
{
	va_list ap;
	say("selftest: ok ");
	va_start(ap, fmt);
	vsay(fmt, ap);
	va_end(ap);
	putch('\n');
}

/* "selftest: FAIL <what>: <detail>", and one more failed check. */
void fail(const char *what, const char *fmt, ...)
{
	va_list ap;
	nfailed++;
	say("selftest: FAIL %s: ", what);
	va_start(ap, fmt);
	vsay(fmt, ap);
	va_end(ap);
	putch('\n');
}
